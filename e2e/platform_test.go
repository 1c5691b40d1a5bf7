package e2e

import (
	"net"
	"strings"
	"testing"
	"time"

	"matrixas/internal/browsertest"
	"matrixas/internal/fakewaldur"
	"matrixas/internal/testserver"
)

// TestPlatformPageInChromium: the Platform page in a real browser with htmx: "Sync now"
// starts a run, the status panel polls itself while it runs and stops when it ends;
// "Register the event hook" registers the hook and shows it, the secret hidden; the
// console stays clean (no inline script, no CSP violation).
func TestPlatformPageInChromium(t *testing.T) {
	browsertest.Require(t)
	f := fakewaldur.New(t)
	c := f.AddCustomer(fakewaldur.Customer{Name: "Acme", Abbreviation: "ACME"})
	f.AddProject(fakewaldur.Project{Name: "Apollo", CustomerUUID: c.UUID})
	const secret = "browser-events-secret-0123456789"
	env := testserver.PlatformEnv(f, secret)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a known address, so PUBLIC_URL can name it
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env["PUBLIC_URL"] = "http://" + addr
	srv := testserver.New(t, testserver.Options{Env: env, Addr: addr})
	first := srv.WaitSynced(t, 0)
	b := browsertest.New(t, srv.URL)
	b.Login("staff", testserver.StaffPassword)
	b.Navigate("/platform")
	b.WaitTestID("platform-connection")
	if got := b.TextContent("platform-token"); !strings.HasPrefix(strings.TrimSpace(got), "sha256:") {
		t.Errorf("token shown as %q", got)
	}

	// A slow listing keeps the run going while the page polls.
	release := make(chan struct{})
	f.Inject(fakewaldur.Fault{Path: "/api/customers/", Before: func() { <-release }})
	b.Click("platform-sync-now")
	b.WaitFor(10*time.Second, "the status panel to poll", func() bool { return attr(b, "platform-status", "data-running") == "true" })
	if got := flashes(b); !strings.Contains(got, "Full sync started") {
		t.Errorf("flashes %q", got)
	}
	close(release)
	b.WaitFor(30*time.Second, "the run to end and the panel to stop polling", func() bool {
		return attr(b, "platform-status", "data-running") == "false" && attr(b, "platform-status", "hx-get") == ""
	})
	if run := srv.WaitSynced(t, first.ID); !run.OK {
		t.Errorf("run %+v", run)
	}

	b.Click("platform-register-hook")
	b.WaitTestID("platform-hook-uuid")
	if got := b.TextContent("platform-hook-url"); strings.TrimSpace(got) != srv.URL+"/api/waldur/events/<secret>/" {
		t.Errorf("hook shown as %q", got)
	}
	if hooks := f.Hooks(); len(hooks) != 1 || !strings.HasSuffix(hooks[0].DestinationURL, "/"+secret+"/") {
		t.Errorf("hooks on the platform %+v", hooks)
	}
	if _, body := fetch(t, b, "/platform"); strings.Contains(body, secret) || strings.Contains(body, f.Token) {
		t.Error("the page shows a secret")
	}
	b.AssertCleanConsole()
}
