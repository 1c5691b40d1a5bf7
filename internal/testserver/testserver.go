// Package testserver starts the real server (real router, real temp-file SQLite) on a
// loopback httptest listener for tests, with a staff user, a non-staff user and API
// tokens for both.
package testserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/web"
)

// StaffPassword is the password of the "staff" user (one auth.CheckPasswordPolicy
// accepts for that user, so tests may also set it through the account page).
const StaffPassword = "correct-horse-battery-9"

// Server is a running test server.
type Server struct {
	URL        string
	Config     *web.Config
	Store      *db.Store
	Web        *web.Server
	HTTP       *httptest.Server
	Staff      *db.User
	User       *db.User // an active non-staff user
	StaffToken string
	UserToken  string
	Logs       *SyncBuffer // everything the server logged

	cancel context.CancelFunc
}

// SyncBuffer is a goroutine-safe buffer for captured logs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Options tune New.
type Options struct {
	// Env overrides configuration variables (DATABASE_PATH defaults to a temp file).
	Env map[string]string
	// DatabasePath reuses a database file (to restart a server on the same data).
	DatabasePath string
	// Listen on this address instead of a random loopback port (e.g. to keep the URL across restarts).
	Addr string
	// Configure, when set, changes the configuration read from Env before the server is
	// built: for what the environment cannot say (web.ExportConfig's test hooks, the
	// provisioning options).
	Configure func(*web.Config)
	// PasswordCost is the bcrypt cost of the password hashes the server makes. The default
	// (0) is bcrypt's lowest, so that tests that set passwords stay fast under the race
	// detector; give auth.PasswordCost to test what production does.
	PasswordCost int
	// FirstRun, when set, makes sign-ins wait until it is closed (web.Server.SignInsWaitFor).
	FirstRun <-chan struct{}
}

// New starts a server and stops it at the end of the test.
func New(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	dbPath := o.DatabasePath
	if dbPath == "" {
		dbPath = filepath.Join(t.TempDir(), "test.db")
	}
	env := map[string]string{"DATABASE_PATH": dbPath, "LOG_LEVEL": "debug"}
	for k, v := range o.Env {
		env[k] = v
	}
	cfg, err := web.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("testserver: config: %v", err)
	}
	cfg.PasswordCost = o.PasswordCost
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = bcrypt.MinCost
	}
	if o.Configure != nil {
		o.Configure(cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	store, err := db.Open(ctx, cfg.DatabasePath)
	if err != nil {
		cancel()
		t.Fatalf("testserver: open db: %v", err)
	}
	logs := &SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := &Server{Config: cfg, Store: store, Logs: logs, cancel: cancel}
	s.Staff = s.ensureUser(t, "staff", true)
	s.User = s.ensureUser(t, "alice", false)
	s.StaffToken = s.NewToken(t, s.Staff)
	s.UserToken = s.NewToken(t, s.User)

	srv, err := web.New(ctx, cfg, store, log, "test")
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	s.Web = srv
	if o.FirstRun != nil {
		srv.SignInsWaitFor(o.FirstRun)
	}
	s.HTTP = httptest.NewUnstartedServer(srv.Handler())
	if o.Addr != "" {
		s.HTTP.Listener.Close()
		ln, err := listen(o.Addr)
		if err != nil {
			t.Fatalf("testserver: listen %s: %v", o.Addr, err)
		}
		s.HTTP.Listener = ln
	}
	s.HTTP.Start()
	s.URL = s.HTTP.URL
	srv.Start(ctx)
	t.Cleanup(s.Close)
	return s
}

// Close stops the server, its background jobs and the store (idempotent).
func (s *Server) Close() {
	if s.cancel == nil {
		return
	}
	s.HTTP.Close()
	s.cancel()
	s.cancel = nil
	s.Web.Wait()
	s.Store.Close()
}

func (s *Server) ensureUser(t testing.TB, name string, staff bool) *db.User {
	t.Helper()
	ctx := context.Background()
	if u, err := s.Store.UserByUsername(ctx, name); err == nil {
		return u
	}
	hash, err := staffPasswordHash()
	if err != nil {
		t.Fatal(err)
	}
	u := &db.User{Username: name, Email: name + "@example.org", FullName: strings.ToUpper(name[:1]) + name[1:], IsStaff: staff, IsActive: true, PasswordHash: hash}
	if err := s.Store.CreateUser(ctx, u); err != nil {
		t.Fatalf("testserver: create user %s: %v", name, err)
	}
	return u
}

// NewToken mints an API token for u.
func (s *Server) NewToken(t testing.TB, u *db.User) string {
	t.Helper()
	token, prefix, hash := auth.NewAPIToken()
	if _, err := s.Store.CreateAPIToken(context.Background(), u.ID, "test", prefix, hash); err != nil {
		t.Fatal(err)
	}
	return token
}

// Request sends a request with an optional API token and JSON body (a string or []byte
// body is sent as is) and returns the response with its body read.
func (s *Server) Request(t testing.TB, method, path, token string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case []byte:
		rd, ct = bytes.NewReader(b), "application/json"
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// JSON sends a request like Request and decodes a JSON answer into out (when non-nil),
// returning the status code.
func (s *Server) JSON(t testing.TB, method, path, token string, body, out any) int {
	t.Helper()
	resp, b := s.Request(t, method, path, token, body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %v: %s", method, path, resp.StatusCode, err, b)
		}
	}
	return resp.StatusCode
}

// Browser returns an HTTP client with a cookie jar, logged in to the dashboard as the
// staff user, that does not follow redirects (so tests can see them).
func (s *Server) Browser(t testing.TB) *http.Client {
	t.Helper()
	c := s.AnonymousBrowser(t)
	resp, err := c.PostForm(s.URL+"/login", url.Values{"username": {"staff"}, "password": {StaffPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: status %d", resp.StatusCode)
	}
	return c
}

// AnonymousBrowser returns a client with an empty cookie jar that does not follow redirects.
func (s *Server) AnonymousBrowser(t testing.TB) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
