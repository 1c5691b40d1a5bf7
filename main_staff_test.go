package main

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"matrixas/db"
)

// TestServeStartsWithoutActiveStaff is issue 13's reproduction: a database whose only
// staff account is deactivated (restored from a backup, say) made serve refuse to start.
// It starts, says how to repair it, and createstaff does, while it runs.
func TestServeStartsWithoutActiveStaff(t *testing.T) {
	c := newCLI(t)
	ctx := context.Background()
	store, err := db.Open(ctx, c.env["DATABASE_PATH"])
	if err != nil {
		t.Fatal(err)
	}
	// The deactivated operator holds the bootstrap name, so serve cannot create it.
	if err := store.CreateUser(ctx, &db.User{Username: "admin", IsStaff: true, IsActive: false}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	addr := freeAddr(t)
	c.env["LISTEN_ADDR"] = addr
	serveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(serveCtx, &cliEnv{stdin: strings.NewReader(""), stdout: out, stderr: out, getenv: func(k string) string { return c.env[k] }, passwordCost: c.passwordCost}, []string{"serve"})
	}()
	waitFor(t, "serve to listen", func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve returned: %v\n%s", err, out)
		default:
		}
		return strings.Contains(out.String(), "listening")
	})
	if !strings.Contains(out.String(), "no active staff") || !strings.Contains(out.String(), "matrixas createstaff") {
		t.Errorf("serve does not say what is wrong and how to repair it:\n%s", out)
	}

	// The repair, while the server runs.
	c.stdin = "a rescue password 7\n"
	if err := c.run(ctx, "createstaff", "rescuer"); err != nil {
		t.Fatalf("createstaff: %v\n%s", err, c.stderr)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm("http://"+addr+"/login", url.Values{"username": {"rescuer"}, "password": {"a rescue password 7"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("login as the repaired staff user: %d, want 303", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestCreateStaffPasswordPolicy: createstaff refuses common, all-digit and
// username-bearing passwords with a message that says which, creates nothing, and
// hashes an accepted password at bcrypt cost 12.
func TestCreateStaffPasswordPolicy(t *testing.T) {
	c := newCLI(t)
	tests := []struct {
		name, username, password, want string
	}{
		{"common", "erin", "password1234", "common"},
		{"common, other case", "erin", "PassWord1234", "common"},
		{"digits only", "erin", "20240917123456", "digits"},
		{"contains the username", "erin", "my name is Erin!", "username"},
		{"too short", "erin", "short", "at least 10 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.stdin = tt.password + "\n"
			err := c.run(context.Background(), "createstaff", tt.username)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), tt.password) {
				t.Errorf("the error repeats the password")
			}
		})
	}
	if _, err := c.store(t).UserByUsername(context.Background(), "erin"); err == nil {
		t.Fatal("erin was created with a refused password")
	}

	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("Tr0ub4dor & three\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.passwordCost = 0 // production's
	if err := c.run(context.Background(), "createstaff", "--password-file", pwFile, "erin"); err != nil {
		t.Fatalf("createstaff with an acceptable password: %v", err)
	}
	u, err := c.store(t).UserByUsername(context.Background(), "erin")
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil || cost != 12 {
		t.Errorf("bcrypt cost %d (%v), want 12", cost, err)
	}
}
