package appservice_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"matrixas/internal/testserver"
	"matrixas/settings"
)

// benchBody is ~3 KB: ten m.room.message events, like the peer benchmark's.
func benchBody() string {
	var events []string
	for i := 1; i <= 10; i++ {
		events = append(events, fmt.Sprintf(`{"type":"m.room.message","room_id":"!OGEhHVWSdvArJzumhm:bench.example.org","sender":"@user%02d:bench.example.org","event_id":"$1432735824653PhrSn%02dXq:bench.example.org","origin_server_ts":%d,"content":{"msgtype":"m.text","body":"message %d: hello from the bridge"},"unsigned":{"age":%d}}`, i, i, 1700000000000+i*137, i, 1000+i))
	}
	return `{"events":[` + strings.Join(events, ",") + `]}`
}

func setupBench(b *testing.B) (*testserver.Server, http.Handler, string) {
	s := testserver.New(b, testserver.Options{Env: map[string]string{"LOG_LEVEL": "error"}})
	hs := "bench_hs_token"
	if err := s.Web.Settings().Set(context.Background(), map[string]string{
		settings.HSToken.Key: hs, settings.ASToken.Key: "bench_as", settings.Enabled.Key: "true", settings.HomeserverDomain.Key: "bench.example.org",
	}); err != nil {
		b.Fatal(err)
	}
	return s, s.Web.Handler(), hs
}

// BenchmarkWebhookTransaction measures a new transaction through the real router and
// the durable recorder, from parallel goroutines (group commit at work).
func BenchmarkWebhookTransaction(b *testing.B) {
	s, h, hs := setupBench(b)
	body := benchBody()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.SetParallelism(16) // 32 concurrent requests on 2 cores, like the load generator
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPut, fmt.Sprintf("/_matrix/app/v1/transactions/b%d", n.Add(1)), strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+hs)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
	b.StopTimer()
	if got := txnCount(&testing.T{}, s); got != n.Load() {
		b.Fatalf("recorded %d, sent %d", got, n.Load())
	}
}

// BenchmarkHSTokenCheck measures the homeserver's authentication through the router:
// the ping endpoint does nothing but check the hs_token (cached settings, constant time).
func BenchmarkHSTokenCheck(b *testing.B) {
	_, h, hs := setupBench(b)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/_matrix/app/v1/ping", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+hs)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
