package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"matrixas/db"
	"matrixas/internal/testserver"
	"matrixas/web"
)

// bystander sends ordinary requests (health, the login page, an API read) in a loop
// until stopped, and reports how many it sent and what went wrong, so a test can show
// that hostile clients did not harm anyone else.
type bystander struct {
	stop   chan struct{}
	done   chan struct{}
	sent   atomic.Int64
	mu     sync.Mutex
	faults []string
}

func startBystander(t *testing.T, base, token string) *bystander {
	t.Helper()
	b := &bystander{stop: make(chan struct{}), done: make(chan struct{})}
	tr := &http.Transport{}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	paths := []string{"/healthz", "/login", "/api/admin/matrix-appservice/status/"}
	go func() {
		defer close(b.done)
		defer tr.CloseIdleConnections()
		for i := 0; ; i++ {
			select {
			case <-b.stop:
				return
			default:
			}
			req, _ := http.NewRequest(http.MethodGet, base+paths[i%len(paths)], nil)
			if token != "" {
				req.Header.Set("Authorization", "Token "+token)
			}
			resp, err := client.Do(req)
			b.sent.Add(1)
			if err != nil {
				b.fault(fmt.Sprintf("%s: %v", req.URL.Path, err))
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK && !(token == "" && resp.StatusCode == http.StatusUnauthorized) {
				b.fault(fmt.Sprintf("%s: %d", req.URL.Path, resp.StatusCode))
			}
		}
	}()
	return b
}

func (b *bystander) fault(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.faults) < 10 {
		b.faults = append(b.faults, s)
	}
}

// finish stops the bystander and fails the test if any of its requests failed.
func (b *bystander) finish(t *testing.T) {
	t.Helper()
	close(b.stop)
	<-b.done
	if b.sent.Load() == 0 {
		t.Errorf("the bystander sent no request")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.faults {
		t.Errorf("an ordinary request failed meanwhile: %s", f)
	}
}

// realServer runs web.Server.Serve (the real http.Server with its timeouts and header
// limit, not httptest) on a loopback port with the given timeouts.
func realServer(t *testing.T, readHeader, read time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	env := map[string]string{"DATABASE_PATH": filepath.Join(t.TempDir(), "real.db"), "SESSION_KEY": strings.Repeat("k", 32)}
	cfg, err := web.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	store, err := db.Open(ctx, cfg.DatabasePath)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(ctx, cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	srv.SetHTTPTimeouts(readHeader, read, 0, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		store.Close()
	})
	return "http://" + ln.Addr().String()
}

// rawRequest writes raw bytes to the server and returns the status line of the answer
// ("" when the server closed the connection without one).
func rawRequest(t *testing.T, addr string, raw []byte) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	go conn.Write(raw) // the server may answer (and close) before reading it all
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimSpace(line)
}

// TestHeaderFloods: a request with one huge header, or thousands of small ones, past
// the 64 KiB header limit is refused with 431 by net/http before any handler runs;
// headers just under the limit are served; other clients are not affected.
func TestHeaderFloods(t *testing.T) {
	base := realServer(t, 0, 0)
	addr := strings.TrimPrefix(base, "http://")
	by := startBystander(t, base, "")
	request := func(headers string) []byte {
		return []byte("GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\n" + headers + "Connection: close\r\n\r\n")
	}
	var many, manyOK strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&many, "X-Flood-%d: %s\r\n", i, strings.Repeat("v", 10))
	}
	for i := range 1000 {
		fmt.Fprintf(&manyOK, "X-Few-%d: v\r\n", i)
	}
	tests := []struct {
		name    string
		headers string
		want    string
	}{
		{"one 100 KiB header", "Cookie: " + strings.Repeat("c", 100<<10) + "\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
		{"one 1 MiB header", "X-Big: " + strings.Repeat("b", 1<<20) + "\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
		{"5000 headers (about 120 KiB)", many.String(), "HTTP/1.1 431 Request Header Fields Too Large"},
		{"a 40 KiB header is fine", "X-Fine: " + strings.Repeat("f", 40<<10) + "\r\n", "HTTP/1.1 200 OK"},
		{"1000 small headers are fine", manyOK.String(), "HTTP/1.1 200 OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rawRequest(t, addr, request(tt.headers)); got != tt.want {
				t.Errorf("status line %q, want %q", got, tt.want)
			}
		})
	}
	by.finish(t)
}

