package exports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/export"
	"matrixas/matrix"
	"matrixas/settings"
)

// The job's behaviour against a real homeserver, through the API, is in
// dendrite_test.go; these tests hand it an in-memory room so that every rule (recovery,
// bounds, schedule, retention, failures) is cheap to reach.

const asToken = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2"

// memRoom is a matrix.RoomIO over n generated text messages per room. While gate is
// set, History blocks until it is closed; fail, when set, is returned instead.
type memRoom struct {
	n     int
	mu    sync.Mutex
	gate  chan struct{}
	fail  error
	calls atomic.Int64
}

var _ matrix.RoomIO = (*memRoom)(nil)

func (m *memRoom) Send(context.Context, id.RoomID, string, *event.MessageEventContent) (id.EventID, error) {
	return "", errors.New("memRoom: not sending")
}

func (m *memRoom) Download(context.Context, id.ContentURI, int64) (io.ReadCloser, error) {
	return nil, errors.New("memRoom: no media")
}

func (m *memRoom) hold() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gate = make(chan struct{})
}

func (m *memRoom) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gate != nil {
		close(m.gate)
		m.gate = nil
	}
}

func (m *memRoom) History(ctx context.Context, roomID id.RoomID, from string, limit int) (*matrix.HistoryPage, error) {
	m.calls.Add(1)
	m.mu.Lock()
	gate, fail := m.gate, m.fail
	m.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		return nil, fail
	}
	start := m.n
	if from != "" {
		start, _ = strconv.Atoi(from)
	}
	end := max(start-limit, 0)
	page := &matrix.HistoryPage{}
	for i := start - 1; i >= end; i-- {
		page.Events = append(page.Events, &event.Event{Type: event.EventMessage, ID: id.EventID(fmt.Sprintf("$%s-%d", roomID, i)),
			Sender: "@alice:example.org", Timestamp: 1_760_000_000_000 + int64(i),
			Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: fmt.Sprintf("message %d", i)}}})
	}
	if end > 0 {
		page.End = strconv.Itoa(end)
	}
	return page, nil
}

// fixture is a store with a set-up appservice and a job over it.
type fixture struct {
	store    *db.Store
	settings *db.Settings
	rio      *memRoom
	job      *Job
	dir      string
	key      *export.MasterKey
	finished atomic.Int64
	observed sync.Map     // "type/completed" -> count
	ahead    atomic.Int64 // the job's clock runs this far ahead of the real one
}

// advance moves the job's clock d ahead of the real one.
func (f *fixture) advance(d time.Duration) { f.ahead.Store(int64(d)) }

