package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"matrixas/db"
	"matrixas/internal/metricstest"
	"matrixas/metrics"
	"matrixas/provision"
)

// scrape serves m's handler once and parses the answer.
func scrape(t *testing.T, m *metrics.Metrics) metricstest.Scrape {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return metricstest.Parse(t, rec.Body.String())
}

func TestEndpoint(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/_matrix/client/versions", "/_matrix/client/versions"},
		{"/_matrix/client/v3/account/whoami", "/_matrix/client/{version}/account/whoami"},
		{"/_matrix/client/r0/register", "/_matrix/client/{version}/register"},
		{"/_matrix/client/v3/createRoom", "/_matrix/client/{version}/createRoom"},
		{"/_matrix/client/v3/rooms/%21abc%3Alocalhost/invite", "/_matrix/client/{version}/rooms/{roomId}/invite"},
		{"/_matrix/client/v3/rooms/%21abc%3Alocalhost/join", "/_matrix/client/{version}/rooms/{roomId}/join"},
		{"/_matrix/client/v3/rooms/%21abc%3Alocalhost/state/m.room.power_levels/", "/_matrix/client/{version}/rooms/{roomId}/state/{eventType}/{stateKey}"},
		{"/_matrix/client/v3/rooms/%21abc%3Alocalhost/state/m.room.member/%40alice%3Alocalhost", "/_matrix/client/{version}/rooms/{roomId}/state/{eventType}/{stateKey}"},
		{"/_matrix/client/v3/rooms/%21abc%3Alocalhost/members", "/_matrix/client/{version}/rooms/{roomId}/members"},
		{"/_matrix/client/v3/directory/room/%23waldur-x%3Alocalhost", "/_matrix/client/{version}/directory/room/{roomAlias}"},
		{"/_matrix/client/v3/profile/%40alice%3Alocalhost/displayname", "/_matrix/client/{version}/profile/{userId}/displayname"},
		{"/_matrix/client/v1/appservice/waldur/ping", "/_matrix/client/{version}/appservice/{appserviceId}/ping"},
		{"/_synapse/admin/v1/register", "/_synapse/admin/v1/register"},
		{"/_matrix/federation/v1/version", "/_matrix/federation/v1/version"},
		{"/_matrix/key/v2/server", "/_matrix/key/v2/server"},
		// A homeserver served under a path prefix.
		{"/matrix/_matrix/client/v3/account/whoami", "/_matrix/client/{version}/account/whoami"},
		// Unknown APIs and junk are "other", never the path itself.
		{"/_matrix/client/v3/rooms/%21abc%3Alocalhost/secret-new-api", "other"},
		{"/_matrix/client/notaversion/account/whoami", "other"},
		{"/_matrix/media/v3/download/localhost/abcdef", "other"},
		{"/anything/else", "other"},
		{"", "other"},
	}
	for _, tt := range tests {
		if got := metrics.Endpoint(tt.path); got != tt.want {
			t.Errorf("Endpoint(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

// TestTransport times homeserver calls by normalised endpoint and outcome, and never
// puts an id, a query string or a token into a label.
func TestTransport(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/whoami"):
			w.Write([]byte(`{"user_id":"@bot:localhost"}`))
		case strings.HasSuffix(r.URL.Path, "/invite"):
			w.WriteHeader(http.StatusForbidden)
		default:
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer hs.Close()
	m := metrics.New("test", nil)
	c := m.InstrumentClient(&http.Client{Timeout: 5 * time.Second}, metrics.CallerWorker)
	get := func(method, path string) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, nil)
		req.Header.Set("Authorization", "Bearer as_token_secret")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get(http.MethodGet, "/_matrix/client/v3/account/whoami?user_id=%40alice%3Alocalhost")
	get(http.MethodGet, "/_matrix/client/v3/account/whoami")
	get(http.MethodPost, "/_matrix/client/v3/rooms/%21r1%3Alocalhost/invite")
	get(http.MethodPost, "/_matrix/client/v3/rooms/%21r2%3Alocalhost/invite")
	get(http.MethodGet, "/_matrix/client/versions")

	// A homeserver that is not there.
	dead := m.InstrumentClient(&http.Client{Timeout: 2 * time.Second}, metrics.CallerAPI)
	if _, err := dead.Get("http://127.0.0.1:1/_matrix/client/versions"); err == nil {
		t.Fatal("a request to port 1 succeeded")
	}
	// A cancelled request.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/_matrix/client/versions", nil)
	if _, err := c.Do(req); err == nil {
		t.Fatal("a cancelled request succeeded")
	}

	s := scrape(t, m)
	const name = "matrixas_homeserver_request_duration_seconds"
	tests := []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"caller": "worker", "endpoint": "/_matrix/client/{version}/account/whoami", "method": "GET", "outcome": "ok"}, 2},
		{map[string]string{"caller": "worker", "endpoint": "/_matrix/client/{version}/rooms/{roomId}/invite", "method": "POST", "outcome": "client_error"}, 2},
		{map[string]string{"caller": "worker", "endpoint": "/_matrix/client/versions", "outcome": "server_error"}, 1},
		{map[string]string{"caller": "worker", "endpoint": "/_matrix/client/versions", "outcome": "canceled"}, 1},
		{map[string]string{"caller": "api", "endpoint": "/_matrix/client/versions", "outcome": "network_error"}, 1},
	}
	for _, tt := range tests {
		if got := s.Get(t, name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", name, tt.labels, got, tt.want)
		}
	}
	for _, ep := range s.LabelValues(name, "endpoint") {
		if strings.ContainsAny(ep, "!%@?") || strings.Contains(ep, "localhost") || strings.Contains(ep, "as_token") {
			t.Errorf("endpoint label %q carries an id, a query or a token", ep)
		}
	}
}

