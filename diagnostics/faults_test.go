package diagnostics_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"matrixas/diagnostics"
)

// faultyHandler misbehaves on every path the diagnostics call, or (whoamiOnly) only on
// the token checks, after answering /versions like a real homeserver.
func faultyHandler(mode string, whoamiOnly bool) http.Handler {
	healthy := &fakeHS{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body first: only then does net/http notice the client hanging up
		// (and cancel r.Context()) while the handler waits.
		io.Copy(io.Discard, r.Body)
		if whoamiOnly && !strings.Contains(r.URL.Path, "/account/whoami") && !strings.Contains(r.URL.Path, "/appservice/") {
			healthy.ServeHTTP(w, r)
			return
		}
		switch mode {
		case "slow":
			<-r.Context().Done() // never answers; the client's timeout ends the call
		case "5xx":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"errcode":"M_UNKNOWN","error":"overloaded"}`)
		case "garbage":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `<<<not json>>>`)
		case "wrong shape":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"versions": 42, "user_id": ["x"], "server": "nope", "nonce": {}, "duration_ms": "fast"}`)
		case "truncated":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "500")
			io.WriteString(w, `{"versions":["v1.`)
		case "huge":
			w.Header().Set("Content-Type", "application/json")
			chunk := strings.Repeat(" ", 64<<10)
			for range 512 { // 32 MiB of whitespace before anything useful
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
		}
	})
}

// TestDiagnosticsUnderHomeserverFaults runs diagnostics, several at once, against
// homeservers that hang, fail, or answer garbage, everywhere or only on the token checks:
// every run returns within its bounds with failing checks that explain themselves (no
// secret in any detail), and no goroutine outlives the runs.
func TestDiagnosticsUnderHomeserverFaults(t *testing.T) {
	// Not parallel with the package's other tests: the leak check must see only ours.
	existing := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, existing) })
	tests := []struct {
		mode       string
		whoamiOnly bool
		failing    string // a check that must fail
	}{
		{"slow", false, diagnostics.CheckHomeserverReachable},
		{"5xx", false, diagnostics.CheckHomeserverReachable},
		{"garbage", false, diagnostics.CheckHomeserverReachable},
		{"wrong shape", false, diagnostics.CheckHomeserverReachable},
		{"truncated", false, diagnostics.CheckHomeserverReachable},
		{"huge", false, diagnostics.CheckHomeserverReachable},
		{"slow", true, diagnostics.CheckBotWhoami},
		{"5xx", true, diagnostics.CheckBotWhoami},
		{"garbage", true, diagnostics.CheckBotWhoami},
		{"wrong shape", true, diagnostics.CheckBotWhoami},
	}
	for _, tt := range tests {
		name := tt.mode
		if tt.whoamiOnly {
			name += " on the token checks"
		}
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(faultyHandler(tt.mode, tt.whoamiOnly))
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.Start()
			defer srv.Close()
			e := newEnv(t, setUp(srv.URL))
			e.opts.ConnectTimeout = 300 * time.Millisecond
			e.opts.RequestTimeout = 500 * time.Millisecond
			var transports []http.RoundTripper
			var mu sync.Mutex
			e.opts.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
				mu.Lock()
				transports = append(transports, rt)
				mu.Unlock()
				return rt
			}
			d := diagnostics.New(e.store, e.settings, e.opts)

			const runs = 4
			reports := make([]*diagnostics.Report, runs)
			errs := make([]error, runs)
			var wg sync.WaitGroup
			for i := range runs {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					reports[i], errs[i] = d.Run(ctx)
				})
			}
			wg.Wait()
			for i, rep := range reports {
				if errs[i] != nil {
					t.Fatalf("run %d: %v", i, errs[i])
				}
				checkInvariants(t, rep)
				if rep.OK {
					t.Errorf("run %d: ok against a faulty homeserver", i)
				}
				if c := rep.Check(tt.failing); c == nil || c.OK {
					t.Errorf("run %d: %s = %+v, want it failing", i, tt.failing, c)
				} else if i == 0 {
					t.Logf("%s: %s", tt.failing, c.Detail)
				}
			}
			srv.Close()
			mu.Lock()
			for _, rt := range transports {
				if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
					c.CloseIdleConnections()
				}
			}
			mu.Unlock()
		})
	}
}
