package diagnostics_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"matrixas/diagnostics"
	"matrixas/handlers/appservice"
	"matrixas/settings"
)

// withPaths answers the given paths itself and passes the rest to a fakeHS.
type withPaths struct {
	hs    *fakeHS
	paths map[string]func(w http.ResponseWriter, r *http.Request)

	mu   sync.Mutex
	seen []*http.Request
}

func (p *withPaths) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f := p.paths[r.URL.Path]; f != nil {
		p.mu.Lock()
		p.seen = append(p.seen, r)
		p.mu.Unlock()
		f(w, r)
		return
	}
	p.hs.ServeHTTP(w, r)
}

func answer(status int, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

// TestBotHomeserverAdmin: bot_homeserver_admin asks the admin API about the bot itself,
// with the as_token; Synapse with the bot an admin says so, a homeserver without an admin
// API for the bot (403 from Synapse, 404 from Dendrite) still passes with what is lost,
// and only an answer that is neither fails.
func TestBotHomeserverAdmin(t *testing.T) {
	adminPath := "/_synapse/admin/v1/users/" + bot + "/admin"
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request) // nil: the fake's 404 M_UNRECOGNIZED
		want   expect
	}{
		{"the bot is a server admin", answer(200, `{"admin": true}`),
			expect{true, "OK — the bot " + bot + " is a server admin (Synapse admin API): deactivated users' accounts are locked", ""}},
		{"Synapse, the bot not an admin", answer(403, `{"errcode":"M_FORBIDDEN","error":"You are not a server admin"}`),
			expect{true, "Not available — the bot is not a server admin on this homeserver (HTTP 403 M_FORBIDDEN: You are not a server admin): deactivated users are signed out and removed from their rooms, but their accounts are not locked", ""}},
		{"no admin API (Dendrite)", nil,
			expect{true, "Not available — this homeserver has no admin API the bot may use", ""}},
		{"a broken answer", answer(500, `{"errcode":"M_UNKNOWN","error":"boom"}`),
			expect{false, "Unexpected answer from the admin API: HTTP 500 M_UNKNOWN: boom", "homeserver's log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &withPaths{hs: &fakeHS{}, paths: map[string]func(http.ResponseWriter, *http.Request){}}
			if tt.answer != nil {
				h.paths[adminPath] = tt.answer
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			rep := newEnv(t, setUp(srv.URL)).run(t)
			assertCheck(t, rep, diagnostics.CheckBotAdmin, tt.want)
			if tt.answer != nil {
				h.mu.Lock()
				defer h.mu.Unlock()
				if len(h.seen) != 1 || h.seen[0].Header.Get("Authorization") != "Bearer "+asToken || h.seen[0].Method != http.MethodGet {
					t.Errorf("the admin API was asked %d times, or not with the as_token", len(h.seen))
				}
			}
			if strings.Contains(tt.name, "not an admin") {
				if c := rep.Check(diagnostics.CheckBotAdmin); !strings.Contains(c.Detail, "UPDATE users SET admin = 1 WHERE name = '"+bot+"'") {
					t.Errorf("no way to enable it: %q", c.Detail)
				}
			}
		})
	}
	// Without a token the question cannot be asked.
	srv := httptest.NewServer(&fakeHS{})
	defer srv.Close()
	values := setUp(srv.URL)
	delete(values, settings.ASToken.Key)
	rep := newEnv(t, values).run(t)
	assertCheck(t, rep, diagnostics.CheckBotAdmin, expect{false, "Skipped — no as_token is configured", "setup"})
}