func (f *fixture) ExportFinished(typ db.ExportType, completed bool) {
	k := fmt.Sprintf("%s/%v", typ, completed)
	v, _ := f.observed.LoadOrStore(k, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (f *fixture) observedCount(typ db.ExportType, completed bool) int64 {
	v, ok := f.observed.Load(fmt.Sprintf("%s/%v", typ, completed))
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := db.Open(ctx, filepath.Join(dir, "exports.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	st := db.NewSettings(store, nil)
	if err := st.Set(ctx, map[string]string{
		settings.HomeserverURL.Key: "http://127.0.0.1:9", settings.HomeserverDomain.Key: "example.org",
		settings.ASToken.Key: asToken, settings.SenderLocalpart.Key: "waldur-bot", settings.Enabled.Key: "true",
	}); err != nil {
		t.Fatal(err)
	}
	key, _, err := export.LoadOrCreateKeyFile(filepath.Join(dir, export.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, settings: st, rio: &memRoom{n: 250}, dir: filepath.Join(dir, "exports"), key: key}
	opts.Export.Dir, opts.Export.Key = f.dir, key
	if opts.Export.Sleep == nil {
		opts.Export.Sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return time.Now().Add(time.Duration(f.ahead.Load())) }
	}
	opts.OnFinish = func() { f.finished.Add(1) }
	opts.Observer = f
	if opts.Interval == 0 {
		opts.Interval = 50 * time.Millisecond
	}
	if f.job, err = New(store, st, f.rio, opts); err != nil {
		t.Fatal(err)
	}
	return f
}

// start runs the job until the test ends (or stop is called).
func (f *fixture) start(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.job.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// room creates an active project room on the "homeserver".
func (f *fixture) room(t *testing.T, name string) *db.Room {
	t.Helper()
	ctx := context.Background()
	p, _, err := f.store.PutProject(ctx, db.DirectoryProject{Name: name}, false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.store.CreateRoom(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.SetRoomHomeserverID(ctx, r.ID, id.RoomID("!"+name+":example.org"), "", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.store.FinishRoomSync(ctx, r.ID, name); err != nil {
		t.Fatal(err)
	}
	if r, err = f.store.RoomByID(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitFor polls cond until it holds (10 s at most).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) state(t *testing.T, uuid string) *db.HistoryExport {
	t.Helper()
	e, err := f.store.ExportByUUID(context.Background(), uuid)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (f *fixture) waitState(t *testing.T, uuid string, want db.ExportState) *db.HistoryExport {
	t.Helper()
	var e *db.HistoryExport
	waitFor(t, "export "+uuid+" to be "+string(want), func() bool {
		e = f.state(t, uuid)
		return e.State == want
	})
	return e
}

// TestRunsARequestedExport: a request wakes the job, which writes the encrypted file,
// records the outcome, tells the observer and calls OnFinish; the file opens whole.
func TestRunsARequestedExport(t *testing.T) {
	f := newFixture(t, Options{})
	room := f.room(t, "apollo")
	f.start(t)
	e, created, err := f.job.Request(context.Background(), room)
	if err != nil || !created || e.State != db.ExportPending || e.Type != db.ExportManual {
		t.Fatalf("request: %+v created=%v %v", e, created, err)
	}
	done := f.waitState(t, e.UUID, db.ExportCompleted)
	if done.MessageCount != 250 || done.ExportFile != export.FileName(e.UUID, export.KindJSON) || done.ExportSize == 0 ||
		done.MediaFile != "" || done.KeyID != f.key.ID() || done.Attempts != 1 {
		t.Errorf("completed export %+v", done)
	}
	p, err := f.job.Open(done, export.KindJSON)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(p)
	p.Close()
	if err != nil || int64(len(b)) != done.ExportSize || !strings.Contains(string(b), `"body":"message 249"`) {
		t.Errorf("download: %d bytes (%v), record says %d", len(b), err, done.ExportSize)
	}
	if _, err := f.job.Open(done, export.KindMedia); !errors.Is(err, ErrNoFile) {
		t.Errorf("media of an export without media: %v, want ErrNoFile", err)
	}
	waitFor(t, "OnFinish", func() bool { return f.finished.Load() == 1 })
	if n := f.observedCount(db.ExportManual, true); n != 1 {
		t.Errorf("observer saw %d completed manual exports, want 1", n)
	}
}

// TestRequestRules: no Matrix room is refused; past ManualLimit manual exports in a
// day the next is refused, but a waiting one is still answered.
func TestRequestRules(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	room := f.room(t, "busy")
	p, _, _ := f.store.PutProject(ctx, db.DirectoryProject{Name: "bare"}, false)
	bare, err := f.store.CreateRoom(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.job.Request(ctx, bare); !errors.Is(err, ErrNoMatrixRoom) {
		t.Errorf("export of a room not on the homeserver: %v, want ErrNoMatrixRoom", err)
	}
	// The job is not running: requests pile up as pending; each is failed by hand so
	// that the next one is new.
	for i := range ManualLimit {
		e, created, err := f.job.Request(ctx, room)
		if err != nil || !created {
			t.Fatalf("request %d: created=%v %v", i+1, created, err)
		}
		again, created, err := f.job.Request(ctx, room)
		if err != nil || created || again.UUID != e.UUID {
			t.Fatalf("request %d again while it waits: %v created=%v %v; want the waiting one", i+1, again, created, err)
		}
		if i == ManualLimit-1 {
			break // the tenth stays waiting
		}
		if err := f.store.FailExport(ctx, e.UUID, "test"); err != nil {
			t.Fatal(err)
		}
	}
	waiting, err := f.store.PendingExport(ctx, room.ID)
	if err != nil {
		t.Fatal(err)
	}
	if e, created, err := f.job.Request(ctx, room); err != nil || created || e.UUID != waiting.UUID {
		t.Errorf("past the limit with one waiting: %v created=%v %v; want the waiting one", e, created, err)
	}
	if err := f.store.FailExport(ctx, waiting.UUID, "test"); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.job.Request(ctx, room)
	var le *LimitError
	if !errors.Is(err, ErrTooManyExports) || !errors.As(err, &le) {
		t.Fatalf("the 11th manual export in a day: %v, want ErrTooManyExports", err)
	}
	// All ten were asked for just now: the first leaves the window in a day.
	if le.RetryAfter < ManualWindow-time.Minute || le.RetryAfter > ManualWindow {
		t.Errorf("retry after %v, want about %v", le.RetryAfter, ManualWindow)
	}
	// A day later, the window has moved on.
	f.advance(ManualWindow + time.Minute)
	if _, created, err := f.job.Request(ctx, room); err != nil || !created {
		t.Errorf("a day later: created=%v %v", created, err)
	}
}

// TestFailureIsRecordedWithoutSecrets: a homeserver refusal fails the export with its
// errcode; a token the homeserver echoed is redacted.
func TestFailureIsRecordedWithoutSecrets(t *testing.T) {
	f := newFixture(t, Options{})
	room := f.room(t, "refused")
	f.rio.fail = fmt.Errorf("export: read history: %w", mautrix.HTTPError{
		Response:  &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden"},
		RespError: &mautrix.RespError{ErrCode: "M_FORBIDDEN", Err: "Unknown token " + asToken, StatusCode: 403},
	})
	f.start(t)
	e, _, err := f.job.Request(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	failed := f.waitState(t, e.UUID, db.ExportFailed)
	if failed.ErrorMessage != "the homeserver did not give the room's history: M_FORBIDDEN" || failed.ExportFile != "" || failed.CompletedAt.IsZero() {
		t.Errorf("failed export %+v", failed)
	}
	// A plain error carrying a secret is stored redacted.
	f.rio.mu.Lock()
	f.rio.fail = errors.New("disk trouble near " + asToken)
	f.rio.mu.Unlock()
	e, _, err = f.job.Request(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	failed = f.waitState(t, e.UUID, db.ExportFailed)
	if strings.Contains(failed.ErrorMessage, asToken) || !strings.Contains(failed.ErrorMessage, matrix.Redacted) {
		t.Errorf("error message %q: the token is not redacted", failed.ErrorMessage)
	}
	entries, _ := os.ReadDir(f.dir)
	if len(entries) != 0 {
		t.Errorf("files left by failed exports: %v", entries)
	}
	waitFor(t, "OnFinish after both", func() bool { return f.finished.Load() == 2 })
	if n := f.observedCount(db.ExportManual, false); n != 2 {
		t.Errorf("observer saw %d failed manual exports, want 2", n)
	}
}

// TestWaitsUntilSetUp: until the appservice is enabled, nothing is claimed.
func TestWaitsUntilSetUp(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	room := f.room(t, "early")
	if err := f.settings.Set(ctx, map[string]string{settings.Enabled.Key: "false"}); err != nil {
		t.Fatal(err)
	}
	e, _, err := f.job.Request(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	f.job.startDue(ctx, sem, &wg)
	wg.Wait()
	if got := f.state(t, e.UUID); got.State != db.ExportPending || f.rio.calls.Load() != 0 {
		t.Errorf("before setup: %s, %d history reads; want pending and none", got.State, f.rio.calls.Load())
	}
	if err := f.settings.Set(ctx, map[string]string{settings.Enabled.Key: "true"}); err != nil {
		t.Fatal(err)
	}
	f.job.startDue(ctx, sem, &wg)
	wg.Wait()
	if got := f.state(t, e.UUID); got.State != db.ExportCompleted {
		t.Errorf("after setup: %s, want completed", got.State)
	}
}

// TestConcurrencyBound: no more than Concurrency exports run at once, and a room never
// has two.
func TestConcurrencyBound(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{Concurrency: 2})
	f.rio.hold()
	var uuids []string
	for _, name := range []string{"one", "two", "three"} {
		e, _, err := f.job.Request(ctx, f.room(t, name))
		if err != nil {
			t.Fatal(err)
		}
		uuids = append(uuids, e.UUID)
	}
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer f.rio.release()
	f.job.startDue(ctx, sem, &wg)
	f.job.startDue(ctx, sem, &wg) // a second look while both slots are busy claims nothing
	running := 0
	for _, u := range uuids {
		if f.state(t, u).State == db.ExportExporting {
			running++
		}
	}
	if running != 2 {
		t.Errorf("%d running with concurrency 2", running)
	}
	if got := f.state(t, uuids[2]).State; got != db.ExportPending {
		t.Errorf("the third export is %s, want pending", got)
	}
}

// TestStopLeavesTheExportToRecovery: a stop mid-export leaves no file and the record
// running; the next start's recovery queues it again and it completes.
func TestStopLeavesTheExportToRecovery(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	room := f.room(t, "stopped")
	f.rio.hold()
	stop := f.start(t)
	e, _, err := f.job.Request(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	f.waitState(t, e.UUID, db.ExportExporting)
	stop()
	if got := f.state(t, e.UUID); got.State != db.ExportExporting {
		t.Fatalf("after the stop: %s, want still exporting (for recovery)", got.State)
	}
	if entries, _ := os.ReadDir(f.dir); len(entries) != 0 {
		t.Errorf("files left after the stop: %v", entries)
	}
	if f.finished.Load() != 0 {
		t.Error("OnFinish called for an export that did not finish")
	}
	f.rio.release()
	f.start(t)
	done := f.waitState(t, e.UUID, db.ExportCompleted)
	if done.Attempts != 2 || done.MessageCount != 250 {
		t.Errorf("after recovery: %+v", done)
	}
}

// TestRecover: half-written files go; an interrupted export is queued again, or failed
// once it was interrupted MaxAttempts times.
func TestRecover(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{MaxAttempts: 2})
	again, gone := f.room(t, "again"), f.room(t, "worn")
	retry, _, _ := f.store.CreateExport(ctx, again.ID, db.ExportOnDeletion)
	if _, err := f.store.StartExport(ctx, retry.UUID); err != nil {
		t.Fatal(err)
	}
	worn, _, _ := f.store.CreateExport(ctx, gone.ID, db.ExportManual)
	for range 2 {
		if _, err := f.store.StartExport(ctx, worn.UUID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.store.RecoverExports(ctx, 10); err != nil { // back to pending, one attempt more
			t.Fatal(err)
		}
	}
	if _, err := f.store.StartExport(ctx, worn.UUID); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(f.dir, 0o750); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(f.dir, "."+export.FileName(retry.UUID, export.KindJSON)+".partial-123")
	complete := filepath.Join(f.dir, export.FileName(db.NewUUID(), export.KindJSON))
	for _, p := range []string{partial, complete} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.job.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("half-written file kept: %v", err)
	}
	if _, err := os.Stat(complete); err != nil {
		t.Errorf("a complete file was deleted: %v", err)
	}
	if got := f.state(t, retry.UUID); got.State != db.ExportPending {
		t.Errorf("interrupted once: %s, want pending", got.State)
	}
	if got := f.state(t, worn.UUID); got.State != db.ExportFailed || got.ErrorMessage != db.InterruptedExportReason {
		t.Errorf("interrupted %d times: %s %q, want failed", got.Attempts, got.State, got.ErrorMessage)
	}
}

// TestDailyExports: the periodic exports are queued once per day, restarts included,
// and a room whose previous export still waits gets none.
func TestDailyExports(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	f := newFixture(t, Options{Periodic: true, Hour: now.Hour()})
	a, b := f.room(t, "a"), f.room(t, "b")
	waiting, _, err := f.job.Request(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.job.QueuePeriodic(ctx, now); err != nil || n != 1 {
		t.Fatalf("first run of the day: queued %d, %v; want 1 (room b's export still waits)", n, err)
	}
	pa, err := f.store.PendingExport(ctx, a.ID)
	if err != nil || pa.Type != db.ExportPeriodic {
		t.Fatalf("room a: %+v, %v", pa, err)
	}
	if pb, _ := f.store.PendingExport(ctx, b.ID); pb.UUID != waiting.UUID {
		t.Errorf("room b got a second export")
	}
	for _, u := range []string{pa.UUID, waiting.UUID} {
		if err := f.store.FailExport(ctx, u, "test"); err != nil {
			t.Fatal(err)
		}
	}
	// Later the same day (a restart): nothing more.
	if n, err := f.job.QueuePeriodic(ctx, now.Add(time.Minute)); err != nil || n != 0 {
		t.Errorf("again the same day: queued %d, %v", n, err)
	}
	// The next day's hour: both rooms.
	if n, err := f.job.QueuePeriodic(ctx, now.Add(24*time.Hour)); err != nil || n != 2 {
		t.Errorf("next day: queued %d, %v; want 2", n, err)
	}
}

// TestSlots: the daily hour, in UTC, around midnight and at the hour itself.
func TestSlots(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		now        string
		hour       int
		next, last string
	}{
		{"2026-05-01T01:59:59Z", 2, "2026-05-01T02:00:00Z", "2026-04-30T02:00:00Z"},
		{"2026-05-01T02:00:00Z", 2, "2026-05-02T02:00:00Z", "2026-05-01T02:00:00Z"},
		{"2026-05-01T23:30:00Z", 0, "2026-05-02T00:00:00Z", "2026-05-01T00:00:00Z"},
		{"2026-05-01T04:00:00+03:00", 2, "2026-05-01T02:00:00Z", "2026-04-30T02:00:00Z"}, // 01:00 UTC: the hour is UTC
	} {
		next, last := nextSlot(at(tc.now), tc.hour), lastSlot(at(tc.now), tc.hour)
		if !next.Equal(at(tc.next)) || !last.Equal(at(tc.last)) {
			t.Errorf("%s hour %d: next %s last %s; want %s and %s", tc.now, tc.hour, next, last, tc.next, tc.last)
		}
	}
}

// TestRetention: past the cut-off, exports go with their files; each room's newest
// completed export stays, files and all; 0 days keeps everything.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{RetentionDays: 90})
	room := f.room(t, "kept")
	stop := f.start(t)
	var done []*db.HistoryExport
	for range 3 {
		e, _, err := f.job.Request(ctx, room)
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, f.waitState(t, e.UUID, db.ExportCompleted))
	}
	failed, _, _ := f.store.CreateExport(ctx, room.ID, db.ExportManual)
	if err := f.store.FailExport(ctx, failed.UUID, "test"); err != nil {
		t.Fatal(err)
	}
	if n, err := f.job.ApplyRetention(ctx); err != nil || n != 0 {
		t.Fatalf("nothing is old yet: deleted %d, %v", n, err)
	}
	stop() // its own daily run would race this test's
	f.advance(100 * 24 * time.Hour)
	if n, err := f.job.ApplyRetention(ctx); err != nil || n != 3 {
		t.Fatalf("100 days later: deleted %d, %v; want 3 (two completed, one failed)", n, err)
	}
	newest := done[2]
	if _, err := f.store.ExportByUUID(ctx, newest.UUID); err != nil {
		t.Errorf("the newest completed export is gone: %v", err)
	}
	if p, err := f.job.Open(newest, export.KindJSON); err != nil {
		t.Errorf("its file: %v", err)
	} else {
		p.Close()
	}
	for _, e := range append(done[:2], failed) {
		if _, err := f.store.ExportByUUID(ctx, e.UUID); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("expired export %s kept: %v", e.UUID, err)
		}
		if _, err := os.Stat(filepath.Join(f.dir, export.FileName(e.UUID, export.KindJSON))); !os.IsNotExist(err) {
			t.Errorf("file of expired export %s kept: %v", e.UUID, err)
		}
	}
	keep := newFixture(t, Options{RetentionDays: 0, Now: func() time.Time { return time.Now().Add(1000 * 24 * time.Hour) }})
	if n, err := keep.job.ApplyRetention(ctx); err != nil || n != 0 {
		t.Errorf("0 days: deleted %d, %v", n, err)
	}
}

// TestRunQueuesTheDailyExportsAtStart: a start after today's hour makes up the day's
// exports, which then run; OnFinish hears each.
func TestRunQueuesTheDailyExportsAtStart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{Periodic: true, Hour: time.Now().UTC().Hour()})
	rooms := []*db.Room{f.room(t, "x"), f.room(t, "y")}
	f.start(t)
	waitFor(t, "both daily exports to complete", func() bool {
		list, _, err := f.store.ListExports(ctx, db.ExportFilter{Type: db.ExportPeriodic, State: db.ExportCompleted})
		return err == nil && len(list) == len(rooms)
	})
	waitFor(t, "OnFinish for both", func() bool { return f.finished.Load() == 2 })
}
