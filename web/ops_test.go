package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/internal/testserver"
	"matrixas/settings"
	"matrixas/web"
)

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	ts := testserver.New(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		var body map[string]string
		if status := ts.JSON(t, http.MethodGet, path, "", nil, &body); status != http.StatusOK || body["status"] != "ok" {
			t.Errorf("%s: %d %v, want 200 {\"status\": \"ok\"}", path, status, body)
		}
	}

	// With the database gone the process is alive but not ready.
	ts.Store.Close()
	resp, b := ts.Request(t, http.MethodGet, "/readyz", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database closed: %d, want 503", resp.StatusCode)
	}
	if strings.Contains(string(b), "sql") || strings.Contains(string(b), "closed") {
		t.Errorf("/readyz leaks the error text: %s", b)
	}
	if status := ts.JSON(t, http.MethodGet, "/healthz", "", nil, nil); status != http.StatusOK {
		t.Errorf("/healthz with the database closed: %d, want 200 (liveness only)", status)
	}
	// The reason is in the log line of the request instead.
	eventually(t, "the /readyz failure in the log", func() bool {
		for _, l := range requestLines(ts.Logs.String(), "/readyz") {
			if strings.Contains(l, "status=503") && strings.Contains(l, "database is closed") {
				return true
			}
		}
		return false
	})
}

// requestLines returns the access-log lines for path.
func requestLines(logs, path string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "msg=request ") && strings.Contains(l, " path="+path+" ") {
			out = append(out, l)
		}
	}
	return out
}

func TestEveryRequestLoggedOnce(t *testing.T) {
	ts := testserver.New(t)
	tests := []struct {
		name, method, path, token string
		body                      any
		wantStatus                int
	}{
		{"page not found", http.MethodGet, "/no-such-page-1", "", nil, http.StatusNotFound},
		{"health", http.MethodGet, "/healthz", "", nil, http.StatusOK},
		{"api refusal", http.MethodGet, "/api/admin/matrix-appservice/status/", "", nil, http.StatusUnauthorized},
		{"api not found", http.MethodGet, "/api/no-such-endpoint-1/", ts.StaffToken, nil, http.StatusNotFound},
		{"failed login", http.MethodPost, "/login", "", "{}", http.StatusUnauthorized},
	}
	ids := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			query := "?access_token=query-secret-" + strings.ReplaceAll(tt.name, " ", "-")
			resp, _ := ts.Request(t, tt.method, tt.path+query, tt.token, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			// The line is written after the response is sent: wait for it.
			var lines []string
			eventually(t, "the request's log line", func() bool {
				lines = requestLines(ts.Logs.String(), tt.path)
				return len(lines) > 0
			})
			if len(lines) != 1 {
				t.Fatalf("%d log lines for %s, want 1:\n%s", len(lines), tt.path, strings.Join(lines, "\n"))
			}
			l := lines[0]
			for _, want := range []string{"method=" + tt.method, fmt.Sprintf("status=%d", tt.wantStatus)} {
				if !strings.Contains(l, " "+want+" ") && !strings.HasSuffix(l, " "+want) {
					t.Errorf("log line lacks %s: %s", want, l)
				}
			}
			id := regexp.MustCompile(`request_id=(\S+)`).FindStringSubmatch(l)
			if id == nil || ids[id[1]] {
				t.Errorf("log line has no request id, or a repeated one: %s", l)
			} else {
				ids[id[1]] = true
			}
			if !regexp.MustCompile(`duration_ms=[0-9.]+`).MatchString(l) {
				t.Errorf("log line has no duration: %s", l)
			}
			if strings.Contains(ts.Logs.String(), "query-secret") {
				t.Errorf("the query string (which may carry a token) was logged: %s", l)
			}
		})
	}
	for _, secret := range []string{ts.StaffToken, ts.UserToken} {
		if strings.Contains(ts.Logs.String(), secret) {
			t.Errorf("an API token reached the logs")
		}
	}
}

