package testserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/settings"
)

// sessionStore returns a session store signing with the server's key. Sessions live in
// the database, so a cookie it mints is one the server accepts.
func (s *Server) sessionStore(t testing.TB) *auth.SessionStore {
	t.Helper()
	key := s.Config.SessionKey
	if key == nil {
		k, err := s.Web.Settings().Get(context.Background(), settings.SessionKey.Key)
		if err != nil || k == "" {
			t.Fatalf("testserver: session key: %q, %v", k, err)
		}
		key = []byte(k)
	}
	return auth.NewSessionStore(s.Store, key, false)
}

// SessionCookie mints a server-side session for u without the login form (so it works
// for non-staff users too, and costs no password hash), and returns its cookie. A nil u
// gives an anonymous session, as a visitor holds before signing in.
func (s *Server) SessionCookie(t testing.TB, u *db.User) *http.Cookie {
	t.Helper()
	store := s.sessionStore(t)
	r := httptest.NewRequest(http.MethodGet, s.URL+"/", nil)
	sess := sessions.NewSession(store, auth.SessionCookie)
	sess.Options = &sessions.Options{Path: "/", MaxAge: int(auth.SessionMaxAge.Seconds()), HttpOnly: true, SameSite: http.SameSiteLaxMode}
	sess.IsNew = true
	if u != nil {
		if err := store.Login(r.Context(), sess, u); err != nil {
			t.Fatalf("testserver: session for %s: %v", u.Username, err)
		}
	} else {
		sess.Values["anonymous"] = true
	}
	rec := httptest.NewRecorder()
	if err := store.Save(r, rec, sess); err != nil {
		t.Fatalf("testserver: save session: %v", err)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == auth.SessionCookie {
			return c
		}
	}
	t.Fatal("testserver: no session cookie was set")
	return nil
}

// BrowserAs returns a client like AnonymousBrowser whose jar holds a session for u
// (minted by SessionCookie; u may be a non-staff user, who cannot use the login form).
func (s *Server) BrowserAs(t testing.TB, u *db.User) *http.Client {
	t.Helper()
	c := s.AnonymousBrowser(t)
	base, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	c.Jar.SetCookies(base, []*http.Cookie{s.SessionCookie(t, u)})
	return c
}

// SessionID decodes a session cookie's value into the session id it carries, so a test
// can look the session row up (db.Store.SessionByHash(ctx, auth.HashToken(id))). It
// returns "" for a cookie the server would not accept.
func (s *Server) SessionID(t testing.TB, c *http.Cookie) string {
	t.Helper()
	key := s.Config.SessionKey
	if key == nil {
		k, err := s.Web.Settings().Get(context.Background(), settings.SessionKey.Key)
		if err != nil {
			t.Fatal(err)
		}
		key = []byte(k)
	}
	var id string
	if err := securecookie.DecodeMulti(auth.SessionCookie, c.Value, &id, securecookie.CodecsFromPairs(key)...); err != nil {
		return ""
	}
	return id
}