// TestHTTPMiddleware labels requests by route pattern, never by raw path, and keeps
// methods from growing the label set.
func TestHTTPMiddleware(t *testing.T) {
	m := metrics.New("test", nil)
	r := chi.NewRouter()
	r.Use(m.HTTPMiddleware)
	r.Get("/rooms/{uuid}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	r.Post("/rooms/{uuid}/retry", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusConflict) })
	r.Route("/api", func(r chi.Router) {
		r.Get("/users/", func(w http.ResponseWriter, r *http.Request) {}) // writes nothing: 200
	})
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/rooms/aaaa", nil),
		httptest.NewRequest(http.MethodGet, "/rooms/bbbb", nil),
		httptest.NewRequest(http.MethodPost, "/rooms/cccc/retry", nil),
		httptest.NewRequest(http.MethodGet, "/api/users/", nil),
		httptest.NewRequest(http.MethodGet, "/no/such/path/12345", nil),
		httptest.NewRequest("BREW", "/rooms/dddd", nil),
	} {
		r.ServeHTTP(httptest.NewRecorder(), req)
	}
	s := scrape(t, m)
	const name = "matrixas_http_requests_total"
	tests := []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"route": "/rooms/{uuid}", "method": "GET", "code": "200"}, 2},
		{map[string]string{"route": "/rooms/{uuid}/retry", "method": "POST", "code": "409"}, 1},
		{map[string]string{"route": "/api/users/", "method": "GET", "code": "200"}, 1},
		{map[string]string{"route": "unmatched", "code": "404"}, 1},
		{map[string]string{"method": "OTHER", "code": "405"}, 1},
	}
	for _, tt := range tests {
		if got := s.Get(t, name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", name, tt.labels, got, tt.want)
		}
	}
	for _, route := range s.LabelValues(name, "route") {
		if strings.Contains(route, "aaaa") || strings.Contains(route, "12345") {
			t.Errorf("route label %q is a raw path", route)
		}
	}
	if got := s.Get(t, "matrixas_http_request_duration_seconds", map[string]string{"route": "/rooms/{uuid}", "method": "GET"}); got != 2 {
		t.Errorf("duration samples for GET /rooms/{uuid} = %v, want 2", got)
	}
}