// TestSlowClientsAreCutOff: clients that send their headers byte by byte (slowloris) are
// disconnected when ReadHeaderTimeout runs out, long before they finish, and a client
// that trickles its body is stopped by ReadTimeout; meanwhile ordinary requests are
// served. The timeouts are shortened for the test (production: 10 s and 60 s).
func TestSlowClientsAreCutOff(t *testing.T) {
	// Generous against scheduling delays under -race on two cores, and still ten times
	// shorter than the slow clients need.
	base := realServer(t, 1*time.Second, 2*time.Second)
	addr := strings.TrimPrefix(base, "http://")

	// trickle writes head at once, then tail one byte every 20 ms; it reports how many
	// bytes of tail were left when the server cut it off, and what the server answered.
	type outcome struct {
		left   int
		answer string
	}
	trickle := func(head, tail string) outcome {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return outcome{-1, err.Error()}
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(conn, head); err != nil {
			return outcome{len(tail), "write failed: " + err.Error()}
		}
		var left atomic.Int64
		left.Store(int64(len(tail)))
		go func() {
			for i := 0; i < len(tail); i++ {
				if _, err := conn.Write([]byte{tail[i]}); err != nil {
					return
				}
				left.Add(-1)
				time.Sleep(20 * time.Millisecond)
			}
		}()
		line, _ := bufio.NewReader(conn).ReadString('\n') // returns when the server answers or hangs up
		return outcome{int(left.Load()), strings.TrimSpace(line)}
	}

	by := startBystander(t, base, "")
	// 40 slowloris connections at once, each needing 10 s to finish its headers.
	const n = 40
	headerTail := strings.Repeat("X-Slow: drip\r\n", 35) + "\r\n" // 500 bytes = 10 s at 20 ms each
	results := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = trickle("GET /healthz HTTP/1.1\r\nHost: "+addr+"\r\n", headerTail) })
	}
	wg.Wait()
	for i, r := range results {
		if r.left <= 0 {
			t.Errorf("slowloris %d: the server waited for all its headers (left %d, answer %q)", i, r.left, r.answer)
		}
		if strings.Contains(r.answer, "200") {
			t.Errorf("slowloris %d: served: %q", i, r.answer)
		}
	}

	// A body trickled slower than ReadTimeout allows: the request does not complete.
	form := "username=nobody&password=" + strings.Repeat("p", 300)
	head := fmt.Sprintf("POST /login HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", addr, base, len(form))
	r := trickle(head, form)
	if r.left <= 0 {
		t.Errorf("slow body: the server read all of it (answer %q)", r.answer)
	}
	if strings.Contains(r.answer, " 2") || strings.Contains(r.answer, " 3") || strings.Contains(r.answer, " 401") {
		t.Errorf("slow body: the request was processed: %q", r.answer)
	}
	t.Logf("slow body: cut off with %d of %d bytes unsent, answer %q", r.left, len(form), r.answer)
	by.finish(t)
}

// hostileCase is one malformed or oversized request and what it must get.
type hostileCase struct {
	name        string
	method      string
	path        string
	auth        string // "staff" (API token), "session" (staff browser), "hs" (hs_token), "" none
	contentType string
	body        func() io.Reader
	chunked     bool  // hide the length (no Content-Length)
	want        []int // acceptable statuses
	shape       string
	// mention is a substring the error must contain (clear messages), "" = not checked.
	mention string
}

const (
	shapeDetail = "detail"  // {"detail": "..."} or {"field": ["..."]}
	shapeMatrix = "errcode" // {"errcode": "...", "error": "..."}
	shapeHTML   = "html"    // the error page or the re-rendered form
	shapeAny    = ""
)

func str(s string) func() io.Reader  { return func() io.Reader { return strings.NewReader(s) } }
func byts(b []byte) func() io.Reader { return func() io.Reader { return bytes.NewReader(b) } }