// TestTransactionAccessLogLevel: a delivered transaction is on record in the database
// and the metrics, so its access-log line is at debug level (not written at the default
// info level); a refused or rejected one is logged at info.
func TestTransactionAccessLogLevel(t *testing.T) {
	ts := testserver.New(t) // the test logger keeps every level
	if err := ts.Web.Settings().Set(context.Background(), map[string]string{
		settings.HSToken.Key: "hs-token-for-log-test", settings.Enabled.Key: "true",
	}); err != nil {
		t.Fatal(err)
	}
	put := func(txn, token, body string, want int) {
		t.Helper()
		req := newReq(t, ts, http.MethodPut, "/_matrix/app/v1/transactions/"+txn, strings.NewReader(body), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, got := do(t, plainClient, req); resp.StatusCode != want {
			t.Fatalf("%s: status %d, want %d: %s", txn, resp.StatusCode, want, got)
		}
	}
	put("delivered", "hs-token-for-log-test", `{"events":[]}`, http.StatusOK)
	put("refused", "wrong-token", `{"events":[]}`, http.StatusForbidden)
	put("broken", "hs-token-for-log-test", `{"events":`, http.StatusBadRequest)
	for _, c := range []struct{ txn, level string }{
		{"delivered", "DEBUG"}, {"refused", "INFO"}, {"broken", "INFO"},
	} {
		var lines []string
		eventually(t, "the request's log line", func() bool {
			lines = requestLines(ts.Logs.String(), "/_matrix/app/v1/transactions/"+c.txn)
			return len(lines) > 0
		})
		if len(lines) != 1 || !strings.Contains(lines[0], "level="+c.level+" ") {
			t.Errorf("%s: want one line at %s, got %q", c.txn, c.level, lines)
		}
	}
	if strings.Contains(ts.Logs.String(), "hs-token-for-log-test") {
		t.Error("the hs_token reached the logs")
	}
}

func TestBodyLimit(t *testing.T) {
	ts := testserver.New(t, testserver.Options{Env: map[string]string{"MAX_BODY_BYTES": "1024", "WEBHOOK_MAX_BODY_MB": "1"}})
	big := "username=staff&password=" + strings.Repeat("x", 2000)
	small := "username=staff&password=" + strings.Repeat("x", 500)

	// chunked hides the length, so the server meets the limit while reading.
	type chunked struct{ io.Reader }
	tests := []struct {
		name       string
		method     string
		path       string
		body       io.Reader
		header     map[string]string
		wantStatus int
		wantJSON   string // a field of the JSON error body, "" for the HTML page
	}{
		{"form over the limit, with Content-Length", http.MethodPost, "/login", strings.NewReader(big),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusRequestEntityTooLarge, ""},
		{"form over the limit, chunked", http.MethodPost, "/login", chunked{strings.NewReader(big)},
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusRequestEntityTooLarge, ""},
		{"form under the limit", http.MethodPost, "/login", strings.NewReader(small),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnauthorized, ""},
		{"API body over the limit", http.MethodPost, "/api/admin/matrix-appservice/setup/", strings.NewReader(`{"url": "` + strings.Repeat("x", 2000) + `"}`),
			map[string]string{"Content-Type": "application/json", "Authorization": "Token " + ts.StaffToken}, http.StatusRequestEntityTooLarge, "detail"},
		{"transaction over the webhook limit", http.MethodPut, "/_matrix/app/v1/transactions/big", strings.NewReader(`{"events": [], "pad": "` + strings.Repeat("x", 1<<20) + `"}`),
			map[string]string{"Content-Type": "application/json", "Authorization": "Bearer whatever"}, http.StatusRequestEntityTooLarge, "errcode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newReq(t, ts, tt.method, tt.path, tt.body, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, body := do(t, plainClient, req)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %.200s", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus != http.StatusRequestEntityTooLarge {
				return
			}
			if tt.wantJSON != "" {
				var m map[string]any
				if err := json.Unmarshal(body, &m); err != nil || m[tt.wantJSON] == nil {
					t.Errorf("body %s lacks %q", body, tt.wantJSON)
				}
			} else if !strings.Contains(string(body), `data-testid="error-page"`) {
				t.Errorf("body is not the error page: %.200s", body)
			}
		})
	}
}

// signalListener reports when the server asks a connection for more than the client
// has sent so far (the headers and part of the body: only a handler reading the body
// asks for more), and when it closes the listener (shutdown has begun).
type signalListener struct {
	net.Listener
	sent                int // bytes the client sends before it waits
	waitOnce, closeOnce sync.Once
	bodyWait, closed    chan struct{}
}

func (l *signalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &signalConn{Conn: c, l: l}, nil
}

func (l *signalListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.closed) })
	return err
}

type signalConn struct {
	net.Conn
	l   *signalListener
	got int // only the connection's goroutine reads while a request is in flight
}

func (c *signalConn) Read(p []byte) (int, error) {
	if c.got >= c.l.sent {
		c.l.waitOnce.Do(func() { close(c.l.bodyWait) })
	}
	n, err := c.Conn.Read(p)
	c.got += n
	return n, err
}

