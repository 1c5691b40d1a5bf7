package web_test

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"testing"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/internal/testserver"
)

// credentials are a user's ways in: two browser sessions and two API tokens.
type credentials struct {
	sessions []*http.Cookie
	tokens   []string
}

func credentialsOf(t *testing.T, ts *testserver.Server, u *db.User) credentials {
	t.Helper()
	return credentials{
		sessions: []*http.Cookie{ts.SessionCookie(t, u), ts.SessionCookie(t, u)},
		tokens:   []string{ts.NewToken(t, u), ts.NewToken(t, u)},
	}
}

// working reports how many of the credentials still authenticate: a session on
// /api/users/ (any authenticated caller may read it) and a token on the same.
func (c credentials) working(t *testing.T, ts *testserver.Server) int {
	t.Helper()
	n := 0
	for _, s := range c.sessions {
		resp, _ := do(t, plainClient, newReq(t, ts, http.MethodGet, "/api/users/", nil, s))
		switch resp.StatusCode {
		case http.StatusOK:
			n++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("session on /api/users/: %d", resp.StatusCode)
		}
	}
	for _, tok := range c.tokens {
		switch code := ts.JSON(t, http.MethodGet, "/api/users/", tok, nil, nil); code {
		case http.StatusOK:
			n++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("token on /api/users/: %d", code)
		}
	}
	return n
}

// TestDeactivationRevokesEverywhere: whichever way a user is deactivated (the API's
// deactivate action, the API's upsert with is_active false, the dashboard's staff list),
// every session and API token of theirs stops working at once, other users keep theirs,
// and reactivating does not bring the old credentials back.
func TestDeactivationRevokesEverywhere(t *testing.T) {
	tests := []struct {
		name       string
		staffUser  bool // the dashboard deactivates staff users only
		deactivate func(t *testing.T, ts *testserver.Server, u *db.User)
		reactivate func(t *testing.T, ts *testserver.Server, u *db.User)
	}{
		{"API deactivate action", false,
			func(t *testing.T, ts *testserver.Server, u *db.User) {
				if code := ts.JSON(t, http.MethodPost, "/api/users/"+u.UUID+"/deactivate/", ts.StaffToken, nil, nil); code != http.StatusOK {
					t.Fatalf("deactivate: %d", code)
				}
			},
			func(t *testing.T, ts *testserver.Server, u *db.User) {
				if code := ts.JSON(t, http.MethodPatch, "/api/users/"+u.UUID+"/", ts.StaffToken, map[string]any{"is_active": true}, nil); code != http.StatusOK {
					t.Fatalf("reactivate: %d", code)
				}
			}},
		{"API upsert with is_active false", false,
			func(t *testing.T, ts *testserver.Server, u *db.User) {
				if code := ts.JSON(t, http.MethodPatch, "/api/users/"+u.UUID+"/", ts.StaffToken, map[string]any{"is_active": false}, nil); code != http.StatusOK {
					t.Fatalf("patch is_active: %d", code)
				}
			},
			func(t *testing.T, ts *testserver.Server, u *db.User) {
				if code := ts.JSON(t, http.MethodPatch, "/api/users/"+u.UUID+"/", ts.StaffToken, map[string]any{"is_active": true}, nil); code != http.StatusOK {
					t.Fatalf("reactivate: %d", code)
				}
			}},
		{"dashboard staff list", true,
			func(t *testing.T, ts *testserver.Server, u *db.User) {
				staffPost(t, ts, "/account/staff/"+strconv.FormatInt(u.ID, 10)+"/deactivate")
			},
			func(t *testing.T, ts *testserver.Server, u *db.User) {
				staffPost(t, ts, "/account/staff/"+strconv.FormatInt(u.ID, 10)+"/activate")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := testserver.New(t)
			ctx := context.Background()
			u := &db.User{Username: "victim", FullName: "Victim", IsStaff: tt.staffUser, IsActive: true}
			if err := ts.Store.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			victim := credentialsOf(t, ts, u)
			bystander := credentialsOf(t, ts, ts.User)
			if n := victim.working(t, ts); n != 4 {
				t.Fatalf("%d of 4 credentials work before deactivation", n)
			}

			tt.deactivate(t, ts, u)
			if n := victim.working(t, ts); n != 0 {
				t.Errorf("%d of the deactivated user's 4 credentials still work", n)
			}
			if n := bystander.working(t, ts); n != 4 {
				t.Errorf("%d of another user's 4 credentials work after the deactivation, want 4", n)
			}
			tt.reactivate(t, ts, u)
			if got, err := ts.Store.UserByID(ctx, u.ID); err != nil || !got.IsActive {
				t.Fatalf("reactivation: %+v %v", got, err)
			}
			if n := victim.working(t, ts); n != 0 {
				t.Errorf("reactivation brought %d old credentials back", n)
			}
		})
	}
}

// staffPost posts an empty dashboard form as staff and expects the usual redirect.
func staffPost(t *testing.T, ts *testserver.Server, path string) {
	t.Helper()
	req := newReq(t, ts, http.MethodPost, path, nil, ts.SessionCookie(t, ts.Staff))
	req.Header.Set("Origin", ts.URL)
	if resp, body := do(t, plainClient, req); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST %s: %d: %.200s", path, resp.StatusCode, body)
	}
}

// TestExpiredSessionIsRefused: a session past its expiry is not accepted, even with a
// correctly signed cookie, and an expired session's row does not come back to life.
func TestExpiredSessionIsRefused(t *testing.T) {
	ts := testserver.New(t)
	ctx := context.Background()
	cookie := ts.SessionCookie(t, ts.Staff)
	if status, _ := pageAs(t, ts, cookie); status != http.StatusOK {
		t.Fatalf("fresh session: %d", status)
	}
	hash := auth.HashToken(ts.SessionID(t, cookie))
	err := ts.Store.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE sessions SET expires_at = 1 WHERE id_hash = ?`, hash)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if status, loc := pageAs(t, ts, cookie); status != http.StatusSeeOther || loc != "/login" {
		t.Errorf("expired session: %d to %q, want 303 to /login", status, loc)
	}
	resp, _ := do(t, plainClient, newReq(t, ts, http.MethodGet, "/api/users/", nil, cookie))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired session on the API: %d, want 401", resp.StatusCode)
	}
}
