package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"matrixas/internal/browsertest"
	"matrixas/internal/testserver"
)

// TestOpenRedirectInChromium is issue 13's report as it was seen: a signed-in staff user
// opening /login?next=/a/../%5Cevil.example was sent off the site by Chromium itself.
// The hosts are *.localhost, which Chromium resolves to loopback without asking DNS, so
// a regression fails here without any traffic leaving the machine.
func TestOpenRedirectInChromium(t *testing.T) {
	browsertest.Require(t)
	srv := testserver.New(t)
	b := browsertest.New(t, srv.URL)
	b.Login("staff", testserver.StaffPassword)
	for _, next := range []string{
		`/a/../\evil.localhost:1/`,
		`/./\evil.localhost:1/`,
		"/%2F%2Fevil.localhost:1/",
		"/%5Cevil.localhost:1/",
		"/\t/evil.localhost:1/",
		"//evil.localhost:1/",
	} {
		// Chromium follows the 303 itself; a navigation that left the site fails to
		// connect, which is an error here and not the point: where it ended up is.
		ctx, cancel := context.WithTimeout(b.Context(), browsertest.StepTimeout)
		_ = chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/login?next="+url.QueryEscape(next)))
		cancel()
		if loc := b.Location(); !strings.HasPrefix(loc, srv.URL+"/") {
			t.Errorf("next=%q: Chromium ended at %q, off the site", next, loc)
		}
	}
}
