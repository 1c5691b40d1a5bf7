package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/settings"
)

// syncBuffer is a goroutine-safe buffer: the server logs to stderr from its goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cli is one in-process invocation's environment and captured output.
type cli struct {
	env            map[string]string
	stdin          string
	stdout, stderr *syncBuffer
	passwordCost   int // bcrypt cost of the hashes commands make; 0 = production's
}

// newCLI returns an environment whose database is a fresh temp file, hashing passwords at
// bcrypt's lowest cost (fast under the race detector; TestCreateStaffPasswordPolicy
// checks production's).
func newCLI(t *testing.T) *cli {
	t.Helper()
	return &cli{env: map[string]string{"DATABASE_PATH": filepath.Join(t.TempDir(), "data", "cli.db")}, passwordCost: bcrypt.MinCost}
}

func (c *cli) run(ctx context.Context, args ...string) error {
	c.stdout, c.stderr = &syncBuffer{}, &syncBuffer{}
	env := &cliEnv{
		stdin:        strings.NewReader(c.stdin),
		stdout:       c.stdout,
		stderr:       c.stderr,
		getenv:       func(k string) string { return c.env[k] },
		passwordCost: c.passwordCost,
	}
	return run(ctx, env, args)
}

func (c *cli) store(t *testing.T) *db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), c.env["DATABASE_PATH"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		stdout   []string // substrings of standard output
		stderr   []string // substrings of standard error
	}{
		{"help", []string{"--help"}, 0, []string{"Usage: matrixas [COMMAND]", "createstaff", "DATABASE_PATH", "SESSION_KEY_FILE"}, nil},
		{"short help", []string{"-h"}, 0, []string{"Usage: matrixas [COMMAND]"}, nil},
		{"help command", []string{"help"}, 0, []string{"Usage: matrixas [COMMAND]"}, nil},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`, "Usage: matrixas"}},
		{"unknown top-level flag", []string{"--verbose"}, 2, nil, []string{`unknown command "--verbose"`}},
		{"serve help", []string{"serve", "--help"}, 0, nil, []string{"Usage: matrixas serve", "Examples:"}},
		{"createstaff help", []string{"createstaff", "-h"}, 0, nil, []string{"Usage: matrixas createstaff", "-password-file", "Examples:"}},
		{"createtoken help", []string{"createtoken", "--help"}, 0, nil, []string{"Usage: matrixas createtoken", "-name"}},
		{"migrate help", []string{"migrate", "--help"}, 0, nil, []string{"Usage: matrixas migrate"}},
		{"version help", []string{"version", "--help"}, 0, nil, []string{"Usage: matrixas version"}},
		{"serve extra argument", []string{"serve", "now"}, 2, nil, []string{"Usage: matrixas serve"}},
		{"serve unknown flag", []string{"serve", "--port", "80"}, 2, nil, []string{"flag provided but not defined: -port"}},
		{"createstaff without username", []string{"createstaff"}, 2, nil, []string{"Usage: matrixas createstaff"}},
		{"createstaff two usernames", []string{"createstaff", "alice", "bob"}, 2, nil, []string{"Usage: matrixas createstaff"}},
		{"createstaff password in argv", []string{"createstaff", "--password", "hunter22hunter22", "alice"}, 2, nil, []string{"flag provided but not defined: -password"}},
		{"createtoken without username", []string{"createtoken"}, 2, nil, []string{"Usage: matrixas createtoken"}},
		{"migrate extra argument", []string{"migrate", "up"}, 2, nil, []string{"Usage: matrixas migrate"}},
		{"version extra argument", []string{"version", "x"}, 2, nil, []string{"Usage: matrixas version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			err := c.run(context.Background(), tt.args...)
			var errOut bytes.Buffer
			if code := exitCode(err, &errOut); code != tt.wantCode {
				t.Fatalf("exit code %d, want %d (err %v)\nstdout: %s\nstderr: %s", code, tt.wantCode, err, c.stdout, c.stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(c.stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, c.stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(c.stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, c.stderr)
				}
			}
			if _, err := os.Stat(c.env["DATABASE_PATH"]); err == nil {
				t.Errorf("a usage error or --help created the database")
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err       error
		want      int
		wantPrint string
	}{
		{nil, 0, ""},
		{exitUsage, 2, ""},
		{fmt.Errorf("wrapped: %w", exitUsage), 2, ""},
		{errors.New("disk full"), 1, "error: disk full\n"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if got := exitCode(tt.err, &out); got != tt.want || out.String() != tt.wantPrint {
			t.Errorf("exitCode(%v) = %d, printed %q; want %d, %q", tt.err, got, out.String(), tt.want, tt.wantPrint)
		}
	}
}

func TestVersion(t *testing.T) {
	c := newCLI(t)
	if err := c.run(context.Background(), "version"); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("matrixas %s (schema %d)\n", version, db.LatestVersion())
	if c.stdout.String() != want {
		t.Errorf("version printed %q, want %q", c.stdout, want)
	}
}

func TestMigrate(t *testing.T) {
	c := newCLI(t)
	if err := c.run(context.Background(), "migrate"); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("is at schema version %d\n", db.LatestVersion())
	if !strings.Contains(c.stdout.String(), want) {
		t.Errorf("migrate printed %q, want it to contain %q", c.stdout, want)
	}
	v, err := c.store(t).Version(context.Background())
	if err != nil || v != db.LatestVersion() {
		t.Errorf("database at version %d (%v), want %d", v, err, db.LatestVersion())
	}

	// A second run is a no-op that reports the same version.
	if err := c.run(context.Background(), "migrate"); err != nil || !strings.Contains(c.stdout.String(), want) {
		t.Errorf("second migrate: %v, %q", err, c.stdout)
	}
}

func TestBadConfigNamesTheVariable(t *testing.T) {
	for _, args := range [][]string{{"migrate"}, {"serve"}, {"createtoken", "alice"}} {
		c := newCLI(t)
		c.env["LOG_LEVEL"] = "loud"
		err := c.run(context.Background(), args...)
		if err == nil || !strings.Contains(err.Error(), "LOG_LEVEL") {
			t.Errorf("%v with LOG_LEVEL=loud: error %v, want one naming LOG_LEVEL", args, err)
		}
		var out bytes.Buffer
		if code := exitCode(err, &out); code != 1 {
			t.Errorf("%v: exit code %d, want 1", args, code)
		}
	}
}

func TestCreateStaff(t *testing.T) {
	const password = "a long password 1"
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"password from stdin", password + "\n", []string{"createstaff", "carol"}},
		{"password from stdin without newline", password, []string{"createstaff", "carol"}},
		{"password from stdin with CRLF", password + "\r\n", []string{"createstaff", "carol"}},
		{"password from a file", "ignored\n", []string{"createstaff", "--password-file", pwFile, "carol"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each case hashes a password for real: overlap them
			c := newCLI(t)
			c.stdin = tt.stdin
			if err := c.run(context.Background(), tt.args...); err != nil {
				t.Fatalf("createstaff: %v\n%s", err, c.stderr)
			}
			if !strings.Contains(c.stdout.String(), "created staff user carol") {
				t.Errorf("stdout %q", c.stdout)
			}
			if strings.Contains(c.stdout.String()+c.stderr.String(), password) {
				t.Errorf("the password was printed")
			}
			u, err := c.store(t).UserByUsername(context.Background(), "carol")
			if err != nil {
				t.Fatal(err)
			}
			if !u.IsStaff || !u.IsActive || !auth.CheckPassword(u.PasswordHash, password) {
				t.Errorf("user %+v: staff %v active %v, password matches %v", u.Username, u.IsStaff, u.IsActive, auth.CheckPassword(u.PasswordHash, password))
			}
		})
	}
}

func TestCreateStaffErrors(t *testing.T) {
	c := newCLI(t)
	c.stdin = "a long password 1\n"
	if err := c.run(context.Background(), "createstaff", "dave"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"taken username", "another password 2\n", []string{"createstaff", "dave"}, `a user named "dave" already exists`},
		{"short password", "short\n", []string{"createstaff", "erin"}, "at least 10 characters"},
		{"empty stdin", "", []string{"createstaff", "erin"}, "at least 10 characters"},
		{"missing password file", "", []string{"createstaff", "--password-file", filepath.Join(t.TempDir(), "nope"), "erin"}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.stdin = tt.stdin
			err := c.run(context.Background(), tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if errors.Is(err, exitUsage) {
				t.Errorf("a failure, not a usage error, should exit 1")
			}
		})
	}
	if _, err := c.store(t).UserByUsername(context.Background(), "erin"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("erin exists after failed createstaff: %v", err)
	}
}

func TestCreateToken(t *testing.T) {
	c := newCLI(t)
	c.stdin = "a long password 1\n"
	if err := c.run(context.Background(), "createstaff", "frank"); err != nil {
		t.Fatal(err)
	}
	if err := c.run(context.Background(), "createtoken", "--name", "ci", "frank"); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(c.stdout.String())
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(token) {
		t.Fatalf("createtoken printed %q, want 40 hex digits", c.stdout)
	}
	store := c.store(t)
	u, _, err := store.UserByTokenHash(context.Background(), auth.HashToken(token))
	if err != nil || u.Username != "frank" {
		t.Fatalf("token does not authenticate frank: %v, %v", u, err)
	}
	tokens, err := store.ListAPITokens(context.Background(), u.ID)
	if err != nil || len(tokens) != 1 || tokens[0].Name != "ci" || tokens[0].Prefix != token[:6] {
		t.Errorf("stored tokens %+v, %v", tokens, err)
	}

	// A second call prints a different token; both work.
	if err := c.run(context.Background(), "createtoken", "frank"); err != nil {
		t.Fatal(err)
	}
	if second := strings.TrimSpace(c.stdout.String()); second == token {
		t.Errorf("createtoken printed the same token twice")
	}

	err = c.run(context.Background(), "createtoken", "nobody")
	if err == nil || !strings.Contains(err.Error(), `no user named "nobody"`) {
		t.Errorf("unknown user: %v", err)
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeFirstRun runs the default command the way the README does: it creates the
// first staff user, prints its password once, serves, and stops cleanly when cancelled.
func TestServeFirstRun(t *testing.T) {
	c := newCLI(t)
	addr := freeAddr(t)
	c.env["LISTEN_ADDR"] = addr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	c.stdout, c.stderr = &syncBuffer{}, &syncBuffer{}
	stderr := c.stderr
	go func() {
		done <- run(ctx, &cliEnv{stdin: strings.NewReader(""), stdout: c.stdout, stderr: stderr, getenv: func(k string) string { return c.env[k] }, passwordCost: c.passwordCost}, nil)
	}()

	re := regexp.MustCompile(`First run: created staff user "admin" with password (\S+)`)
	var password string
	waitFor(t, "the first-run password", func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve returned early: %v\n%s", err, stderr)
		default:
		}
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			password = m[1]
			return true
		}
		return false
	})
	if !strings.Contains(stderr.String(), "http://"+addr+"/login") {
		t.Errorf("the first-run message does not say where to sign in:\n%s", stderr)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	waitFor(t, "/healthz", func() bool {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	resp, err := client.PostForm("http://"+addr+"/login", url.Values{"username": {"admin"}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("login with the printed password: status %d, want 303", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v after cancellation, want nil", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("serve did not return after cancellation")
	}
	if n := strings.Count(stderr.String(), password); n != 1 {
		t.Errorf("the first-run password appears %d times in the output, want once", n)
	}

	// The second start finds the staff user and prints no password.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	c.env["LISTEN_ADDR"] = freeAddr(t)
	out2 := &syncBuffer{}
	go func() {
		done <- run(ctx2, &cliEnv{stdin: strings.NewReader(""), stdout: out2, stderr: out2, getenv: func(k string) string { return c.env[k] }, passwordCost: c.passwordCost}, []string{"serve"})
	}()
	waitFor(t, "the second start to listen", func() bool { return strings.Contains(out2.String(), "listening") })
	cancel2()
	if err := <-done; err != nil {
		t.Errorf("second serve: %v", err)
	}
	if strings.Contains(out2.String(), "First run") {
		t.Errorf("second start created a user again:\n%s", out2)
	}
}

// TestEnvVarsDocumentedInHelp keeps --help in step with the configuration.
func TestEnvVarsDocumentedInHelp(t *testing.T) {
	c := newCLI(t)
	if err := c.run(context.Background(), "--help"); err != nil {
		t.Fatal(err)
	}
	for _, s := range settings.FromEnvironment() {
		if !strings.Contains(c.stdout.String(), s.Env) {
			t.Errorf("--help does not list %s", s.Env)
		}
	}
}
