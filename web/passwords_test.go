package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/crypto/bcrypt"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/internal/testserver"
	"matrixas/web"
)

// postAccountForm posts a dashboard form as the signed-in staff user and returns the
// status and the page.
func postAccountForm(t *testing.T, ts *testserver.Server, c *http.Client, path string, form url.Values) (int, *goquery.Document) {
	t.Helper()
	req := newReq(t, ts, http.MethodPost, path, strings.NewReader(form.Encode()), nil)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", ts.URL)
	resp, body := do(t, c, req)
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, doc
}

// TestAccountPagePasswordPolicy: the account page refuses common passwords, passwords of
// digits only and passwords that contain the username (in any case), for a new staff
// user and for a password change, with a message on the field that says which.
func TestAccountPagePasswordPolicy(t *testing.T) {
	ts := testserver.New(t)
	c := ts.Browser(t)
	refused := []struct {
		name, username, password, want string
	}{
		{"common", "bob", "iloveyou123", "common"},
		{"common, in capitals", "bob", "QWERTYUIOP", "common"},
		{"digits only", "bob", "31415926535", "digits"},
		{"the username inside", "bob", "hey-bob-2024!", "username"},
		{"the username inside, other case", "bob", "BoB is my name", "username"},
	}
	for _, tt := range refused {
		t.Run("new staff user, "+tt.name, func(t *testing.T) {
			status, doc := postAccountForm(t, ts, c, "/account/staff", url.Values{"username": {tt.username}, "password": {tt.password}, "confirm_password": {tt.password}})
			msg := strings.Join(strings.Fields(doc.Find(`[data-testid="error-password"]`).Text()), " ")
			if status != http.StatusOK || !strings.Contains(msg, tt.want) {
				t.Errorf("%d, password error %q, want one saying %q", status, msg, tt.want)
			}
		})
	}
	for _, tt := range refused {
		pw := strings.NewReplacer("bob", "staff", "BoB", "StAfF").Replace(tt.password)
		t.Run("password change, "+tt.name, func(t *testing.T) {
			status, doc := postAccountForm(t, ts, c, "/account/password", url.Values{"current_password": {testserver.StaffPassword}, "new_password": {pw}, "confirm_password": {pw}})
			msg := strings.Join(strings.Fields(doc.Find(`[data-testid="error-new_password"]`).Text()), " ")
			if status != http.StatusOK || !strings.Contains(msg, tt.want) {
				t.Errorf("%d, new password error %q, want one saying %q", status, msg, tt.want)
			}
		})
	}
	if _, err := ts.Store.UserByUsername(t.Context(), "bob"); err == nil {
		t.Error("bob was created with a refused password")
	}
	// The old password still signs in: nothing was changed.
	if resp, _ := do(t, plainClient, loginReq(t, ts, staffForm, nil)); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("login with the unchanged password: %d", resp.StatusCode)
	}
}

// TestLoginUpgradesOldPasswordHashes: a hash made at a lower bcrypt cost (before the
// cost went up to 12) still signs in, is replaced at the next successful sign-in by a
// cost-12 hash of the same password, and the upgrade signs nobody out.
func TestLoginUpgradesOldPasswordHashes(t *testing.T) {
	ts := testserver.New(t, testserver.Options{PasswordCost: auth.PasswordCost})
	ctx := context.Background()
	const password = "an old password 42"
	old, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	u := &db.User{Username: "veteran", IsStaff: true, IsActive: true, PasswordHash: string(old)}
	if err := ts.Store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	other := ts.SessionCookie(t, u) // a browser signed in before the upgrade
	form := url.Values{"username": {"veteran"}, "password": {password}}

	resp, _ := do(t, plainClient, loginReq(t, ts, form, nil))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login with the old hash: %d, want 303", resp.StatusCode)
	}
	got, err := ts.Store.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost([]byte(got.PasswordHash)); err != nil || cost != auth.PasswordCost {
		t.Fatalf("stored hash cost %d (%v), want %d", cost, err, auth.PasswordCost)
	}
	for name, c := range map[string]*http.Cookie{"the new session": sessionCookieOf(resp), "an older session": other} {
		if status, _ := pageAs(t, ts, c); status != http.StatusOK {
			t.Errorf("%s after the upgrade: %d, want 200", name, status)
		}
	}
	// The upgraded hash is of the same password.
	if resp, _ := do(t, plainClient, loginReq(t, ts, form, nil)); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("login after the upgrade: %d, want 303", resp.StatusCode)
	}
	if again, _ := ts.Store.UserByID(ctx, u.ID); again.PasswordHash != got.PasswordHash {
		t.Error("a hash already at the cost was replaced again")
	}
}

