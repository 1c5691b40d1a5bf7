// Package browsertest drives a real headless Chromium against a test server, for the
// dashboard's end-to-end tests: log in, click through pages, read text by data-testid,
// save full-page screenshots, and watch the console for CSP violations and errors.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// DefaultChromiumPath is where Debian's chromium package installs the browser.
const DefaultChromiumPath = "/usr/bin/chromium"

// StepTimeout bounds each browser step, so a missing element fails the test instead of
// hanging it.
const StepTimeout = 20 * time.Second

// ChromiumPath is CHROMIUM_PATH, or DefaultChromiumPath.
func ChromiumPath() string {
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	return DefaultChromiumPath
}

// Require skips the test unless MATRIXAS_INTEGRATION=1. With integration tests on, a
// missing Chromium is a failure, not a skip: CI must not pass by testing nothing.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv("MATRIXAS_INTEGRATION") != "1" {
		t.Skip("browser test: set MATRIXAS_INTEGRATION=1 to run it in headless Chromium")
	}
	p := ChromiumPath()
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("browser test: Chromium not found at %s (set CHROMIUM_PATH or run scripts/install-tools.sh): %v", p, err)
	}
}

// Options tune New.
type Options struct {
	// Width and Height of the viewport; 1280x900 when zero.
	Width, Height int
	// JavaScriptDisabled turns script execution off, to prove the pages work without it.
	JavaScriptDisabled bool
}

// Browser is one headless Chromium with one tab, pointed at a server.
type Browser struct {
	// BaseURL is the server's root URL, without a trailing slash.
	BaseURL string

	t   testing.TB
	ctx context.Context // the tab's chromedp context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	markers int
}

// New starts Chromium with a fresh profile under t.TempDir() and opens a tab. The browser
// is closed when the test ends.
func New(t testing.TB, baseURL string, opts ...Options) *Browser {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Width == 0 {
		o.Width, o.Height = 1280, 900
	}
	// Chromium keeps its singleton socket in a folder of TMPDIR that it leaves behind when
	// it is stopped: give it one of its own, removed with the browser. Short, as a
	// socket's path is (t.TempDir()'s, from the test's name, may be too long).
	tmp, err := os.MkdirTemp("", "chromium")
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(ChromiumPath()),
		chromedp.Env("TMPDIR="+tmp),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium-profile")),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(o.Width, o.Height),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit
		os.RemoveAll(tmp)
	})
	b := &Browser{BaseURL: strings.TrimRight(baseURL, "/"), t: t, ctx: ctx}

	// The first Run starts the browser and binds it to ctx: no timeout on this one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: start Chromium (%s): %v", ChromiumPath(), err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	b.Do(chromedp.EmulateViewport(int64(o.Width), int64(o.Height)))
	if o.JavaScriptDisabled {
		b.Do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
	}
	return b
}

// Context is the tab's chromedp context, for actions this package has no helper for.
func (b *Browser) Context() context.Context { return b.ctx }

// Do runs the steps within StepTimeout and fails the test on error.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browsertest: %v (page %s)", err, b.location())
	}
}

// Run runs one action that returns a value within StepTimeout and fails the test on error.
func Run[T any](b *Browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browsertest: %v (page %s)", err, b.location())
	}
	return v
}

func (b *Browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown"
	}
	return loc
}

// Navigate opens path (relative to BaseURL) and waits for the load, returning the HTTP status.
func (b *Browser) Navigate(path string) int64 {
	b.t.Helper()
	resp := Run(b, chromedp.NavigateResponse(b.BaseURL+path))
	if resp == nil {
		return 0
	}
	return resp.Status
}

// Location is the tab's current URL.
func (b *Browser) Location() string {
	b.t.Helper()
	return Run(b, chromedp.Location())
}

// Path is the current URL's path and query, relative to BaseURL.
func (b *Browser) Path() string {
	b.t.Helper()
	return strings.TrimPrefix(b.Location(), b.BaseURL)
}

// TestID is the CSS selector of the element with data-testid=id.
func TestID(id string) chromedp.CSS {
	return chromedp.CSS(fmt.Sprintf("[data-testid=%q]", id))
}

// WaitTestID waits until the element with data-testid=id is visible.
func (b *Browser) WaitTestID(id string) {
	b.t.Helper()
	b.Do(chromedp.WaitVisible(TestID(id)))
}

// Text waits for the element with data-testid=id and returns its visible text, trimmed.
// The text is read in one evaluation, so an htmx swap between finding the element and
// reading it cannot break the read.
func (b *Browser) Text(id string) string {
	b.t.Helper()
	b.WaitTestID(id)
	return strings.TrimSpace(Run(b, chromedp.EvaluateAsDevTools[string](fmt.Sprintf(
		`(document.querySelector(%q) || {innerText: ""}).innerText`, string(TestID(id))))))
}

// TextContent returns the text of the element with data-testid=id, visible or not ("" when
// there is none).
func (b *Browser) TextContent(id string) string {
	b.t.Helper()
	return strings.TrimSpace(Run(b, chromedp.EvaluateAsDevTools[string](fmt.Sprintf(
		`(document.querySelector(%q) || {textContent: ""}).textContent`, string(TestID(id))))))
}

