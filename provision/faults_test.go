package provision_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"matrixas/db"
	"matrixas/internal/testserver"
	"matrixas/matrix"
	"matrixas/provision"
	"matrixas/settings"
)

// faultMode is how the fake homeserver misbehaves.
type faultMode string

const (
	hsHealthy   faultMode = "healthy"
	hsSlow      faultMode = "slow"       // never answers; the client's timeout ends each call
	hsRefusing  faultMode = "refusing"   // nothing listens on the homeserver's port
	hs5xx       faultMode = "5xx"        // 500/502/503, Matrix-shaped or a proxy's HTML
	hsGarbage   faultMode = "garbage"    // 200 with a body that is not the JSON asked for
	hsTruncated faultMode = "truncated"  // 200 whose JSON body is cut short
	hsRateLimit faultMode = "rate limit" // 429 M_LIMIT_EXCEEDED with retry_after_ms
)

// faultyHomeserver is a homeserver imitation: healthy, it answers the calls the worker
// makes with plausible bodies (a room is created with only the bot in it); in a fault
// mode it misbehaves on every call. It counts the requests per path.
type faultyHomeserver struct {
	srv  *httptest.Server
	bot  string
	mode atomic.Value // faultMode

	mu       sync.Mutex
	requests []string // "METHOD path" in arrival order
	rooms    int
}

func newFaultyHomeserver(t *testing.T, bot string) *faultyHomeserver {
	t.Helper()
	f := &faultyHomeserver{bot: bot}
	f.mode.Store(hsHealthy)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *faultyHomeserver) setMode(m faultMode) { f.mode.Store(m) }

// seen returns how many requests so far had a path containing s.
func (f *faultyHomeserver) seen(s string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if strings.Contains(r, s) {
			n++
		}
	}
	return n
}

func (f *faultyHomeserver) serve(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.EscapedPath())
	n := len(f.requests)
	f.mu.Unlock()
	jsonAnswer := func(status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
	switch f.mode.Load().(faultMode) {
	case hsSlow:
		<-r.Context().Done() // the client gives up; nothing is ever answered
		return
	case hs5xx:
		switch n % 3 {
		case 0:
			jsonAnswer(http.StatusInternalServerError, `{"errcode":"M_UNKNOWN","error":"Internal server error"}`)
		case 1:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return
	case hsGarbage:
		if n%2 == 0 {
			jsonAnswer(http.StatusOK, `<<<not json at all>>>`)
		} else {
			jsonAnswer(http.StatusOK, `{"room_id": 42, "chunk": "nope", "user_id": [], "errcode": {}}`)
		}
		return
	case hsTruncated:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "200")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"room_id": "!trunc`) // the connection ends 181 bytes early
		return
	case hsRateLimit:
		jsonAnswer(http.StatusTooManyRequests, `{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":1}`)
		return
	}
	f.healthy(w, r, jsonAnswer)
}

// healthy answers like a working homeserver, enough for the worker to create a room
// with no members but the bot.
func (f *faultyHomeserver) healthy(w http.ResponseWriter, r *http.Request, answer func(int, string)) {
	p := r.URL.Path
	roomIn := func() string {
		rest, _ := strings.CutPrefix(p, "/_matrix/client/v3/rooms/")
		id, _, _ := strings.Cut(rest, "/")
		return id
	}
	switch {
	case strings.HasSuffix(p, "/register"):
		answer(http.StatusBadRequest, `{"errcode":"M_USER_IN_USE","error":"User ID already taken."}`)
	case strings.Contains(p, "/directory/room/"):
		answer(http.StatusNotFound, `{"errcode":"M_NOT_FOUND","error":"Room alias not found"}`)
	case strings.HasSuffix(p, "/createRoom"):
		f.mu.Lock()
		f.rooms++
		n := f.rooms
		f.mu.Unlock()
		answer(http.StatusOK, fmt.Sprintf(`{"room_id":"!room%d:localhost"}`, n))
	case strings.HasSuffix(p, "/state") && r.Method == http.MethodGet: // the room's current state
		b, _ := json.Marshal([]map[string]any{{
			"type": "m.room.member", "state_key": f.bot, "sender": f.bot, "event_id": "$join", "room_id": roomIn(),
			"content": map[string]any{"membership": "join"},
		}})
		answer(http.StatusOK, string(b))
	case strings.HasSuffix(p, "/joined_members"):
		answer(http.StatusOK, fmt.Sprintf(`{"joined":{%q:{}}}`, f.bot))
	case strings.Contains(p, "/state/m.room.power_levels") && r.Method == http.MethodGet:
		answer(http.StatusOK, fmt.Sprintf(`{"users":{%q:100},"users_default":0,"events_default":0,"state_default":100,"invite":100,"kick":100,"ban":100,"redact":100}`, f.bot))
	case strings.Contains(p, "/state/") && r.Method == http.MethodGet:
		answer(http.StatusNotFound, `{"errcode":"M_NOT_FOUND","error":"Event not found"}`)
	case strings.Contains(p, "/state/"), strings.Contains(p, "/send/"):
		answer(http.StatusOK, `{"event_id":"$ev"}`)
	case strings.HasSuffix(p, "/join") || strings.Contains(p, "/join/"):
		answer(http.StatusOK, fmt.Sprintf(`{"room_id":%q}`, roomIn()))
	case strings.HasSuffix(p, "/account/whoami"):
		answer(http.StatusOK, fmt.Sprintf(`{"user_id":%q}`, f.bot))
	default: // display names, invites, kicks, leaves
		answer(http.StatusOK, `{}`)
	}
}

