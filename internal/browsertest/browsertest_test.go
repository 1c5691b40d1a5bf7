package browsertest_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"matrixas/internal/browsertest"
)

// page serves two tiny pages under a strict CSP: /clean has no inline code, /violating
// carries an inline script, which Chromium must refuse and report.
func page(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'")
		if r.URL.Path == "/title.js" {
			w.Header().Set("Content-Type", "text/javascript")
			w.Write([]byte(`document.title = "ran";`))
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		body := `<p data-testid="hello">  Hello, browser </p>`
		switch r.URL.Path {
		case "/violating":
			body += `<script>document.title = "ran"</script>`
		case "/scripted":
			body += `<script src="/title.js"></script>`
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

func TestBrowserWithJavaScriptDisabled(t *testing.T) {
	browsertest.Require(t)
	srv := page(t)
	for _, disabled := range []bool{false, true} {
		b := browsertest.New(t, srv.URL, browsertest.Options{JavaScriptDisabled: disabled})
		b.Navigate("/scripted")
		want := "ran"
		if disabled {
			want = "t"
		}
		// The page's script sets the title; DevTools can still read the page either way.
		if got := browsertest.Run(b, chromedp.Title()); got != want {
			t.Errorf("JavaScript disabled %v: title %q, want %q", disabled, got, want)
		}
		if got := b.Text("hello"); got != "Hello, browser" {
			t.Errorf("JavaScript disabled %v: text %q", disabled, got)
		}
		b.AssertCleanConsole()
	}
}