// TestHostileInput sends oversized bodies, deeply nested and huge JSON, wrong content
// types and invalid UTF-8 to the API, the dashboard forms and the webhook. Each gets a
// clear 4xx in its route's shape (or, where the input is legitimate but odd, a normal
// answer), never a 5xx; the answer is valid UTF-8 and does not echo a huge input back;
// and ordinary requests keep being served throughout.
func TestHostileInput(t *testing.T) {
	ts := testserver.New(t, testserver.Options{Env: map[string]string{"MAX_BODY_BYTES": "1048576", "WEBHOOK_MAX_BODY_MB": "2"}})
	enableAppservice(t, ts)
	browser := ts.Browser(t)
	var project struct {
		UUID string `json:"uuid"`
	}
	if code := ts.JSON(t, http.MethodPost, "/api/projects/", ts.StaffToken, map[string]string{"name": "Hostile"}, &project); code != http.StatusCreated {
		t.Fatalf("create project: %d", code)
	}
	members := "/api/projects/" + project.UUID + "/members/"
	by := startBystander(t, ts.URL, ts.StaffToken)

	nested := func(open string, n int) []byte { return []byte(strings.Repeat(open, n)) }
	huge := strings.Repeat("h", 900<<10)
	bigEvent := `{"events":[{"type":"m.room.message","event_id":"$big","room_id":"!r:localhost","sender":"@u:localhost","content":{"body":"` +
		strings.Repeat("z", 1800<<10) + `"}}]}`
	deepContent := `{"events":[{"type":"m.room.message","event_id":"$deep","room_id":"!r:localhost","sender":"@u:localhost","content":{"x":` +
		strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}}]}`
	invalidUTF8Event := []byte("{\"events\":[{\"type\":\"m.room.member\",\"event_id\":\"$bad\xff\",\"room_id\":\"!r:localhost\",\"sender\":\"@u\xfe:localhost\"," +
		"\"state_key\":\"@u\xfe:localhost\",\"content\":{\"membership\":\"join\",\"displayname\":\"\xff\xfe\xfd\"}}]}")

	var multi bytes.Buffer
	mw := multipart.NewWriter(&multi)
	fw, _ := mw.CreateFormFile("name", "big.bin")
	fw.Write(bytes.Repeat([]byte("m"), 2<<20))
	mw.Close()

	const staffAPI = "/api/admin/matrix-appservice/setup/"
	bad := []int{http.StatusBadRequest}
	tooLarge := []int{http.StatusRequestEntityTooLarge}
	badMedia := []int{http.StatusBadRequest, http.StatusUnsupportedMediaType}
	tests := []hostileCase{
		// Over the limits.
		{"API body over the limit, chunked", http.MethodPost, staffAPI, "staff", "application/json", str(`{"url":"` + strings.Repeat("x", 2<<20) + `"}`), true, tooLarge, shapeDetail, "too large"},
		// A declared length over the limit is refused by the middleware before any
		// handler, in JSON even on the dashboard (see the report); chunked gets the page.
		{"dashboard form over the limit", http.MethodPost, "/account/tokens", "session", "application/x-www-form-urlencoded", str("name=" + strings.Repeat("n", 2<<20)), false, tooLarge, shapeHTML, "too large"},
		{"dashboard form over the limit, chunked", http.MethodPost, "/setup", "session", "application/x-www-form-urlencoded", str("url=" + strings.Repeat("n", 2<<20)), true, tooLarge, shapeHTML, "too large"},
		{"dashboard multipart over the limit", http.MethodPost, "/account/tokens", "session", mw.FormDataContentType(), byts(multi.Bytes()), false, tooLarge, shapeHTML, "too large"},
		// Dashboard forms read url-encoded bodies only: a chunked multipart body is not
		// read at all, and the form comes back asking for its field.
		{"dashboard multipart over the limit, chunked", http.MethodPost, "/account/tokens", "session", mw.FormDataContentType(), byts(multi.Bytes()), true, []int{http.StatusOK, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType}, shapeHTML, ""},
		{"webhook over the limit, chunked", http.MethodPut, "/_matrix/app/v1/transactions/too-big", "hs", "application/json", str(`{"events":[],"pad":"` + strings.Repeat("p", 3<<20) + `"}`), true, tooLarge, shapeMatrix, ""},

		// Deeply nested JSON.
		{"API: 100k [", http.MethodPost, staffAPI, "staff", "application/json", byts(nested("[", 100000)), false, bad, shapeDetail, "JSON"},
		{"API: 100k {\"a\":", http.MethodPost, "/api/projects/", "staff", "application/json", byts(nested(`{"a":`, 100000)), false, bad, shapeDetail, "JSON"},
		{"API list endpoint: 100k [", http.MethodPut, members, "staff", "application/json", byts(nested("[", 100000)), false, bad, shapeDetail, "JSON"},
		{"webhook: 100k [", http.MethodPut, "/_matrix/app/v1/transactions/nest1", "hs", "application/json", byts(nested("[", 100000)), false, bad, shapeMatrix, ""},
		{"webhook: events 100k [", http.MethodPut, "/_matrix/app/v1/transactions/nest2", "hs", "application/json", byts(append([]byte(`{"events":`), nested("[", 100000)...)), false, bad, shapeMatrix, ""},
		{"webhook: 5000-deep event content is accepted", http.MethodPut, "/_matrix/app/v1/transactions/nest3", "hs", "application/json", str(deepContent), false, []int{http.StatusOK}, shapeAny, ""},

		// Huge strings within the limits.
		{"API: 900 KiB string field", http.MethodPost, staffAPI, "staff", "application/json", str(`{"url":"https://` + huge + `.example"}`), false, bad, shapeDetail, ""},
		{"API: 900 KiB project name", http.MethodPost, "/api/projects/", "staff", "application/json", str(`{"name":"` + huge + `"}`), false, bad, shapeDetail, ""},
		{"webhook: 1.8 MiB event is recorded", http.MethodPut, "/_matrix/app/v1/transactions/bigevent", "hs", "application/json", str(bigEvent), false, []int{http.StatusOK}, shapeAny, ""},

		// Wrong content types.
		{"API: text/plain", http.MethodPost, staffAPI, "staff", "text/plain", str(`{"url":"http://as.example"}`), false, badMedia, shapeDetail, "media type"},
		{"API: XML", http.MethodPost, "/api/projects/", "staff", "application/xml", str(`<project><name>x</name></project>`), false, badMedia, shapeDetail, "media type"},
		{"API: form to a JSON list endpoint", http.MethodPut, members, "staff", "application/x-www-form-urlencoded", str("user=x&role=member"), false, badMedia, shapeDetail, ""},
		// A form handler reads no JSON: the form comes back with its field error.
		{"dashboard: JSON to a form", http.MethodPost, "/account/tokens", "session", "application/json", str(`{"name":"x"}`), false, []int{http.StatusOK, http.StatusBadRequest, http.StatusUnsupportedMediaType}, shapeHTML, "name"},
		{"webhook: not JSON at all", http.MethodPut, "/_matrix/app/v1/transactions/notjson", "hs", "text/plain", str(`hello`), false, bad, shapeMatrix, ""},
		{"API: empty body", http.MethodPost, "/api/projects/", "staff", "application/json", str(""), false, bad, shapeDetail, "empty"},

		// Invalid UTF-8.
		{"API: invalid UTF-8 in a JSON string", http.MethodPost, "/api/users/", "staff", "application/json", byts([]byte("{\"username\":\"bad\xff\xfename\"}")), false, bad, shapeDetail, "UTF-8"},
		{"API: invalid UTF-8 in a JSON list", http.MethodPut, members, "staff", "application/json", byts([]byte("[{\"user\":\"\xff\"}]")), false, bad, shapeDetail, ""},
		{"API: invalid UTF-8 outside strings", http.MethodPost, "/api/projects/", "staff", "application/json", byts([]byte("{\"name\":\"x\"\xff}")), false, bad, shapeDetail, ""},
		{"login: invalid UTF-8 in a form", http.MethodPost, "/login", "", "application/x-www-form-urlencoded", str("username=%FF%FE&password=%C0%80"), false, bad, shapeHTML, "UTF-8"},
		{"dashboard: invalid UTF-8 token name", http.MethodPost, "/account/tokens", "session", "application/x-www-form-urlencoded", str("name=%FF%FEtoken"), false, bad, shapeHTML, "UTF-8"},
		{"API form: invalid UTF-8", http.MethodPost, "/api/projects/", "staff", "application/x-www-form-urlencoded", str("name=%FF"), false, bad, shapeDetail, "UTF-8"},
		{"webhook: invalid UTF-8 inside events is accepted", http.MethodPut, "/_matrix/app/v1/transactions/utf8", "hs", "application/json", byts(invalidUTF8Event), false, []int{http.StatusOK}, shapeAny, ""},
		{"webhook: invalid UTF-8 txnId", http.MethodPut, "/_matrix/app/v1/transactions/%FF%FEtxn", "hs", "application/json", str(`{"events":[]}`), false, []int{http.StatusOK, http.StatusBadRequest}, shapeAny, ""},
		{"API: NUL in a string", http.MethodPost, "/api/projects/", "staff", "application/json", str(`{"name":"a\u0000b"}`), false, []int{http.StatusCreated, http.StatusBadRequest}, shapeAny, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = tt.body()
			if tt.chunked {
				body = struct{ io.Reader }{body} // no Len: sent chunked
			}
			req := newReq(t, ts, tt.method, tt.path, body, nil)
			req.Header.Set("Content-Type", tt.contentType)
			client := plainClient
			switch tt.auth {
			case "staff":
				req.Header.Set("Authorization", "Token "+ts.StaffToken)
			case "session":
				client = browser
				req.Header.Set("Origin", ts.URL)
			case "hs":
				req.Header.Set("Authorization", "Bearer "+hsTestToken)
			}
			if tt.path == "/login" {
				req.Header.Set("Origin", ts.URL)
			}
			resp, b := do(t, client, req)
			t.Logf("%d %s", resp.StatusCode, summary(resp, b))
			if !containsInt(tt.want, resp.StatusCode) {
				t.Fatalf("status %d, want one of %v: %.300s", resp.StatusCode, tt.want, b)
			}
			if !utf8.Valid(b) {
				t.Errorf("the answer is not valid UTF-8: %q", truncate(b))
			}
			if len(b) > 200<<10 {
				t.Errorf("the answer is %d bytes: it echoes the input", len(b))
			}
			if resp.StatusCode < 400 {
				return
			}
			switch tt.shape {
			case shapeDetail:
				var m map[string]any
				if err := json.Unmarshal(b, &m); err != nil || len(m) == 0 {
					t.Errorf("not a DRF-shaped error: %.300s", b)
				}
			case shapeMatrix:
				if !hasJSONField(b, "errcode") || !hasJSONField(b, "error") {
					t.Errorf("not a Matrix error: %.300s", b)
				}
			case shapeHTML:
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
					t.Errorf("Content-Type %q for a dashboard error", ct)
				}
			}
			if tt.mention != "" && !strings.Contains(strings.ToLower(string(b)), strings.ToLower(tt.mention)) {
				t.Errorf("the error does not mention %q: %.300s", tt.mention, b)
			}
		})
	}

	// The odd but legitimate transactions were recorded; the dashboard lists them.
	ctx := context.Background()
	rows, _, err := ts.Store.ListTransactions(ctx, db.TxnCursor{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, r := range rows {
		recorded[r.TxnID] = true
	}
	for _, id := range []string{"nest3", "bigevent", "utf8"} {
		if !recorded[id] {
			t.Errorf("transaction %s was acknowledged but not recorded", id)
		}
	}
	for _, id := range []string{"nest1", "nest2", "notjson", "too-big"} {
		if recorded[id] {
			t.Errorf("refused transaction %s was recorded", id)
		}
	}
	if resp, _ := do(t, browser, newReq(t, ts, http.MethodGet, "/transactions", nil, nil)); resp.StatusCode != http.StatusOK {
		t.Errorf("/transactions after hostile input: %d", resp.StatusCode)
	}
	// Nothing the refused dashboard posts asked for was created.
	tokens, err := ts.Store.ListAPITokens(ctx, ts.Staff.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if tok.Name != "test" {
			t.Errorf("a refused request created the token %q", tok.Name)
		}
	}
	by.finish(t)
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// summary is a short description of an answer for the test log: a JSON error's
// message, or the dashboard error/field message.
func summary(resp *http.Response, b []byte) string {
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return truncate(b)
	}
	for _, marker := range []string{`data-testid="error-message"`, `class="field-error"`, `data-testid="form-error"`, `data-testid="login-error"`} {
		if i := bytes.Index(b, []byte(marker)); i >= 0 {
			rest := b[i:]
			if j := bytes.IndexByte(rest, '>'); j >= 0 {
				rest = rest[j+1:]
			}
			if k := bytes.IndexByte(rest, '<'); k >= 0 {
				rest = rest[:k]
			}
			return strings.TrimSpace(string(rest))
		}
	}
	return fmt.Sprintf("%d bytes of %s", len(b), resp.Header.Get("Content-Type"))
}