func TestWebhookAndProvisionCounters(t *testing.T) {
	m := metrics.New("v1.2.3", nil)
	m.TransactionDone(metrics.TxnNew, 10)
	m.TransactionDone(metrics.TxnNew, 3)
	m.TransactionDone(metrics.TxnDuplicate, 10) // not processed: its events do not count
	m.TransactionDone(metrics.TxnRejected, 0)
	m.TransactionDone(metrics.TxnOutcome(200), 5) // unknown: ignored, no panic
	m.WebhookAuthFailed(metrics.AuthInvalidToken)
	m.WebhookAuthFailed(metrics.AuthInvalidToken)
	m.WebhookAuthFailed(metrics.AuthMissingToken)
	m.ProvisionDone(provision.KindRoomCreate, nil)
	m.ProvisionDone(provision.KindRoomCreate, errors.New("M_FORBIDDEN"))
	m.ProvisionDone(provision.KindUser, nil)

	s := scrape(t, m)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"matrixas_webhook_transactions_total", map[string]string{"result": "new"}, 2},
		{"matrixas_webhook_transactions_total", map[string]string{"result": "duplicate"}, 1},
		{"matrixas_webhook_transactions_total", map[string]string{"result": "rejected"}, 1},
		{"matrixas_webhook_transactions_total", map[string]string{"result": "failed"}, 0},
		{"matrixas_webhook_events_total", nil, 13},
		{"matrixas_webhook_auth_failures_total", map[string]string{"reason": "invalid_token"}, 2},
		{"matrixas_webhook_auth_failures_total", map[string]string{"reason": "missing_token"}, 1},
		{"matrixas_webhook_auth_failures_total", map[string]string{"reason": "not_configured"}, 0},
		{"matrixas_provision_attempts_total", map[string]string{"kind": "room_create"}, 2},
		{"matrixas_provision_failures_total", map[string]string{"kind": "room_create"}, 1},
		{"matrixas_provision_attempts_total", map[string]string{"kind": "user"}, 1},
		{"matrixas_provision_failures_total", map[string]string{"kind": "room_disable"}, 0},
		{"matrixas_build_info", map[string]string{"version": "v1.2.3"}, 1},
	}
	for _, tt := range tests {
		if got := s.Get(t, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if _, ok := s["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

// fakeStats is a StoreStats with fixed answers.
type fakeStats struct {
	stats *db.DiagnosticStats
	repro *db.ReprovisionProgress
	err   error
}

func (f *fakeStats) DiagnosticStats(context.Context, time.Time) (*db.DiagnosticStats, error) {
	return f.stats, f.err
}

func (f *fakeStats) LastReprovision(context.Context) (*db.ReprovisionProgress, error) {
	if f.repro == nil {
		return nil, db.ErrNotFound
	}
	return f.repro, nil
}

func TestStoreCollector(t *testing.T) {
	last := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name  string
		fake  *fakeStats
		wants map[string]float64 // "name{label=value}" -> value; absent = must be missing
	}{
		{"numbers", &fakeStats{
			stats: &db.DiagnosticStats{Rooms: map[db.RoomState]int{db.RoomActive: 3, db.RoomError: 1}, ProfilesTotal: 5, ProfilesProvisioned: 4,
				PendingRooms: 2, PendingUsers: 1, TransactionsTotal: 42, LastTransactionAt: last},
			repro: &db.ReprovisionProgress{RoomsRemaining: 2, UsersRemaining: 0, RoomsErrored: 1},
		}, map[string]float64{
			"matrixas_database_up": 1, "matrixas_rooms{state=active}": 3, "matrixas_rooms{state=error}": 1,
			"matrixas_rooms{state=creating}": 0, "matrixas_user_profiles": 5, "matrixas_user_profiles_provisioned": 4,
			"matrixas_provision_queue_pending{kind=rooms}": 2, "matrixas_provision_queue_pending{kind=users}": 1,
			"matrixas_transactions_recorded_total": 42, "matrixas_last_transaction_timestamp_seconds": 1_700_000_000,
			"matrixas_reprovision_in_progress": 1, "matrixas_reprovision_remaining{kind=rooms}": 2, "matrixas_reprovision_rooms_errored": 1,
		}},
		{"never reprovisioned", &fakeStats{stats: &db.DiagnosticStats{Rooms: map[db.RoomState]int{}}}, map[string]float64{
			"matrixas_database_up": 1, "matrixas_reprovision_in_progress": 0, "matrixas_last_transaction_timestamp_seconds": 0,
		}},
		{"database down", &fakeStats{err: errors.New("database is closed")}, map[string]float64{
			"matrixas_database_up": 0,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New("test", nil)
			m.CollectStore(tt.fake)
			s := scrape(t, m)
			for key, want := range tt.wants {
				name, labels := splitKey(key)
				if got := s.Get(t, name, labels); got != want {
					t.Errorf("%s = %v, want %v", key, got, want)
				}
			}
			if tt.fake.err != nil {
				if _, ok := s.Value("matrixas_rooms", nil); ok {
					t.Error("with the database down, room counts are reported (as zeros?)")
				}
			}
		})
	}
}

// splitKey splits "name{k=v}" into the name and its one label.
func splitKey(key string) (string, map[string]string) {
	name, rest, ok := strings.Cut(key, "{")
	if !ok {
		return key, nil
	}
	k, v, _ := strings.Cut(strings.TrimSuffix(rest, "}"), "=")
	return name, map[string]string{k: v}
}

// BenchmarkHTTPMiddleware measures what the middleware adds to a request through chi
// (compare the two sub-benchmarks): the webhook pays it on every transaction.
func BenchmarkHTTPMiddleware(b *testing.B) {
	for _, instrumented := range []bool{false, true} {
		name := "bare"
		if instrumented {
			name = "instrumented"
		}
		b.Run(name, func(b *testing.B) {
			m := metrics.New("bench", nil)
			r := chi.NewRouter()
			if instrumented {
				r.Use(m.HTTPMiddleware)
			}
			r.Route("/_matrix/app", func(r chi.Router) {
				r.Put("/v1/transactions/{txnId}", func(w http.ResponseWriter, r *http.Request) {
					m.TransactionDone(metrics.TxnNew, 10)
					w.WriteHeader(http.StatusOK)
				})
			})
			req := httptest.NewRequest(http.MethodPut, "/_matrix/app/v1/transactions/t1", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r.ServeHTTP(w, req)
			}
		})
	}
}