// refusedURL is an http URL on which nothing listens (connection refused).
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// outcomes counts the worker's job outcomes (provision.Observer).
type outcomes struct {
	mu     sync.Mutex
	failed map[string]int
	done   map[string]int
}

var _ provision.Observer = (*outcomes)(nil)

func (o *outcomes) ProvisionDone(kind string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failed == nil {
		o.failed, o.done = map[string]int{}, map[string]int{}
	}
	if err != nil {
		o.failed[kind]++
	} else {
		o.done[kind]++
	}
}

func (o *outcomes) counts(kind string) (failed, done int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.failed[kind], o.done[kind]
}

// transition is one change of a room's state, as a trigger saw it.
type transition struct {
	room     int64
	from, to db.RoomState
}

// recordTransitions installs a trigger that logs every room state change (and every
// new room's first state), so a test sees each step the state machine took, however
// briefly a state lasted.
func recordTransitions(t *testing.T, store *db.Store) func() []transition {
	t.Helper()
	ctx := context.Background()
	err := store.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			CREATE TABLE test_room_transitions (id INTEGER PRIMARY KEY, room INTEGER NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL);
			CREATE TRIGGER test_room_state_update AFTER UPDATE OF state ON matrix_rooms WHEN OLD.state != NEW.state BEGIN
				INSERT INTO test_room_transitions (room, from_state, to_state) VALUES (NEW.id, OLD.state, NEW.state);
			END;
			CREATE TRIGGER test_room_state_insert AFTER INSERT ON matrix_rooms BEGIN
				INSERT INTO test_room_transitions (room, from_state, to_state) VALUES (NEW.id, '', NEW.state);
			END;`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() []transition {
		var out []transition
		err := store.Tx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT room, from_state, to_state FROM test_room_transitions ORDER BY id`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var tr transition
				if err := rows.Scan(&tr.room, &tr.from, &tr.to); err != nil {
					return err
				}
				out = append(out, tr)
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// pathOf is a room's transitions as "from>to" steps.
func pathOf(trs []transition, room int64) string {
	var steps []string
	for _, tr := range trs {
		if tr.room == room {
			steps = append(steps, string(tr.from)+">"+string(tr.to))
		}
	}
	return strings.Join(steps, " ")
}

// TestHomeserverFaults runs the provisioning worker against a homeserver that is slow,
// refusing, answering 5xx, garbage, truncated bodies or 429s. For each: the room is
// attempted exactly MaxAttempts times and then parked in error with a reason (no token
// in it or in the log); once the homeserver is healthy the worker demonstrably works
// (a second room becomes active) without touching the parked room again; a staff retry
// brings the parked room to active; every state change is one the state machine allows;
// and when the worker stops, no goroutine is left behind.
func TestHomeserverFaults(t *testing.T) {
	// Not parallel with the package's other tests: the leak check must see only ours.
	// Goroutines already running now (other tests' leftovers) are not ours.
	existing := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, existing) })
	modes := []faultMode{hsSlow, hsRefusing, hs5xx, hsGarbage, hsTruncated, hsRateLimit}
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			homeserverFault(t, mode)
		})
	}
}