// TestLiveKitConfigured: livekit_configured reads the homeserver's client well-known at
// the public homeserver URL; a listed LiveKit focus passes, and nothing listed fails only
// when MATRIX_LIVEKIT_URL says one is expected (then it must be that one).
func TestLiveKitConfigured(t *testing.T) {
	const lk = "https://livekit-jwt.example.org"
	focus := `{"m.homeserver": {"base_url": "https://matrix.example.org"}, "org.matrix.msc4143.rtc_foci": [{"type": "nextgen"}, {"type": "livekit", "livekit_service_url": "` + lk + `/"}]}`
	tests := []struct {
		name     string
		wk       func(w http.ResponseWriter, r *http.Request) // nil: 404
		expected string
		want     expect
	}{
		{"listed, none expected", answer(200, focus), "", expect{true, "OK — LiveKit service " + lk + " (from ", ""}},
		{"listed, the one expected", answer(200, focus), lk, expect{true, "OK — LiveKit service " + lk, ""}},
		{"listed, another expected", answer(200, focus), "https://other.example.org", expect{false,
			"The homeserver lists the LiveKit service " + lk + ", but MATRIX_LIVEKIT_URL expects https://other.example.org", "well-known"}},
		{"no well-known, none expected", nil, "", expect{true, "None listed: ", ""}},
		{"no well-known, one expected", nil, lk, expect{false, "MATRIX_LIVEKIT_URL expects the LiveKit service " + lk + ", but ", `"org.matrix.msc4143.rtc_foci": [{"type": "livekit", "livekit_service_url": "` + lk + `"}]`}},
		{"well-known without foci, one expected", answer(200, `{"m.homeserver": {"base_url": "x"}}`), lk, expect{false, "lists no org.matrix.msc4143.rtc_foci", "well-known"}},
		{"foci without livekit, one expected", answer(200, `{"org.matrix.msc4143.rtc_foci": [{"type": "nextgen"}]}`), lk, expect{false, "lists no LiveKit focus (type livekit)", "well-known"}},
		{"not JSON, one expected", answer(200, `<html></html>`), lk, expect{false, "is not a JSON object", "well-known"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The well-known is read at the public URL, not the internal one.
			public := &withPaths{hs: &fakeHS{cors: true}, paths: map[string]func(http.ResponseWriter, *http.Request){}}
			if tt.wk != nil {
				public.paths["/.well-known/matrix/client"] = tt.wk
			}
			pub := httptest.NewServer(public)
			defer pub.Close()
			internal := &withPaths{hs: &fakeHS{}, paths: map[string]func(http.ResponseWriter, *http.Request){
				"/.well-known/matrix/client": answer(200, `{"org.matrix.msc4143.rtc_foci": [{"type": "livekit", "livekit_service_url": "https://wrong.example.org"}]}`)}}
			srv := httptest.NewServer(internal)
			defer srv.Close()
			values := setUp(srv.URL)
			values[settings.HomeserverPublicURL.Key] = pub.URL
			if tt.expected != "" {
				values[settings.LiveKitURL.Key] = tt.expected
			}
			rep := newEnv(t, values).run(t)
			assertCheck(t, rep, diagnostics.CheckLiveKit, tt.want)
			if strings.HasPrefix(tt.name, "no well-known, none") && !strings.Contains(rep.Check(diagnostics.CheckLiveKit).Detail, "none expected (MATRIX_LIVEKIT_URL is not set)") {
				t.Errorf("does not say none is expected: %q", rep.Check(diagnostics.CheckLiveKit).Detail)
			}
			if len(internal.seen) != 0 {
				t.Error("the well-known was read at the internal URL")
			}
		})
	}
}

// TestWebhookErrorsCheck: webhook_errors counts the 5xx answers of the last hour, and
// says since when it counts (the count lives in memory, from the server's start).
func TestWebhookErrorsCheck(t *testing.T) {
	srv := httptest.NewServer(&fakeHS{})
	defer srv.Close()
	e := newEnv(t, setUp(srv.URL))
	window := appservice.NewErrorWindow()
	e.opts.WebhookErrors = window
	assertCheck(t, e.run(t), diagnostics.CheckWebhookErrors, expect{true, "None since this server started just now", ""})

	for range 3 {
		window.Add(e.now)
	}
	window.Add(e.now.Add(-2 * time.Hour)) // older than the window
	assertCheck(t, e.run(t), diagnostics.CheckWebhookErrors, expect{false, "3 error answers (5xx) since this server started", "this server's log"})

	e.now = e.now.Add(2 * time.Hour) // they age out
	assertCheck(t, e.run(t), diagnostics.CheckWebhookErrors, expect{true, "None in the last hour", ""})
	window.Add(e.now.Add(-30 * time.Minute))
	assertCheck(t, e.run(t), diagnostics.CheckWebhookErrors, expect{false, "1 error answer (5xx) in the last hour", "readyz"})
}

// TestNewChecksInOrder: the checks of issue 17 come in the contract's order (others may
// sit between them).
func TestNewChecksInOrder(t *testing.T) {
	pos := map[string]int{}
	for i, n := range diagnostics.CheckNames {
		pos[n] = i
	}
	for _, pair := range [][2]string{
		{diagnostics.CheckUserNamespace, diagnostics.CheckBotAdmin},
		{diagnostics.CheckBotAdmin, diagnostics.CheckPing},
		{diagnostics.CheckPing, diagnostics.CheckLiveKit},
		{diagnostics.CheckLiveKit, diagnostics.CheckTransactions},
		{diagnostics.CheckProvisioningQueue, diagnostics.CheckWebhookErrors},
	} {
		if pos[pair[0]] >= pos[pair[1]] {
			t.Errorf("%s is not after %s: %v", pair[1], pair[0], diagnostics.CheckNames)
		}
	}
}