// Count is how many elements match the CSS selector right now (no waiting).
func (b *Browser) Count(css string) int {
	b.t.Helper()
	return Run(b, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", css)))
}

// Exists reports whether an element with data-testid=id is in the page right now.
func (b *Browser) Exists(id string) bool {
	b.t.Helper()
	return b.Count(fmt.Sprintf("[data-testid=%q]", id)) > 0
}

// Fill replaces the value of the input matched by the CSS selector with value, typing it.
func (b *Browser) Fill(css, value string) {
	b.t.Helper()
	b.Do(chromedp.Clear(chromedp.CSS(css)), chromedp.SendKeys(chromedp.CSS(css), value))
}

// Click clicks the element with data-testid=id.
func (b *Browser) Click(id string) {
	b.t.Helper()
	b.Do(chromedp.Click(TestID(id)))
}

// ClickAndWaitLoad clicks the element with data-testid=id and waits for the page that the
// click loads (a link or a form submitted without htmx), returning its HTTP status.
func (b *Browser) ClickAndWaitLoad(id string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, StepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(TestID(id)))
	if err != nil {
		b.t.Fatalf("browsertest: click %s: %v (page %s)", id, err, b.location())
	}
	if resp == nil {
		return 0
	}
	return resp.Status
}

// WaitFor polls cond until it returns true or the timeout passes, then fails the test
// with what.
func (b *Browser) WaitFor(timeout time.Duration, what string, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("browsertest: timed out after %s waiting for %s (page %s)", timeout, what, b.location())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Login signs in through the login form as a real user would and waits for the next
// page. On the login page already (say after a redirect with ?next=), it uses that form.
func (b *Browser) Login(username, password string) {
	b.t.Helper()
	if !strings.HasPrefix(b.Path(), "/login") {
		b.Navigate("/login")
	}
	b.Fill("#username", username)
	b.Fill("#password", password)
	if status := b.ClickAndWaitLoad("login-submit"); status != http.StatusOK {
		b.t.Fatalf("browsertest: login as %s: status %d at %s", username, status, b.Location())
	}
	if strings.HasPrefix(b.Path(), "/login") {
		b.t.Fatalf("browsertest: login as %s: still on the login page", username)
	}
}

// SetViewport resizes the viewport (e.g. 390 wide for a phone).
func (b *Browser) SetViewport(width, height int) {
	b.t.Helper()
	b.Do(chromedp.EmulateViewport(int64(width), int64(height)))
}

var shotName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// ScreenshotDir is where screenshots go: docs/screenshots at the repository root when
// UPDATE_SCREENSHOTS=1 (to refresh the README's images), else a temporary directory.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	if os.Getenv("UPDATE_SCREENSHOTS") != "1" {
		return t.TempDir()
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	dir := filepath.Join(root, "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	return dir
}

// Screenshot saves a full-page PNG named name+".png" into dir and returns its path.
func (b *Browser) Screenshot(dir, name string) string {
	b.t.Helper()
	if !shotName.MatchString(name) {
		b.t.Fatalf("browsertest: screenshot name %q: use lowercase letters, digits, dots and dashes", name)
	}
	png := Run(b, chromedp.FullScreenshot(100))
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatalf("browsertest: save screenshot: %v", err)
	}
	return p
}

// Cookies returns the browser's cookies for the server, to make HTTP requests as the
// logged-in user (e.g. to fetch a download the page links to).
func (b *Browser) Cookies() []*http.Cookie {
	b.t.Helper()
	res := Run(b, func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{b.BaseURL + "/"}})
	})
	var out []*http.Cookie
	for _, c := range res.Cookies {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

// Console returns the console messages seen so far (calls, exceptions, browser log).
func (b *Browser) Console() []chromedp.ConsoleMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), b.console...)
}

// Problems returns the console messages that mean a page is broken: CSP violations,
// uncaught exceptions and errors. Chromium reports a CSP violation as an error entry.
func (b *Browser) Problems() []string {
	var out []string
	for _, m := range b.Console() {
		csp := strings.Contains(m.Text, "Content Security Policy")
		if csp || m.IsException() || m.Type == chromedp.ConsoleError || m.Type == "assert" {
			out = append(out, fmt.Sprintf("%s (%s)", m.String(), m.URL))
		}
	}
	return out
}

// TakeProblems flushes the console and returns its Problems, then forgets every message
// seen so far: for a step that provokes an error on purpose (a refused action's 409),
// whose messages the test checks itself.
func (b *Browser) TakeProblems() []string {
	b.t.Helper()
	b.FlushConsole()
	p := b.Problems()
	b.mu.Lock()
	b.console = nil
	b.mu.Unlock()
	return p
}

// AssertCleanConsole fails the test when the console has any Problems. It first writes
// a marker to the console and waits for it, so every message the page produced before
// is in.
func (b *Browser) AssertCleanConsole() {
	b.t.Helper()
	b.FlushConsole()
	if p := b.Problems(); len(p) > 0 {
		b.t.Errorf("browser console has %d problem(s):\n%s", len(p), strings.Join(p, "\n"))
	}
}

// FlushConsole logs a unique marker through DevTools and waits until it arrives: the
// console stream keeps the browser's order, so everything before it has arrived too.
func (b *Browser) FlushConsole() {
	b.t.Helper()
	b.markers++
	marker := fmt.Sprintf("browsertest-flush-%d", b.markers)
	Run(b, chromedp.EvaluateAsDevTools[chromedp.Void](fmt.Sprintf("console.debug(%q)", marker)))
	b.WaitFor(5*time.Second, "the console to flush", func() bool {
		for _, m := range b.Console() {
			if m.Text == marker {
				return true
			}
		}
		return false
	})
}

// repoRoot finds the module root (the directory holding go.mod) from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}
