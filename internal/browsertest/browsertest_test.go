package browsertest_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"matrixas/internal/browsertest"
)

// page serves two tiny pages under a strict CSP: /clean has no inline code, /violating
// carries an inline script, which Chromium must refuse and report.
func page(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		body := `<p data-testid="hello">  Hello, browser </p>`
		if r.URL.Path == "/violating" {
			body += `<script>document.title = "ran"</script>`
		}
		w.Write([]byte("<!DOCTYPE html><html><head><title>t</title></head><body>" + body + "</body></html>"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestBrowserReadsTextAndSeesCSPViolations(t *testing.T) {
	browsertest.Require(t)
	srv := page(t)
	b := browsertest.New(t, srv.URL)

	if status := b.Navigate("/clean"); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if got := b.Text("hello"); got != "Hello, browser" {
		t.Errorf("Text = %q", got)
	}
	b.AssertCleanConsole()

	dir := t.TempDir()
	shot := b.Screenshot(dir, "clean")
	if shot != filepath.Join(dir, "clean.png") {
		t.Errorf("screenshot path %s", shot)
	}
	png, err := os.ReadFile(shot)
	if err != nil || !strings.HasPrefix(string(png), "\x89PNG") {
		t.Errorf("screenshot is not a PNG (%d bytes, %v)", len(png), err)
	}

	b.Navigate("/violating")
	b.WaitTestID("hello")
	b.FlushConsole()
	var csp bool
	for _, p := range b.Problems() {
		csp = csp || strings.Contains(p, "Content Security Policy")
	}
	if !csp {
		t.Errorf("inline script under script-src 'self': no CSP violation reported; console: %v", b.Console())
	}
}
