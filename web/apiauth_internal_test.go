package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/sessions"

	"matrixas/auth"
	"matrixas/db"
)

// guardFixture is a server whose router mounts the real authentication middleware in
// front of probe endpoints, one per guard, so each guard is tested on its own (the real
// routes are covered by routes_test.go's table).
type guardFixture struct {
	srv                            *httptest.Server
	staff, user, inactive          *db.User
	staffTok, userTok, inactiveTok string
	staffCookie, userCookie        *http.Cookie
	inactiveCookie                 *http.Cookie
}

func newGuardFixture(t *testing.T) *guardFixture {
	t.Helper()
	ctx := context.Background()
	env := map[string]string{"DATABASE_PATH": filepath.Join(t.TempDir(), "guards.db")}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	store, err := db.Open(ctx, cfg.DatabasePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s, err := New(ctx, cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"user": auth.UserFrom(r.Context()).Username})
	})
	r := chi.NewRouter()
	r.Group(func(r chi.Router) {
		r.Use(crossOrigin(cfg.PublicURL), limitBody(cfg.MaxBodyBytes), authenticate(store, s.sessions))
		r.With(requireUser).Get("/api/user", ok)
		r.With(requireStaff).Get("/api/staff", ok)
		r.With(requireStaff).Post("/api/staff", ok)
		r.With(staffWrites).Get("/api/staff-writes", ok)
		r.With(staffWrites).Post("/api/staff-writes", ok)
		r.With(staffWrites).Delete("/api/staff-writes", ok)
		r.With(requireStaffPage).Get("/page", ok)
	})
	f := &guardFixture{srv: httptest.NewServer(r)}
	t.Cleanup(f.srv.Close)

	mk := func(name string, staff, active bool) (*db.User, string, *http.Cookie) {
		// An inactive user still holding a token row and a session (written before
		// deactivation, or by hand) must get nothing from them.
		u := &db.User{Username: name, IsStaff: staff, IsActive: active}
		if err := store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		tok, prefix, hash := auth.NewAPIToken()
		if _, err := store.CreateAPIToken(ctx, u.ID, "t", prefix, hash); err != nil {
			t.Fatal(err)
		}
		// A session the way Login makes one.
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		sess := sessions.NewSession(s.sessions, auth.SessionCookie)
		sess.Options = &sessions.Options{Path: "/", MaxAge: 3600, HttpOnly: true}
		if err := s.sessions.Login(ctx, sess, u); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		if err := s.sessions.Save(req, rec, sess); err != nil {
			t.Fatal(err)
		}
		return u, tok, rec.Result().Cookies()[0]
	}
	f.staff, f.staffTok, f.staffCookie = mk("staff", true, true)
	f.user, f.userTok, f.userCookie = mk("alice", false, true)
	f.inactive, f.inactiveTok, f.inactiveCookie = mk("gone", true, false)
	return f
}

func TestAPIGuards(t *testing.T) {
	f := newGuardFixture(t)
	type cred struct {
		name  string
		apply func(*http.Request)
	}
	anon := cred{"anonymous", func(*http.Request) {}}
	token := func(name, tok string) cred {
		return cred{name, func(r *http.Request) { r.Header.Set("Authorization", "Token "+tok) }}
	}
	cookie := func(name string, c *http.Cookie) cred {
		return cred{name, func(r *http.Request) { r.AddCookie(c) }}
	}
	staffTok, userTok := token("staff token", f.staffTok), token("user token", f.userTok)
	staffSess, userSess := cookie("staff session", f.staffCookie), cookie("user session", f.userCookie)
	badTok, goneTok := token("unknown token", strings.Repeat("0", 40)), token("inactive user's token", f.inactiveTok)
	goneSess := cookie("inactive user's session", f.inactiveCookie)

	tests := []struct {
		method, path string
		c            cred
		want         int
		wantUser     string // for 200
	}{
		// requireUser
		{http.MethodGet, "/api/user", anon, http.StatusUnauthorized, ""},
		{http.MethodGet, "/api/user", badTok, http.StatusUnauthorized, ""},
		{http.MethodGet, "/api/user", goneTok, http.StatusUnauthorized, ""},
		{http.MethodGet, "/api/user", goneSess, http.StatusUnauthorized, ""},
		{http.MethodGet, "/api/user", userTok, http.StatusOK, "alice"},
		{http.MethodGet, "/api/user", userSess, http.StatusOK, "alice"},
		{http.MethodGet, "/api/user", staffTok, http.StatusOK, "staff"},
		// requireStaff
		{http.MethodGet, "/api/staff", anon, http.StatusUnauthorized, ""},
		{http.MethodGet, "/api/staff", userTok, http.StatusForbidden, ""},
		{http.MethodGet, "/api/staff", userSess, http.StatusForbidden, ""},
		{http.MethodGet, "/api/staff", staffTok, http.StatusOK, "staff"},
		{http.MethodGet, "/api/staff", staffSess, http.StatusOK, "staff"},
		{http.MethodPost, "/api/staff", anon, http.StatusUnauthorized, ""},
		{http.MethodPost, "/api/staff", userTok, http.StatusForbidden, ""},
		{http.MethodPost, "/api/staff", staffTok, http.StatusOK, "staff"},
		{http.MethodPost, "/api/staff", staffSess, http.StatusOK, "staff"},
		// staffWrites
		{http.MethodGet, "/api/staff-writes", anon, http.StatusUnauthorized, ""},
		{http.MethodGet, "/api/staff-writes", userTok, http.StatusOK, "alice"},
		{http.MethodPost, "/api/staff-writes", anon, http.StatusUnauthorized, ""},
		{http.MethodPost, "/api/staff-writes", userTok, http.StatusForbidden, ""},
		{http.MethodDelete, "/api/staff-writes", userSess, http.StatusForbidden, ""},
		{http.MethodPost, "/api/staff-writes", staffTok, http.StatusOK, "staff"},
		{http.MethodDelete, "/api/staff-writes", staffSess, http.StatusOK, "staff"},
		// requireStaffPage: tokens are for /api/ only.
		{http.MethodGet, "/page", anon, http.StatusSeeOther, ""},
		{http.MethodGet, "/page", staffTok, http.StatusSeeOther, ""},
		{http.MethodGet, "/page", userSess, http.StatusForbidden, ""},
		{http.MethodGet, "/page", goneSess, http.StatusSeeOther, ""},
		{http.MethodGet, "/page", staffSess, http.StatusOK, "staff"},
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path+" as "+tt.c.name, func(t *testing.T) {
			var body io.Reader
			if tt.method != http.MethodGet {
				body = strings.NewReader("{}")
			}
			req, err := http.NewRequest(tt.method, f.srv.URL+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			tt.c.apply(req)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, b)
			}
			var m map[string]string
			isJSON := json.Unmarshal(b, &m) == nil
			switch {
			case tt.want == http.StatusOK:
				if m["user"] != tt.wantUser {
					t.Errorf("handler saw user %q, want %q", m["user"], tt.wantUser)
				}
			case tt.want == http.StatusSeeOther:
				if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/login") {
					t.Errorf("redirect to %q, want /login", loc)
				}
			case strings.HasPrefix(tt.path, "/api/"):
				if !isJSON || m["detail"] == "" || len(m) != 1 {
					t.Errorf("body %s, want {\"detail\": ...}", b)
				}
				if tt.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
			}
		})
	}
}