// TestGracefulShutdownDrainsInFlightRequests cancels the server's context while a request
// is half sent, then finishes it: the server must stop accepting, answer that request in
// full, and only then return.
func TestGracefulShutdownDrainsInFlightRequests(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{"DATABASE_PATH": filepath.Join(t.TempDir(), "drain.db")}
	cfg, err := web.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	store, err := db.Open(ctx, cfg.DatabasePath)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv, err := web.New(ctx, cfg, store, slog.New(slog.NewTextHandler(os.Stderr, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	form := "username=nobody&password=wrong-password"
	head := fmt.Sprintf("POST /login HTTP/1.1\r\nHost: drain.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", len(form))
	first := head + form[:10]
	ln := &signalListener{Listener: inner, sent: len(first), bodyWait: make(chan struct{}), closed: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, first); err != nil {
		t.Fatal(err)
	}
	// Shut down only once a handler is serving this request. (A request whose headers
	// arrive after shutdown began is dropped by design: it is not in flight yet.)
	select {
	case <-ln.bodyWait:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never waited for the body")
	}

	cancel()
	select {
	case <-ln.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not start shutting down")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Errorf("the server accepts new connections while shutting down")
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) while a request was in flight", err)
	default:
	}

	// Finish the request: it is answered in full.
	if _, err := io.WriteString(conn, form[10:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request not answered: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "</html>") {
		t.Errorf("in-flight request: %d, %d bytes, %v; want the complete 401 login page", resp.StatusCode, len(body), err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v, want nil after a clean drain", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("Serve did not return after the last request finished")
	}
}

func TestBootstrap(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodFile := write("pw", "file password 123\n")
	shortFile := write("short", "short\n")

	tests := []struct {
		name         string
		env          map[string]string
		before       []*db.User // users that exist before
		wantUser     string     // "" = nothing created
		wantPassword string     // "" = random
		wantErr      string
	}{
		{name: "first run", wantUser: "admin"},
		{name: "custom username", env: map[string]string{"BOOTSTRAP_USERNAME": "root"}, wantUser: "root"},
		{name: "password from a file", env: map[string]string{"BOOTSTRAP_PASSWORD_FILE": goodFile}, wantUser: "admin", wantPassword: "file password 123"},
		{name: "staff exists", before: []*db.User{{Username: "someone", IsStaff: true, IsActive: true}}},
		{name: "only inactive staff and non-staff", before: []*db.User{{Username: "old", IsStaff: true}, {Username: "bob", IsActive: true}}, wantUser: "admin"},
		{name: "missing password file", env: map[string]string{"BOOTSTRAP_PASSWORD_FILE": filepath.Join(dir, "nope")}, wantErr: "BOOTSTRAP_PASSWORD_FILE"},
		{name: "short password in the file", env: map[string]string{"BOOTSTRAP_PASSWORD_FILE": shortFile}, wantErr: "at least 10 characters"},
		{name: "name taken by a non-staff user", before: []*db.User{{Username: "admin", IsActive: true}}, wantErr: "BOOTSTRAP_USERNAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each case hashes a password for real: overlap them
			ctx := context.Background()
			env := map[string]string{"DATABASE_PATH": filepath.Join(t.TempDir(), "b.db")}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := web.LoadConfig(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			cfg.PasswordCost = bcrypt.MinCost // fast; TestBootstrapPasswordPolicy checks production's cost
			store, err := db.Open(ctx, cfg.DatabasePath)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			for _, u := range tt.before {
				if err := store.CreateUser(ctx, u); err != nil {
					t.Fatal(err)
				}
			}
			user, password, err := bootstrap(ctx, cfg, store)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				if n, _ := store.CountStaff(ctx); n != 0 {
					t.Errorf("a failed bootstrap created a staff user")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if user != tt.wantUser {
				t.Fatalf("created %q, want %q", user, tt.wantUser)
			}
			if user == "" {
				if password != "" {
					t.Errorf("nothing created but a password returned")
				}
				return
			}
			if tt.wantPassword != "" && password != tt.wantPassword {
				t.Errorf("password %q, want the file's", password)
			}
			if tt.wantPassword == "" && !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(password) {
				t.Errorf("random password %q, want 24 hex digits", password)
			}
			u, err := store.UserByUsername(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			if !u.IsStaff || !u.IsActive || !auth.CheckPassword(u.PasswordHash, password) {
				t.Errorf("bootstrap user: staff %v active %v, password works %v", u.IsStaff, u.IsActive, auth.CheckPassword(u.PasswordHash, password))
			}
			// The second start creates nothing.
			again, pw, err := bootstrap(ctx, cfg, store)
			if err != nil || again != "" || pw != "" {
				t.Errorf("second bootstrap: %q %q %v, want nothing", again, pw, err)
			}
		})
	}
}

func TestBootstrapPasswordsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 2 {
		ctx := context.Background()
		env := map[string]string{"DATABASE_PATH": filepath.Join(t.TempDir(), "b.db")}
		cfg, err := web.LoadConfig(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		cfg.PasswordCost = bcrypt.MinCost
		store, err := db.Open(ctx, cfg.DatabasePath)
		if err != nil {
			t.Fatal(err)
		}
		_, pw, err := bootstrap(ctx, cfg, store)
		store.Close()
		if err != nil {
			t.Fatal(err)
		}
		if seen[pw] {
			t.Fatalf("the same first-run password twice: %q", pw)
		}
		seen[pw] = true
	}
}
