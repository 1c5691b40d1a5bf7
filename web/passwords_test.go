package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"matrixas/internal/testserver"
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
