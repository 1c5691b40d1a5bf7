// Package fakesynapse is, for tests, the part of Synapse that Dendrite lacks: the admin
// API the appservice uses when its bot is a server admin (is an account an admin? lock
// and unlock an account). In front of a real homeserver (Options.Upstream, a Dendrite)
// it answers those paths itself and passes everything else through; alone it also plays
// the few client-server calls an account needs (register, display name, appservice
// login, sign-out), for tests that only check the shapes of answers.
package fakesynapse

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Options tune the fake.
type Options struct {
	// Upstream is the homeserver the other paths go to; "" = answer them here.
	Upstream string
	// BotIsAdmin: the appservice's bot is a server admin, so the admin API answers it;
	// else every admin call is 403 M_FORBIDDEN, as Synapse answers a non-admin.
	BotIsAdmin bool
	// Admins are the accounts that are server admins.
	Admins []string
	// Existing are accounts that exist before the test (a register of one is
	// M_USER_IN_USE); only without Upstream.
	Existing []string
	// Domain is the server name of the accounts registered here (default localhost);
	// only without Upstream.
	Domain string
}

func (s *Server) domain() string {
	if s.opts.Domain != "" {
		return s.opts.Domain
	}
	return "localhost"
}

// Server is a running fake.
type Server struct {
	URL  string
	opts Options

	mu      sync.Mutex
	locked  map[string]bool
	users   map[string]bool
	calls   []string // "METHOD path" of every admin call
	devices int
}

// New starts the fake and stops it at the end of the test.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{opts: opts, locked: map[string]bool{}, users: map[string]bool{}}
	for _, u := range opts.Existing {
		s.users[u] = true
	}
	var proxy http.Handler
	if opts.Upstream != "" {
		u, err := url.Parse(opts.Upstream)
		if err != nil {
			t.Fatal(err)
		}
		proxy = httputil.NewSingleHostReverseProxy(u)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.admin(w, r) {
			return
		}
		if proxy != nil {
			proxy.ServeHTTP(w, r)
			return
		}
		s.client(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Locked reports whether the account is locked now.
func (s *Server) Locked(userID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.locked[userID]
}

// AdminCalls lists the admin API calls received, "METHOD path", in order.
func (s *Server) AdminCalls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func matrixError(w http.ResponseWriter, status int, code, msg string) {
	answer(w, status, map[string]string{"errcode": code, "error": msg})
}

// admin answers the admin paths; false for any other path.
func (s *Server) admin(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	var user, what string
	switch {
	case strings.HasPrefix(p, "/_synapse/admin/v1/users/") && strings.HasSuffix(p, "/admin"):
		user, what = strings.TrimSuffix(strings.TrimPrefix(p, "/_synapse/admin/v1/users/"), "/admin"), "admin"
	case strings.HasPrefix(p, "/_synapse/admin/v2/users/"):
		user, what = strings.TrimPrefix(p, "/_synapse/admin/v2/users/"), "user"
	case strings.HasPrefix(p, "/_matrix/client/v1/admin/lock/"):
		// The spec's lock endpoint (v1.18): this Synapse is older and has none.
		matrixError(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
		return true
	default:
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, r.Method+" "+p)
	if !s.opts.BotIsAdmin {
		matrixError(w, http.StatusForbidden, "M_FORBIDDEN", "You are not a server admin")
		return true
	}
	switch {
	case what == "admin" && r.Method == http.MethodGet:
		isAdmin := false
		for _, a := range s.opts.Admins {
			isAdmin = isAdmin || a == user
		}
		answer(w, http.StatusOK, map[string]bool{"admin": isAdmin})
	case what == "user" && r.Method == http.MethodPut:
		var body struct {
			Locked *bool `json:"locked"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			matrixError(w, http.StatusBadRequest, "M_NOT_JSON", "bad body")
			return true
		}
		if body.Locked != nil {
			s.locked[user] = *body.Locked
		}
		answer(w, http.StatusOK, map[string]any{"name": user, "locked": s.locked[user]})
	default:
		matrixError(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
	}
	return true
}

// client plays the client-server calls an account needs, when there is no upstream.
func (s *Server) client(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case p == "/_matrix/client/versions":
		answer(w, http.StatusOK, map[string]any{"versions": []string{"v1.11"}})
	case p == "/_matrix/client/v3/register" && r.Method == http.MethodPost:
		var body struct {
			Username string `json:"username"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		uid := "@" + body.Username + ":" + s.domain()
		if s.users[uid] {
			matrixError(w, http.StatusBadRequest, "M_USER_IN_USE", "User ID already taken.")
			return
		}
		s.users[uid] = true
		answer(w, http.StatusOK, map[string]string{"user_id": uid})
	case strings.HasPrefix(p, "/_matrix/client/v3/profile/") && strings.HasSuffix(p, "/displayname"):
		if r.Method == http.MethodGet {
			answer(w, http.StatusOK, map[string]string{"displayname": ""})
			return
		}
		answer(w, http.StatusOK, map[string]any{})
	case p == "/_matrix/client/v3/login" && r.Method == http.MethodPost:
		var body struct {
			Type       string `json:"type"`
			Identifier struct {
				User string `json:"user"`
			} `json:"identifier"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		if body.Type != "m.login.application_service" || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			matrixError(w, http.StatusForbidden, "M_FORBIDDEN", "bad login")
			return
		}
		s.devices++
		answer(w, http.StatusOK, map[string]string{"user_id": body.Identifier.User, "access_token": "syt_fake_token",
			"device_id": "FAKEDEVICE" + strings.Repeat("X", s.devices)})
	case p == "/_matrix/client/v3/logout/all" && r.Method == http.MethodPost:
		answer(w, http.StatusOK, map[string]any{})
	default:
		matrixError(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
	}
}
