package auth

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"matrixas/db"
)

// SessionCookie is the name of the dashboard's session cookie.
const SessionCookie = "matrixas_session"

// SessionMaxAge is how long a session lives without a new login.
const SessionMaxAge = 7 * 24 * time.Hour

const sessionUserKey = "uid"

// SessionStore is a gorilla/sessions store that keeps session values in SQLite. The cookie
// holds only a signed random id, so logout and a password change revoke a session for real.
type SessionStore struct {
	store   *db.Store
	codecs  []securecookie.Codec
	options sessions.Options
}

var _ sessions.Store = (*SessionStore)(nil)

// NewSessionStore signs cookies with key; secure sets the cookie's Secure flag (serve over https).
func NewSessionStore(store *db.Store, key []byte, secure bool) *SessionStore {
	codecs := securecookie.CodecsFromPairs(key)
	for _, c := range codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.MaxAge(int(SessionMaxAge.Seconds()))
		}
	}
	return &SessionStore{
		store:  store,
		codecs: codecs,
		options: sessions.Options{
			Path:     "/",
			MaxAge:   int(SessionMaxAge.Seconds()),
			HttpOnly: true,
			Secure:   secure,
			SameSite: http.SameSiteLaxMode,
		},
	}
}

// Get returns the request's session (cached per request by gorilla's registry).
func (s *SessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New loads the session named by the request's cookie, or returns a new empty one.
func (s *SessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	opts := s.options
	sess.Options = &opts
	sess.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return sess, nil
	}
	var id string
	if err := securecookie.DecodeMulti(name, c.Value, &id, s.codecs...); err != nil {
		return sess, nil // a forged or expired cookie is simply no session
	}
	row, err := s.store.SessionByHash(r.Context(), HashToken(id))
	if errors.Is(err, db.ErrNotFound) {
		return sess, nil
	}
	if err != nil {
		return sess, err
	}
	if err := gob.NewDecoder(bytes.NewReader(row.Data)).Decode(&sess.Values); err != nil {
		return sess, nil
	}
	sess.ID = id
	sess.IsNew = false
	return sess, nil
}

// Save writes the session row and the cookie; a negative MaxAge deletes both.
func (s *SessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	ctx := r.Context()
	if sess.Options.MaxAge < 0 {
		if sess.ID != "" {
			if err := s.store.DeleteSession(ctx, HashToken(sess.ID)); err != nil {
				return err
			}
		}
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", sess.Options))
		return nil
	}
	if sess.ID == "" {
		sess.ID = RandomHex(32)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(sess.Values); err != nil {
		return fmt.Errorf("auth: encode session: %w", err)
	}
	uid, _ := sess.Values[sessionUserKey].(int64)
	row := &db.SessionRow{IDHash: HashToken(sess.ID), UserID: uid, Data: buf.Bytes(),
		ExpiresAt: time.Now().Add(time.Duration(sess.Options.MaxAge) * time.Second)}
	if err := s.store.SaveSession(ctx, row); err != nil {
		return err
	}
	encoded, err := securecookie.EncodeMulti(sess.Name(), sess.ID, s.codecs...)
	if err != nil {
		return fmt.Errorf("auth: encode session cookie: %w", err)
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), encoded, sess.Options))
	return nil
}

// Login binds sess to user under a fresh id (the old row is deleted: no session fixation).
func (s *SessionStore) Login(ctx context.Context, sess *sessions.Session, user *db.User) error {
	if sess.ID != "" {
		if err := s.store.DeleteSession(ctx, HashToken(sess.ID)); err != nil {
			return err
		}
	}
	sess.ID = ""
	sess.Values[sessionUserKey] = user.ID
	return nil
}

// Logout marks sess for deletion on Save.
func (s *SessionStore) Logout(sess *sessions.Session) {
	sess.Options.MaxAge = -1
	delete(sess.Values, sessionUserKey)
}

// SessionUserID is the user id bound to sess, or 0.
func SessionUserID(sess *sessions.Session) int64 {
	uid, _ := sess.Values[sessionUserKey].(int64)
	return uid
}
