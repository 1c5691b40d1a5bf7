package provision

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"matrixas/db"
)

// TestBackoffGrowsAndIsCapped: the delay after n failures lies in the upper half of
// min(base*2^(n-1), max) (jitter), so it never shrinks from one failure to the next,
// doubles its range each time, and never passes the cap however many failures there
// were.
func TestBackoffGrowsAndIsCapped(t *testing.T) {
	tests := []struct {
		name      string
		base, max time.Duration
	}{
		{"defaults", 5 * time.Second, 10 * time.Minute},
		{"tight cap", time.Second, 3 * time.Second},
		{"base equals cap", time.Minute, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{BaseBackoff: tt.base, MaxBackoff: tt.max})
			const samples = 200
			prevMax := time.Duration(0)
			for n := 1; n <= 40; n++ {
				ceiling := tt.base
				for i := 1; i < n && ceiling < tt.max; i++ {
					ceiling *= 2
				}
				ceiling = min(ceiling, tt.max)
				lo, hi := time.Duration(1<<62), time.Duration(0)
				for range samples {
					d := w.backoff(n)
					lo, hi = min(lo, d), max(hi, d)
				}
				if lo < ceiling/2 || hi > ceiling {
					t.Fatalf("after %d failures: delays in [%s, %s], want within [%s, %s]", n, lo, hi, ceiling/2, ceiling)
				}
				if hi > tt.max {
					t.Fatalf("after %d failures: %s, past the cap %s", n, hi, tt.max)
				}
				// Growth: every delay now is at least every delay one failure earlier
				// (the ranges [c/2, c] and [c, 2c] only touch), until the cap.
				if lo < prevMax && ceiling < tt.max {
					t.Fatalf("after %d failures the delay %s is shorter than one after %d (%s)", n, lo, n-1, prevMax)
				}
				prevMax = hi
			}
		})
	}
}

// TestBotRegistrationBacksOff: a homeserver that refuses the bot (it has not loaded the
// registration yet) is asked again only after the backoff, not on every cycle, and a
// change of settings (new tokens) is tried at once.
func TestBotRegistrationBacksOff(t *testing.T) {
	var registers atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/register") {
			registers.Add(1)
		}
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errcode":"M_UNKNOWN_TOKEN","error":"Unknown token"}`))
	}))
	defer hs.Close()
	w := New(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{BaseBackoff: time.Hour, MaxBackoff: time.Hour})
	ms := &db.MatrixSettings{HomeserverURL: hs.URL, HomeserverDomain: "example.org", ASToken: "t1", SenderLocalpart: "bot", Enabled: true}
	for range 20 { // twenty worker cycles in quick succession
		w.ensureBot(context.Background(), ms)
	}
	if n := registers.Load(); n != 1 {
		t.Fatalf("%d bot registrations in 20 cycles, want 1 (then back off)", n)
	}
	rotated := *ms
	rotated.ASToken = "t2"
	w.ensureBot(context.Background(), &rotated)
	if n := registers.Load(); n != 2 {
		t.Fatalf("new tokens were not tried at once: %d registrations", n)
	}
}