// TestBootstrapPasswordPolicy: a BOOTSTRAP_PASSWORD_FILE password the policy refuses
// stops the first run with a message naming the variable and the reason; one it accepts
// is hashed at bcrypt cost 12.
func TestBootstrapPasswordPolicy(t *testing.T) {
	tests := []struct{ password, want string }{
		{"password1234", "common"},
		{"98765432109876", "digits"},
		{"Admin-2024-rocks", "username"},
		{"a first-run password 5", ""},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		file := filepath.Join(dir, "pw")
		if err := os.WriteFile(file, []byte(tt.password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"DATABASE_PATH": filepath.Join(dir, "b.db"), "BOOTSTRAP_PASSWORD_FILE": file}
		cfg, err := web.LoadConfig(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		store, err := db.Open(context.Background(), cfg.DatabasePath)
		if err != nil {
			t.Fatal(err)
		}
		user, _, err := bootstrap(context.Background(), cfg, store)
		if tt.want == "" {
			u, uerr := store.UserByUsername(context.Background(), "admin")
			if err != nil || uerr != nil || user != "admin" {
				t.Fatalf("%q: %q, %v, %v; want admin created", tt.password, user, err, uerr)
			}
			if cost, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil || cost != auth.PasswordCost {
				t.Errorf("first-run hash cost %d (%v), want %d", cost, err, auth.PasswordCost)
			}
			store.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "BOOTSTRAP_PASSWORD_FILE") || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), tt.password) {
			t.Errorf("%q: %v, want an error naming BOOTSTRAP_PASSWORD_FILE and saying %q (without the password)", tt.password, err, tt.want)
		}
		if n, _ := store.CountStaff(context.Background()); n != 0 {
			t.Errorf("%q: a staff user was created", tt.password)
		}
		store.Close()
	}
}

// TestBootstrapWithoutActiveStaff: when every staff account is deactivated and the
// bootstrap name is one of them (a restored database), PrepareBootstrap creates nothing and
// says, as ErrNoActiveStaff, that createstaff repairs it; serve goes on with it
// (main's TestServeStartsWithoutActiveStaff).
func TestBootstrapWithoutActiveStaff(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"DATABASE_PATH": filepath.Join(dir, "b.db")}
	cfg, err := web.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	store, err := db.Open(context.Background(), cfg.DatabasePath)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.CreateUser(context.Background(), &db.User{Username: "admin", IsStaff: true}); err != nil {
		t.Fatal(err)
	}
	user, password, err := bootstrap(context.Background(), cfg, store)
	if !errors.Is(err, web.ErrNoActiveStaff) || !strings.Contains(err.Error(), "matrixas createstaff") || user != "" || password != "" {
		t.Errorf("Bootstrap: %q %q %v; want ErrNoActiveStaff naming matrixas createstaff", user, password, err)
	}
}

// bootstrap is what serve does on a first start, in one call: PrepareBootstrap, then
// FirstStaff.Create. It returns "" when nothing was created.
func bootstrap(ctx context.Context, cfg *web.Config, store *db.Store) (username, password string, err error) {
	first, err := web.PrepareBootstrap(ctx, cfg, store)
	if first == nil || err != nil {
		return "", "", err
	}
	if password, err = first.Create(ctx); err != nil {
		return "", "", err
	}
	return first.Username, password, nil
}