func homeserverFault(t *testing.T, mode faultMode) {
	const maxAttempts = 3
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "faults.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	st := db.NewSettings(store, nil)
	asToken := strings.Repeat("a1", 32)
	hs := newFaultyHomeserver(t, "@waldur-bot:localhost")
	hsURL := hs.srv.URL
	if mode == hsRefusing {
		hsURL = refusedURL(t)
	} else {
		hs.setMode(mode)
	}
	if err := st.Set(ctx, map[string]string{
		settings.HomeserverURL.Key: hsURL, settings.HomeserverDomain.Key: "localhost", settings.SenderLocalpart.Key: "waldur-bot",
		settings.ASToken.Key: asToken, settings.HSToken.Key: strings.Repeat("b2", 32), settings.Enabled.Key: "true",
	}); err != nil {
		t.Fatal(err)
	}
	transitions := recordTransitions(t, store)

	newRoom := func(name string) *db.Room {
		t.Helper()
		p, _, err := store.PutProject(ctx, db.DirectoryProject{Name: name}, false)
		if err != nil {
			t.Fatal(err)
		}
		r, err := store.CreateRoom(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	roomState := func(uuid string) *db.Room {
		t.Helper()
		r, err := store.RoomByUUID(ctx, uuid)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	waitState := func(uuid string, want db.RoomState) *db.Room {
		t.Helper()
		var r *db.Room
		waitFor(t, "room in state "+string(want), 30*time.Second, func() (bool, string) {
			r = roomState(uuid)
			return r.State == want, fmt.Sprintf("state %s, attempts %d, error %q", r.State, r.Attempts, r.ErrorMessage)
		})
		return r
	}

	logs := &testserver.SyncBuffer{}
	hc := matrix.HTTPClient(200*time.Millisecond, 300*time.Millisecond)
	obs := &outcomes{}
	w := provision.New(store, st, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), provision.Options{
		Concurrency: 2, MaxAttempts: maxAttempts, BaseBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		Interval: 50 * time.Millisecond, JobTimeout: 5 * time.Second, HTTPClient: hc, Observer: obs,
	})
	stopped := make(chan struct{})
	go func() { w.Run(ctx); close(stopped) }()

	parked := newRoom("Faulty " + string(mode))
	w.Wake()
	r := waitState(parked.UUID, db.RoomError)
	if r.Attempts != maxAttempts {
		t.Errorf("attempts %d when parked in error, want exactly %d", r.Attempts, maxAttempts)
	}
	if r.ErrorMessage == "" || r.RoomID != "" {
		t.Errorf("parked room: error %q, room id %q; want a reason and no room", r.ErrorMessage, r.RoomID)
	}
	// The job reports to the observer just after it records the failure: wait for it.
	waitFor(t, "the observer told of every attempt", 5*time.Second, func() (bool, string) {
		failed, done := obs.counts(provision.KindRoomCreate)
		return failed == maxAttempts && done == 0, fmt.Sprintf("room creation jobs: %d failed, %d done; want %d failed", failed, done, maxAttempts)
	})
	t.Logf("%s: parked after %d attempts: %s (bot registration tried %d times meanwhile, once per worker cycle)",
		mode, r.Attempts, r.ErrorMessage, hs.seen("/register"))

	// The homeserver heals. The worker creates a new room (so it is running and
	// talking to the homeserver) but leaves the parked one alone.
	hs.setMode(hsHealthy)
	if err := st.Set(ctx, map[string]string{settings.HomeserverURL.Key: hs.srv.URL}); err != nil {
		t.Fatal(err)
	}
	before := hs.seen(parked.ProjectUUID)
	fresh := newRoom("Healthy " + string(mode))
	w.Wake()
	waitState(fresh.UUID, db.RoomActive)
	if n := hs.seen(parked.ProjectUUID) - before; n != 0 {
		t.Errorf("the parked room was tried again %d times without a retry", n)
	}
	if r := roomState(parked.UUID); r.State != db.RoomError || r.Attempts != maxAttempts {
		t.Errorf("parked room changed on its own: %s, attempts %d", r.State, r.Attempts)
	}

	// Staff retry: error -> creating -> active.
	if _, err := store.RetryRoom(ctx, parked.UUID); err != nil {
		t.Fatal(err)
	}
	w.Wake()
	if r := waitState(parked.UUID, db.RoomActive); r.ErrorMessage != "" || r.Attempts != 0 || r.RoomID == "" {
		t.Errorf("retried room: error %q, attempts %d, room id %q", r.ErrorMessage, r.Attempts, r.RoomID)
	}

	trs := transitions()
	for _, tr := range trs {
		if tr.from != "" && !db.CanTransition(tr.from, tr.to) {
			t.Errorf("room %d went %s -> %s, which the state machine forbids", tr.room, tr.from, tr.to)
		}
	}
	if got, want := pathOf(trs, parked.ID), ">creating creating>error error>creating creating>active"; got != want {
		t.Errorf("parked room's states: %q, want %q", got, want)
	}
	if got, want := pathOf(trs, fresh.ID), ">creating creating>active"; got != want {
		t.Errorf("fresh room's states: %q, want %q", got, want)
	}

	cancel()
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("the worker did not stop after its context was cancelled")
	}
	hc.CloseIdleConnections()
	hs.srv.Close()
	if strings.Contains(logs.String(), asToken) {
		t.Errorf("the as_token reached the worker's log")
	}
}
