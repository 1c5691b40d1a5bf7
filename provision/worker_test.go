package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/settings"
)

// fakeHS imitates the few homeserver endpoints a room creation touches, answering
// createRoom with whatever the test says, and records the createRoom bodies.
type fakeHS struct {
	mu       sync.Mutex
	creates  []map[string]any
	onCreate func(body map[string]any) (int, string)
	orphan   string   // a project uuid: the bot is in a room created for it, not recorded
	aliased  []string // PUT /directory/room/... paths
}

func (f *fakeHS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/_matrix/client/v3")
	reply := func(code int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
	switch {
	case r.Method == http.MethodPost && p == "/register":
		reply(http.StatusBadRequest, `{"errcode":"M_USER_IN_USE","error":"taken"}`)
	case strings.HasPrefix(p, "/profile/"):
		reply(http.StatusOK, `{}`)
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/directory/room/"):
		reply(http.StatusNotFound, `{"errcode":"M_NOT_FOUND","error":"no alias"}`)
	case r.Method == http.MethodPost && p == "/createRoom":
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.creates = append(f.creates, body)
		f.mu.Unlock()
		reply(f.onCreate(body))
	case p == "/joined_rooms":
		f.mu.Lock()
		orphan := f.orphan
		f.mu.Unlock()
		if orphan == "" {
			reply(http.StatusOK, `{"joined_rooms":[]}`)
			return
		}
		reply(http.StatusOK, `{"joined_rooms":["!orphan:hs.test"]}`)
	case strings.HasPrefix(p, "/rooms/!orphan:hs.test/state/m.room.create"):
		f.mu.Lock()
		orphan := f.orphan
		f.mu.Unlock()
		reply(http.StatusOK, `{"creator":"@bot:hs.test","`+ProjectTagKey+`":"`+orphan+`"}`)
	case r.Method == http.MethodPut && strings.HasPrefix(p, "/directory/room/"):
		f.mu.Lock()
		f.aliased = append(f.aliased, p)
		f.mu.Unlock()
		reply(http.StatusOK, `{}`)
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/state"): // the room's current state
		reply(http.StatusOK, `[{"type":"m.room.member","state_key":"@bot:hs.test","sender":"@bot:hs.test","content":{"membership":"join"}}]`)
	case strings.Contains(p, "/state/m.room.power_levels"):
		if r.Method == http.MethodGet {
			reply(http.StatusOK, `{"users":{"@bot:hs.test":100},"invite":100,"kick":100,"ban":100,"redact":100,"state_default":100,"events_default":0}`)
			return
		}
		reply(http.StatusOK, `{"event_id":"$pl"}`)
	default:
		reply(http.StatusNotFound, `{"errcode":"M_UNRECOGNIZED","error":"fake: `+r.Method+` `+p+`"}`)
	}
}

// newTestWorker returns a worker over a fresh database whose settings point at hs, and
// one project with a queued room.
func newTestWorker(t *testing.T, hs http.Handler, opts Options) (*Worker, *db.Store, *db.MatrixSettings, *db.Room) {
	t.Helper()
	ctx := context.Background()
	srv := httptest.NewServer(hs)
	t.Cleanup(srv.Close)
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	st := db.NewSettings(store, nil)
	if err := st.Set(ctx, map[string]string{
		settings.HomeserverURL.Key: srv.URL, settings.HomeserverDomain.Key: "hs.test", settings.ASToken.Key: "as-secret-token",
		settings.HSToken.Key: "hs", settings.SenderLocalpart.Key: "bot", settings.Enabled.Key: "true",
	}); err != nil {
		t.Fatal(err)
	}
	ms, err := st.Matrix(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := store.PutProject(ctx, db.DirectoryProject{Name: "Apollo"}, true)
	if err != nil {
		t.Fatal(err)
	}
	room, err := store.RoomByUUID(ctx, p.RoomUUID)
	if err != nil {
		t.Fatal(err)
	}
	w := New(store, st, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	return w, store, ms, room
}

// TestAliasTakenCreatesWithoutAlias: M_ROOM_IN_USE on the alias creates the room without
// it, and the room's record says so.
func TestAliasTakenCreatesWithoutAlias(t *testing.T) {
	hs := &fakeHS{onCreate: func(body map[string]any) (int, string) {
		if body["room_alias_name"] != nil {
			return http.StatusBadRequest, `{"errcode":"M_ROOM_IN_USE","error":"Room alias already exists."}`
		}
		return http.StatusOK, `{"room_id":"!new:hs.test"}`
	}}
	w, store, ms, room := newTestWorker(t, hs, Options{})
	w.roomJob(context.Background(), ms, room.ID)
	got, err := store.RoomByID(context.Background(), room.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != db.RoomActive || got.RoomID != "!new:hs.test" || got.RoomAlias != "" {
		t.Fatalf("room: %+v", got)
	}
	if !strings.Contains(got.Notice, "#waldur-"+room.ProjectUUID+":hs.test") || !strings.Contains(got.Notice, "M_ROOM_IN_USE") {
		t.Errorf("notice %q", got.Notice)
	}
	if len(hs.creates) != 2 {
		t.Fatalf("%d createRoom calls, want 2", len(hs.creates))
	}
	// The first request carried everything the room needs.
	first := hs.creates[0]
	cc, _ := first["creation_content"].(map[string]any)
	pl, _ := first["power_level_content_override"].(map[string]any)
	users, _ := pl["users"].(map[string]any)
	if first["room_alias_name"] != "waldur-"+room.ProjectUUID || first["name"] != "Apollo" || first["visibility"] != "private" ||
		cc["m.federate"] != false || cc[ProjectTagKey] != room.ProjectUUID || users["@bot:hs.test"] != 100.0 ||
		pl["invite"] != 100.0 || pl["kick"] != 100.0 || pl["ban"] != 100.0 || pl["redact"] != 100.0 || pl["state_default"] != 100.0 {
		t.Errorf("createRoom body: %v", first)
	}
	var state []string
	for _, e := range first["initial_state"].([]any) {
		ev := e.(map[string]any)
		b, _ := json.Marshal(ev["content"])
		state = append(state, fmt.Sprintf("%s=%s", ev["type"], b))
	}
	want := `m.room.join_rules={"join_rule":"invite"} m.room.history_visibility={"history_visibility":"shared"} m.room.guest_access={"guest_access":"forbidden"}`
	if strings.Join(state, " ") != want {
		t.Errorf("initial state %v", state)
	}
}

// TestFailureBecomesErrorWithTheHomeserversMessage: a homeserver that keeps refusing
// sends the room to error after MaxAttempts, with errcode and error, never a token.
func TestFailureBecomesErrorWithTheHomeserversMessage(t *testing.T) {
	hs := &fakeHS{onCreate: func(map[string]any) (int, string) {
		// A homeserver may echo the token it was given: it must not reach the record.
		return http.StatusForbidden, `{"errcode":"M_FORBIDDEN","error":"Token as-secret-token may not create rooms."}`
	}}
	w, store, ms, room := newTestWorker(t, hs, Options{MaxAttempts: 2, BaseBackoff: time.Hour, MaxBackoff: 2 * time.Hour})
	ctx := context.Background()
	w.roomJob(ctx, ms, room.ID)
	got, _ := store.RoomByID(ctx, room.ID)
	if got.State != db.RoomCreating || got.Attempts != 1 || got.ErrorMessage != "create room: M_FORBIDDEN: Token [redacted] may not create rooms." {
		t.Fatalf("after one failure: %+v", got)
	}
	if wait := time.Until(got.NextAttemptAt); wait < 29*time.Minute {
		t.Errorf("backoff %s after the first failure of a 1h base", wait)
	}
	if !got.CreateStartedAt.IsZero() {
		t.Error("a refused createRoom is remembered as one that may have made a room")
	}
	w.roomJob(ctx, ms, room.ID) // the job runs when told, due or not
	got, _ = store.RoomByID(ctx, room.ID)
	if got.State != db.RoomError || got.ErrorMessage != "create room: M_FORBIDDEN: Token [redacted] may not create rooms." {
		t.Fatalf("after MaxAttempts: %+v", got)
	}
	if strings.Contains(got.ErrorMessage, "as-secret-token") {
		t.Error("the error message carries the as_token")
	}
}

func TestMessage(t *testing.T) {
	httpErr := mautrix.HTTPError{RespError: &mautrix.RespError{ErrCode: "M_LIMIT_EXCEEDED", Err: "Too many requests"},
		Response: &http.Response{StatusCode: http.StatusTooManyRequests}}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{step("invite @a:hs", httpErr), "invite @a:hs: M_LIMIT_EXCEEDED: Too many requests"},
		{httpErr, "M_LIMIT_EXCEEDED: Too many requests"},
		{step("create room", errors.New("dial tcp 127.0.0.1:1: connect: connection refused")), "create room: dial tcp 127.0.0.1:1: connect: connection refused"},
	} {
		if got := Message(tc.err); got != tc.want {
			t.Errorf("Message(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestWakeNeverBlocks: wakes coalesce into one pending scan.
func TestWakeNeverBlocks(t *testing.T) {
	w := &Worker{wake: make(chan struct{}, 1)}
	for range 100 {
		w.Wake()
	}
	if len(w.wake) != 1 {
		t.Fatalf("%d pending wakes", len(w.wake))
	}
}

// TestInterruptedCreationIsAdoptedNotRepeated: a createRoom whose answer never came may
// have made the room (without its alias); the worker waits for it to settle, then finds
// the room by its project tag and adopts it instead of creating a second one.
func TestInterruptedCreationIsAdoptedNotRepeated(t *testing.T) {
	hs := &fakeHS{}
	hs.onCreate = func(body map[string]any) (int, string) {
		// The homeserver makes the room but the answer never arrives in time.
		hs.mu.Lock()
		hs.orphan = body["creation_content"].(map[string]any)[ProjectTagKey].(string)
		hs.mu.Unlock()
		time.Sleep(500 * time.Millisecond)
		return http.StatusOK, `{"room_id":"!orphan:hs.test"}`
	}
	hc := &http.Client{Timeout: 100 * time.Millisecond}
	w, store, ms, room := newTestWorker(t, hs, Options{HTTPClient: hc, CreateSettle: time.Hour, BaseBackoff: time.Millisecond})
	ctx := context.Background()

	w.roomJob(ctx, ms, room.ID)
	got, _ := store.RoomByID(ctx, room.ID)
	if got.State != db.RoomCreating || got.Attempts != 1 || got.CreateStartedAt.IsZero() || got.RoomID != "" {
		t.Fatalf("after the timeout: %+v", got)
	}
	// Too early to tell: deferred until the creation settled, not counted as a failure.
	w.roomJob(ctx, ms, room.ID)
	got, _ = store.RoomByID(ctx, room.ID)
	if got.Attempts != 1 || time.Until(got.NextAttemptAt) < 50*time.Minute {
		t.Fatalf("in doubt: attempts %d, next attempt in %s", got.Attempts, time.Until(got.NextAttemptAt))
	}
	// Settled: the room is found and adopted, with its alias.
	w.opts.CreateSettle = time.Nanosecond
	w.opts.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	w.roomJob(ctx, ms, room.ID)
	got, _ = store.RoomByID(ctx, room.ID)
	if got.State != db.RoomActive || got.RoomID != "!orphan:hs.test" || got.RoomAlias != id.RoomAlias("#waldur-"+room.ProjectUUID+":hs.test") || !got.CreateStartedAt.IsZero() {
		t.Fatalf("after settling: %+v", got)
	}
	if len(hs.creates) != 1 || len(hs.aliased) != 1 {
		t.Errorf("%d createRoom calls, %d alias PUTs; want 1 and 1", len(hs.creates), len(hs.aliased))
	}
}
