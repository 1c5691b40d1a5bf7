package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"matrixas/internal/testserver"
)

func TestAccountChangePassword(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	other := srv.Browser(t) // a second browser signed in as the same user

	tests := []struct {
		name   string
		form   url.Values
		errors map[string]string
	}{
		{"wrong current", url.Values{"current_password": {"nope-nope-nope"}, "new_password": {"another-password-1"}, "confirm_password": {"another-password-1"}},
			map[string]string{"current_password": "This is not your current password."}},
		{"too short", url.Values{"current_password": {testserver.StaffPassword}, "new_password": {"short"}, "confirm_password": {"short"}},
			map[string]string{"new_password": "Use at least 10 characters."}},
		{"mismatch", url.Values{"current_password": {testserver.StaffPassword}, "new_password": {"another-password-1"}, "confirm_password": {"another-password-2"}},
			map[string]string{"confirm_password": "The two new passwords differ."}},
		{"unchanged", url.Values{"current_password": {testserver.StaffPassword}, "new_password": {testserver.StaffPassword}, "confirm_password": {testserver.StaffPassword}},
			map[string]string{"new_password": "Choose a password different from the current one."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, doc := postForm(t, srv, c, "/account/password", tt.form)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200 (the form again)", resp.StatusCode)
			}
			for field, msg := range tt.errors {
				if got := textOf(doc, "error-"+field); got != msg {
					t.Errorf("%s error %q, want %q", field, got, msg)
				}
			}
			if n := doc.Find(".field-error").Length(); n != len(tt.errors) {
				t.Errorf("%d field errors, want %d", n, len(tt.errors))
			}
		})
	}

	got := postRedirectFlash(t, srv, c, "/account/password", url.Values{
		"current_password": {testserver.StaffPassword}, "new_password": {"brand-new-password"}, "confirm_password": {"brand-new-password"},
	}, "/account")
	if len(got) != 1 || !strings.HasPrefix(got[0], "success: Password changed.") {
		t.Errorf("flashes %q", got)
	}
	// This browser stays signed in (fresh session); the other one is signed out.
	if resp, _ := getPage(t, srv, c, "/account"); resp.StatusCode != http.StatusOK {
		t.Errorf("the browser that changed the password: status %d", resp.StatusCode)
	}
	if resp, _ := getPage(t, srv, other, "/account"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("another session after the change: status %d to %q, want a redirect to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The new password signs in; the old one does not.
	anon := srv.AnonymousBrowser(t)
	if resp, _ := postForm(t, srv, anon, "/login", url.Values{"username": {"staff"}, "password": {testserver.StaffPassword}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("old password: status %d", resp.StatusCode)
	}
	if resp, _ := postForm(t, srv, anon, "/login", url.Values{"username": {"staff"}, "password": {"brand-new-password"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("new password: status %d", resp.StatusCode)
	}
}

func TestAccountChangePasswordThrottlesGuessing(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	wrong := url.Values{"current_password": {"guess-guess-guess"}, "new_password": {"another-password-1"}, "confirm_password": {"another-password-1"}}
	for i := 0; i < 5; i++ {
		if resp, _ := postForm(t, srv, c, "/account/password", wrong); resp.StatusCode != http.StatusOK {
			t.Fatalf("attempt %d: status %d", i+1, resp.StatusCode)
		}
	}
	resp, doc := postForm(t, srv, c, "/account/password", wrong)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("6th wrong password: status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(textOf(doc, "form-error"), "Too many wrong current passwords") {
		t.Errorf("form error %q", textOf(doc, "form-error"))
	}
}

func TestAccountAPITokens(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)

	resp, doc := postForm(t, srv, c, "/account/tokens", url.Values{"name": {"  "}})
	if resp.StatusCode != http.StatusOK || textOf(doc, "error-name") == "" {
		t.Fatalf("empty name: status %d, error %q", resp.StatusCode, textOf(doc, "error-name"))
	}
	if doc.Find(tid("new-token")).Length() != 0 {
		t.Fatal("a token was shown for an invalid form")
	}

	resp, doc = postForm(t, srv, c, "/account/tokens", url.Values{"name": {"platform sync"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: status %d", resp.StatusCode)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on the page showing a token", cc)
	}
	assertAccessible(t, doc)
	token := textOf(doc, "new-token")
	if len(token) != 40 {
		t.Fatalf("new token %q", token)
	}
	if code := srv.JSON(t, http.MethodGet, "/api/admin/matrix-appservice/status/", token, nil, nil); code != http.StatusOK {
		t.Fatalf("the new token on the API: status %d", code)
	}

	// The list shows the prefix only; reloading never shows the token again.
	_, doc = getPage(t, srv, c, "/account")
	if strings.Contains(doc.Text(), token) {
		t.Fatal("the account page shows the token again")
	}
	var id string
	doc.Find(tid("token-row")).Each(func(_ int, s *goquery.Selection) {
		if strings.Contains(s.Text(), "platform sync") {
			if got := strings.TrimSpace(s.Find(tid("token-prefix")).Text()); got != token[:6]+"…" {
				t.Errorf("prefix %q", got)
			}
			action, _ := s.Find("form").Attr("action")
			id = strings.TrimSuffix(strings.TrimPrefix(action, "/account/tokens/"), "/revoke")
		}
	})
	if id == "" {
		t.Fatal("the new token is not listed")
	}

	got := postRedirectFlash(t, srv, c, "/account/tokens/"+id+"/revoke", nil, "/account")
	if len(got) != 1 || !strings.HasPrefix(got[0], "success: Token revoked") {
		t.Errorf("flashes %q", got)
	}
	if code := srv.JSON(t, http.MethodGet, "/api/admin/matrix-appservice/status/", token, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("a revoked token: status %d, want 401", code)
	}
	got = postRedirectFlash(t, srv, c, "/account/tokens/"+id+"/revoke", nil, "/account")
	if len(got) != 1 || !strings.HasPrefix(got[0], "error: That token does not exist") {
		t.Errorf("revoking twice: flashes %q", got)
	}

	// Someone else's token cannot be revoked from here.
	aliceTokens, err := srv.Store.ListAPITokens(context.Background(), srv.User.ID)
	if err != nil || len(aliceTokens) == 0 {
		t.Fatalf("alice's tokens: %v %v", aliceTokens, err)
	}
	postRedirectFlash(t, srv, c, "/account/tokens/"+strconv.FormatInt(aliceTokens[0].ID, 10)+"/revoke", nil, "/account")
	if code := srv.JSON(t, http.MethodGet, "/api/admin/matrix-appservice/status/", srv.UserToken, nil, nil); code != http.StatusForbidden {
		t.Errorf("alice's token after staff tried to revoke it: status %d, want 403 (still valid, not staff)", code)
	}
}

func TestAccountStaffUsers(t *testing.T) {
	srv := testserver.New(t)
	c := srv.Browser(t)
	good := func(mod func(url.Values)) url.Values {
		v := url.Values{"username": {"bob"}, "full_name": {"Bob B"}, "email": {"bob@example.org"}, "password": {"builders-pass-1"}, "confirm_password": {"builders-pass-1"}}
		if mod != nil {
			mod(v)
		}
		return v
	}
	tests := []struct {
		name  string
		form  url.Values
		field string
	}{
		{"no username", good(func(v url.Values) { v.Set("username", "") }), "username"},
		{"spaces", good(func(v url.Values) { v.Set("username", "bob smith") }), "username"},
		{"taken", good(func(v url.Values) { v.Set("username", "alice") }), "username"},
		{"bad email", good(func(v url.Values) { v.Set("email", "bob at example") }), "email"},
		{"short password", good(func(v url.Values) { v.Set("password", "short"); v.Set("confirm_password", "short") }), "password"},
		{"mismatch", good(func(v url.Values) { v.Set("confirm_password", "builders-pass-2") }), "confirm_password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, doc := postForm(t, srv, c, "/account/staff", tt.form)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if textOf(doc, "error-"+tt.field) == "" {
				t.Errorf("no error on %s", tt.field)
			}
			if doc.Find(".field-error").Length() != 1 {
				t.Errorf("%d errors, want 1", doc.Find(".field-error").Length())
			}
			// What was typed is kept, except the passwords.
			if v, _ := doc.Find("#staff-full-name").Attr("value"); v != "Bob B" {
				t.Errorf("full name not kept: %q", v)
			}
			if v, _ := doc.Find("#staff-password").Attr("value"); v != "" {
				t.Errorf("password echoed back: %q", v)
			}
		})
	}

	got := postRedirectFlash(t, srv, c, "/account/staff", good(nil), "/account")
	if len(got) != 1 || got[0] != "success: Staff user bob added. They can sign in now." {
		t.Errorf("flashes %q", got)
	}
	bob, err := srv.Store.UserByUsername(context.Background(), "bob")
	if err != nil || !bob.IsStaff || !bob.IsActive || bob.Email != "bob@example.org" {
		t.Fatalf("bob: %+v %v", bob, err)
	}
	bobBrowser := srv.AnonymousBrowser(t)
	if resp, _ := postForm(t, srv, bobBrowser, "/login", url.Values{"username": {"bob"}, "password": {"builders-pass-1"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob signs in: status %d", resp.StatusCode)
	}

	id := strconv.FormatInt(bob.ID, 10)
	got = postRedirectFlash(t, srv, c, "/account/staff/"+id+"/deactivate", nil, "/account")
	if len(got) != 1 || !strings.HasPrefix(got[0], "success: bob is deactivated") {
		t.Errorf("flashes %q", got)
	}
	if resp, _ := getPage(t, srv, bobBrowser, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("bob's session after deactivation: status %d, want a redirect to login", resp.StatusCode)
	}
	_, doc := getPage(t, srv, c, "/account")
	if got := textOf(doc, "staff-row-bob"); !strings.Contains(got, "Deactivated") {
		t.Errorf("bob's row %q", got)
	}
	got = postRedirectFlash(t, srv, c, "/account/staff/"+id+"/activate", nil, "/account")
	if len(got) != 1 || !strings.HasPrefix(got[0], "success: bob is active again") {
		t.Errorf("flashes %q", got)
	}

	// Yourself: refused, still active.
	got = postRedirectFlash(t, srv, c, "/account/staff/"+strconv.FormatInt(srv.Staff.ID, 10)+"/deactivate", nil, "/account")
	if len(got) != 1 || !strings.HasPrefix(got[0], "error: You cannot deactivate yourself") {
		t.Errorf("flashes %q", got)
	}
	if me, _ := srv.Store.UserByID(context.Background(), srv.Staff.ID); !me.IsActive {
		t.Error("staff deactivated itself")
	}
	// A platform (non-staff) user is not managed here; nor is a user that does not exist.
	for _, id := range []int64{srv.User.ID, 999999} {
		if resp, _ := postForm(t, srv, c, "/account/staff/"+strconv.FormatInt(id, 10)+"/deactivate", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("deactivate user %d: status %d, want 404", id, resp.StatusCode)
		}
	}
	if u, _ := srv.Store.UserByID(context.Background(), srv.User.ID); !u.IsActive {
		t.Error("alice was deactivated through the staff form")
	}
}
