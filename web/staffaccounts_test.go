package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"matrixas/db"
	"matrixas/handlers/respond"
	"matrixas/internal/testserver"
)

// staffManagedDetail reports whether body is a 403 detail that says where staff
// accounts are managed instead.
func staffManagedDetail(body []byte) bool {
	var d respond.Detail
	return json.Unmarshal(body, &d) == nil && strings.Contains(d.Detail, "Account page") && strings.Contains(d.Detail, "matrixas createstaff")
}

// TestDirectoryAPICannotChangeStaffAccounts is issue 13's reproduction: a staff token
// renamed a staff account through the directory API and deactivated its own account,
// the last staff one, after which serve refused to start. Staff accounts are operators
// of this server, not platform users: every directory write on one is 403 with a detail
// that says where they are managed, and nothing changes.
func TestDirectoryAPICannotChangeStaffAccounts(t *testing.T) {
	ts := testserver.New(t)
	ctx := context.Background()
	other := &db.User{Username: "operator2", Email: "op2@example.org", FullName: "Op Two", IsStaff: true, IsActive: true}
	if err := ts.Store.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		name, method, path string
		body               any
	}{
		{"PATCH own account", http.MethodPatch, "/api/users/" + ts.Staff.UUID + "/", map[string]any{"username": "renamed", "email": "x@evil.example"}},
		{"PATCH another staff account", http.MethodPatch, "/api/users/" + other.UUID + "/", map[string]any{"username": "renamed"}},
		{"PATCH is_active false", http.MethodPatch, "/api/users/" + other.UUID + "/", map[string]any{"is_active": false}},
		{"PATCH nothing", http.MethodPatch, "/api/users/" + other.UUID + "/", map[string]any{}},
		{"PUT", http.MethodPut, "/api/users/" + other.UUID + "/", map[string]any{"username": "renamed"}},
		{"PUT with a body that would not validate", http.MethodPut, "/api/users/" + other.UUID + "/", map[string]any{"email": "not an address"}},
		{"deactivate own account", http.MethodPost, "/api/users/" + ts.Staff.UUID + "/deactivate/", nil},
		{"deactivate another staff account", http.MethodPost, "/api/users/" + other.UUID + "/deactivate/", nil},
		{"upsert by a staff uuid", http.MethodPost, "/api/users/", map[string]any{"uuid": other.UUID, "username": "renamed", "is_active": false}},
		{"upsert by a staff uuid with dashes", http.MethodPost, "/api/users/", map[string]any{"uuid": dashed(other.UUID), "username": "renamed"}},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			resp, body := ts.Request(t, w.method, w.path, ts.StaffToken, w.body)
			if resp.StatusCode != http.StatusForbidden || !staffManagedDetail(body) {
				t.Errorf("%d %s, want 403 with a detail naming the Account page and matrixas createstaff", resp.StatusCode, body)
			}
		})
	}
	for _, u := range []*db.User{ts.Staff, other} {
		got, err := ts.Store.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Username != u.Username || got.Email != u.Email || got.FullName != u.FullName || !got.IsActive || !got.IsStaff {
			t.Errorf("staff account %s changed: %+v", u.Username, got)
		}
	}
	// The staff token still works: it was not revoked by a deactivation.
	if code := ts.JSON(t, http.MethodGet, "/api/admin/matrix-appservice/status/", ts.StaffToken, nil, nil); code != http.StatusOK {
		t.Errorf("staff token after the refused writes: %d", code)
	}
	// Platform users are still managed here.
	if code := ts.JSON(t, http.MethodPatch, "/api/users/"+ts.User.UUID+"/", ts.StaffToken, map[string]any{"full_name": "Alice A."}, nil); code != http.StatusOK {
		t.Errorf("PATCH a platform user: %d, want 200", code)
	}
}

func dashed(u string) string {
	return u[:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:]
}

// TestDirectoryAPIHidesStaffAccounts: non-staff callers do not see staff accounts in
// /api/users/ (list, search, count, detail: 404); staff callers do.
func TestDirectoryAPIHidesStaffAccounts(t *testing.T) {
	ts := testserver.New(t)
	type listed struct {
		count int
		names []string
	}
	list := func(cred func(*http.Request), query string) listed {
		req := newReq(t, ts, http.MethodGet, "/api/users/"+query, nil, nil)
		cred(req)
		resp, body := do(t, plainClient, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/users/%s: %d %s", query, resp.StatusCode, body)
		}
		var users []struct{ Username string }
		if err := json.Unmarshal(body, &users); err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(resp.Header.Get("X-Result-Count"))
		var out listed
		out.count = n
		for _, u := range users {
			out.names = append(out.names, u.Username)
		}
		return out
	}
	nonStaff := map[string]func(*http.Request){
		"non-staff token":   withToken(ts.UserToken),
		"non-staff session": withCookie(ts.SessionCookie(t, ts.User)),
	}
	for name, cred := range nonStaff {
		for _, q := range []string{"", "?search=staff", "?is_active=true"} {
			got := list(cred, q)
			for _, n := range got.names {
				if n == ts.Staff.Username {
					t.Errorf("%s, /api/users/%s lists the staff account", name, q)
				}
			}
			if got.count != len(got.names) {
				t.Errorf("%s, /api/users/%s: X-Result-Count %d for %d users (a hidden account counted?)", name, q, got.count, len(got.names))
			}
		}
		req := newReq(t, ts, http.MethodGet, "/api/users/"+ts.Staff.UUID+"/", nil, nil)
		cred(req)
		if resp, body := do(t, plainClient, req); resp.StatusCode != http.StatusNotFound || !hasJSONField(body, "detail") {
			t.Errorf("%s, staff account's detail: %d %s, want 404 {\"detail\"}", name, resp.StatusCode, body)
		}
	}
	if got := list(withToken(ts.StaffToken), ""); !contains(got.names, ts.Staff.Username) || !contains(got.names, ts.User.Username) {
		t.Errorf("staff token lists %v, want staff and platform users", got.names)
	}
	if code := ts.JSON(t, http.MethodGet, "/api/users/"+ts.Staff.UUID+"/", ts.StaffToken, nil, nil); code != http.StatusOK {
		t.Errorf("staff token, staff account's detail: %d, want 200", code)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestDashboardCannotDeactivateTheLastStaffAccount: two staff users who deactivate each
// other at the same moment must not both succeed, whatever the interleaving: the rule is
// checked in the same write transaction as the deactivation.
func TestDashboardCannotDeactivateTheLastStaffAccount(t *testing.T) {
	ts := testserver.New(t)
	ctx := context.Background()
	other := &db.User{Username: "operator2", IsStaff: true, IsActive: true}
	if err := ts.Store.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		var wg sync.WaitGroup
		for _, pair := range [][2]*db.User{{ts.Staff, other}, {other, ts.Staff}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := newReq(t, ts, http.MethodPost, "/account/staff/"+strconv.FormatInt(pair[1].ID, 10)+"/deactivate", strings.NewReader(url.Values{}.Encode()), ts.SessionCookie(t, pair[0]))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", ts.URL)
				resp, err := plainClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}()
		}
		wg.Wait()
		n, err := ts.Store.CountStaff(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("round %d: both staff accounts deactivated each other: no active staff left", round)
		}
		// Bring both back for the next round.
		for _, u := range []*db.User{ts.Staff, other} {
			if err := ts.Store.SetUserActive(ctx, u.ID, true); err != nil {
				t.Fatal(err)
			}
		}
	}
}
