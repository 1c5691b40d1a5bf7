package db

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
)

// exportRoom creates a project's room with a Matrix room id.
func exportRoom(t *testing.T, s *Store, name string) *Room {
	t.Helper()
	ctx := context.Background()
	r, err := s.CreateRoom(ctx, putProject(t, s, name).ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoomHomeserverID(ctx, r.ID, id.RoomID("!"+name+":example.org"), "", ""); err != nil {
		t.Fatal(err)
	}
	return r
}

func mustCreateExport(t *testing.T, s *Store, roomPK int64, typ ExportType) *HistoryExport {
	t.Helper()
	e, created, err := s.CreateExport(context.Background(), roomPK, typ)
	if err != nil || !created {
		t.Fatalf("create %s export of room %d: created=%v, %v", typ, roomPK, created, err)
	}
	return e
}

// age moves an export's timestamps back by d, as if it had been made that long ago.
func age(t *testing.T, s *Store, uuid string, d time.Duration) {
	t.Helper()
	sec := int64(d / time.Second)
	if _, err := s.w.Exec(`UPDATE history_exports SET created_at = created_at - ?, started_at = started_at - ?,
		completed_at = completed_at - ? WHERE uuid = ?`, sec, sec, sec, uuid); err != nil {
		t.Fatal(err)
	}
}

func complete(t *testing.T, s *Store, uuid string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.StartExport(ctx, uuid); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteExport(ctx, uuid, ExportOutcome{MessageCount: 1, ExportFile: uuid + ".json.enc", ExportSize: 10}); err != nil {
		t.Fatal(err)
	}
}

func TestExportLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	room := exportRoom(t, s, "life")

	e := mustCreateExport(t, s, room.ID, ExportManual)
	if e.State != ExportPending || e.Type != ExportManual || e.RoomUUID != room.UUID || e.RoomID != id.RoomID("!life:example.org") ||
		e.RoomName != "life" || e.CreatedAt.IsZero() || !e.StartedAt.IsZero() || !e.CompletedAt.IsZero() {
		t.Fatalf("new export %+v", e)
	}
	// Asked again while it waits: the same one, not a second.
	again, created, err := s.CreateExport(ctx, room.ID, ExportPeriodic)
	if err != nil || created || again.UUID != e.UUID {
		t.Fatalf("second request while pending: %s created=%v %v, want %s", again.UUID, created, err, e.UUID)
	}
	if _, _, err := s.CreateExport(ctx, room.ID+1000, ExportManual); !errors.Is(err, ErrNotFound) {
		t.Errorf("export of a missing room: %v, want ErrNotFound", err)
	}
	if _, _, err := s.CreateExport(ctx, room.ID, "weekly"); err == nil {
		t.Error("invalid type accepted")
	}

	// The room got a new Matrix room (reprovision) before the export ran: the run
	// exports the room as it is now.
	if err := s.SetRoomHomeserverID(ctx, room.ID, "!life2:example.org", "", ""); err != nil {
		t.Fatal(err)
	}
	c, err := s.ClaimExport(ctx, 0)
	if err != nil || c.UUID != e.UUID || c.State != ExportExporting || c.Attempts != 1 || c.StartedAt.IsZero() || c.RoomID != "!life2:example.org" {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	if err := s.FailExport(ctx, "nope", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("fail a missing export: %v", err)
	}
	// While it runs, a new request queues a second one (it will see newer messages).
	next := mustCreateExport(t, s, room.ID, ExportManual)
	if _, err := s.ClaimExport(ctx, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("claimed a second export of a room while one runs: %v", err)
	}
	if _, err := s.StartExport(ctx, next.UUID); !errors.Is(err, ErrConflict) {
		t.Errorf("started a second export of a room while one runs: %v", err)
	}
	out := ExportOutcome{MessageCount: 250, MediaCount: 2, ExportFile: e.UUID + ".json.enc", ExportSize: 12345,
		MediaFile: e.UUID + "-media.zip.enc", MediaSize: 678, KeyID: "0123456789abcdef"}
	if err := s.CompleteExport(ctx, e.UUID, out); err != nil {
		t.Fatal(err)
	}
	got, err := s.ExportByUUID(ctx, e.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != ExportCompleted || got.MessageCount != 250 || got.MediaCount != 2 || got.ExportFile != out.ExportFile ||
		got.ExportSize != 12345 || got.MediaFile != out.MediaFile || got.MediaSize != 678 || got.KeyID != out.KeyID ||
		got.CompletedAt.IsZero() || !got.Finished() {
		t.Errorf("completed export %+v", got)
	}
	if err := s.CompleteExport(ctx, e.UUID, out); !errors.Is(err, ErrConflict) {
		t.Errorf("completed twice: %v, want ErrConflict", err)
	}
	if err := s.FailExport(ctx, e.UUID, "late"); !errors.Is(err, ErrConflict) {
		t.Errorf("failed a completed export: %v, want ErrConflict", err)
	}

	// The queued one runs now, and fails.
	c, err = s.StartExport(ctx, next.UUID)
	if err != nil || c.State != ExportExporting {
		t.Fatalf("start queued: %+v, %v", c, err)
	}
	if err := s.FailExport(ctx, next.UUID, "M_FORBIDDEN"); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.ExportByUUID(ctx, next.UUID); f.State != ExportFailed || f.ErrorMessage != "M_FORBIDDEN" || f.CompletedAt.IsZero() {
		t.Errorf("failed export %+v", f)
	}
	if _, err := s.StartExport(ctx, next.UUID); !errors.Is(err, ErrConflict) {
		t.Errorf("restarted a failed export: %v", err)
	}
	if _, err := s.ExportByUUID(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing export: %v", err)
	}
}

func TestClaimExportOrderAndBound(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	var rooms []*Room
	for i := range 4 {
		rooms = append(rooms, exportRoom(t, s, fmt.Sprintf("claim%d", i)))
	}
	periodic := mustCreateExport(t, s, rooms[0].ID, ExportPeriodic)
	manual := mustCreateExport(t, s, rooms[1].ID, ExportManual)
	deletion := mustCreateExport(t, s, rooms[2].ID, ExportOnDeletion)
	olderManual := mustCreateExport(t, s, rooms[3].ID, ExportManual)
	age(t, s, olderManual.UUID, time.Hour)

	var order []string
	for range 3 {
		c, err := s.ClaimExport(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, c.UUID)
	}
	want := []string{deletion.UUID, olderManual.UUID, manual.UUID}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("claim order %v, want on_deletion, then manual oldest first %v", order, want)
	}
	// Three run: the bound of three holds the periodic one back.
	if _, err := s.ClaimExport(ctx, 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("claimed past the bound: %v", err)
	}
	c, err := s.ClaimExport(ctx, 4)
	if err != nil || c.UUID != periodic.UUID {
		t.Errorf("claim with room under the bound: %v, %v", c, err)
	}
	if _, err := s.ClaimExport(ctx, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("claimed from an empty queue: %v", err)
	}
}

func TestManualExportsSince(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	room, other := exportRoom(t, s, "limit"), exportRoom(t, s, "other")
	for i := range 12 {
		e := mustCreateExport(t, s, room.ID, ExportManual)
		complete(t, s, e.UUID)
		if i < 2 {
			age(t, s, e.UUID, 25*time.Hour) // outside the window
		}
	}
	complete(t, s, mustCreateExport(t, s, room.ID, ExportPeriodic).UUID) // not manual
	complete(t, s, mustCreateExport(t, s, other.ID, ExportManual).UUID)  // another room
	n, err := s.ManualExportsSince(ctx, room.ID, time.Now().Add(-24*time.Hour))
	if err != nil || n != 10 {
		t.Errorf("manual exports in 24 h: %d, %v; want 10", n, err)
	}
}

func TestListExports(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	a, b := exportRoom(t, s, "lista"), exportRoom(t, s, "listb")
	var all []*HistoryExport
	for i := range 5 {
		e := mustCreateExport(t, s, a.ID, ExportTypes[i%3])
		if i < 4 {
			complete(t, s, e.UUID)
		}
		all = append(all, e)
	}
	failed := mustCreateExport(t, s, b.ID, ExportManual)
	if err := s.FailExport(ctx, failed.UUID, "boom"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		f     ExportFilter
		total int
		first string
		n     int
	}{
		{"everything, newest first", ExportFilter{}, 6, failed.UUID, 6},
		{"one room", ExportFilter{RoomUUID: a.UUID}, 5, all[4].UUID, 5},
		{"state", ExportFilter{State: ExportFailed}, 1, failed.UUID, 1},
		{"pending", ExportFilter{State: ExportPending}, 1, all[4].UUID, 1},
		{"type", ExportFilter{Type: ExportPeriodic}, 2, all[4].UUID, 2},
		{"room and type", ExportFilter{RoomUUID: a.UUID, Type: ExportManual}, 2, all[3].UUID, 2},
		{"page 2 of 2 by 4", ExportFilter{Page: Page{Number: 2, Size: 4}}, 6, all[1].UUID, 2},
		{"unknown room", ExportFilter{RoomUUID: "nope"}, 0, "", 0},
	} {
		got, total, err := s.ListExports(ctx, tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if total != tc.total || len(got) != tc.n || (tc.n > 0 && got[0].UUID != tc.first) {
			t.Errorf("%s: total %d, %d rows, first %v; want %d, %d, %s", tc.name, total, len(got), got, tc.total, tc.n, tc.first)
		}
	}
}

func TestFailedExportsSince(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	room := exportRoom(t, s, "failed")
	for i, ago := range []time.Duration{0, time.Hour, 23 * time.Hour, 25 * time.Hour} {
		e := mustCreateExport(t, s, room.ID, ExportTypes[i%3])
		if err := s.FailExport(ctx, e.UUID, "x"); err != nil {
			t.Fatal(err)
		}
		age(t, s, e.UUID, ago)
	}
	complete(t, s, mustCreateExport(t, s, room.ID, ExportManual).UUID)
	n, err := s.FailedExportsSince(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || n != 3 {
		t.Errorf("failed in 24 h: %d, %v; want 3", n, err)
	}
}

// TestExportRetention: past the cut-off, finished exports go except the newest
// completed one of each room, also of a room whose record was deleted; 0 days keeps all.
func TestExportRetention(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	busy, quiet, gone := exportRoom(t, s, "busy"), exportRoom(t, s, "quiet"), exportRoom(t, s, "gone")

	mk := func(room *Room, days int, finish string) *HistoryExport {
		e := mustCreateExport(t, s, room.ID, ExportPeriodic)
		switch finish {
		case "completed":
			complete(t, s, e.UUID)
		case "failed":
			if err := s.FailExport(ctx, e.UUID, "x"); err != nil {
				t.Fatal(err)
			}
		}
		age(t, s, e.UUID, time.Duration(days)*24*time.Hour)
		return e
	}
	busyOld := mk(busy, 200, "completed")
	busyOldFailed := mk(busy, 150, "failed")
	busyOlder := mk(busy, 100, "completed")
	busyNew := mk(busy, 10, "completed") // newest completed of busy: keeps it anyway
	quietOnly := mk(quiet, 300, "completed")
	quietFailedAfter := mk(quiet, 200, "failed") // failures do not count as "newest completed"
	goneA := mk(gone, 200, "completed")
	goneB := mk(gone, 120, "completed")
	pendingOld := mk(busy, 100, "") // never a candidate while it waits
	_ = busyNew

	if _, err := s.w.Exec(`DELETE FROM matrix_rooms WHERE id = ?`, gone.ID); err != nil {
		t.Fatal(err)
	}
	if e, err := s.ExportByUUID(ctx, goneB.UUID); err != nil || e.RoomPK != 0 || e.RoomUUID != "" || e.RoomID != "!gone:example.org" {
		t.Fatalf("export of a deleted room: %+v, %v (want kept, with its Matrix room id)", e, err)
	}

	got, err := s.ExportRetentionCandidates(ctx, 90, 100)
	if err != nil {
		t.Fatal(err)
	}
	var uuids []string
	for _, e := range got {
		uuids = append(uuids, e.UUID)
	}
	want := []string{busyOld.UUID, quietFailedAfter.UUID, goneA.UUID, busyOldFailed.UUID, busyOlder.UUID}
	// Oldest first; same-age rows by id.
	if fmt.Sprint(uuids) != fmt.Sprint(want) {
		t.Errorf("candidates %v,\nwant %v (not %s, %s, %s, %s)", uuids, want, busyNew.UUID, quietOnly.UUID, goneB.UUID, pendingOld.UUID)
	}
	if got, _ := s.ExportRetentionCandidates(ctx, 90, 2); len(got) != 2 {
		t.Errorf("limit 2: %d candidates", len(got))
	}
	if got, err := s.ExportRetentionCandidates(ctx, 0, 100); err != nil || len(got) != 0 {
		t.Errorf("0 days: %d candidates, %v; want none (keep everything)", len(got), err)
	}
	for _, u := range want {
		if err := s.DeleteExport(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteExport(ctx, want[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
	if got, _ := s.ExportRetentionCandidates(ctx, 90, 100); len(got) != 0 {
		t.Errorf("after deleting the candidates: %d more", len(got))
	}
}

// TestRecoverExports: what a crash left running is retried or failed, never completed.
func TestRecoverExports(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	var rooms []*Room
	for i := range 3 {
		rooms = append(rooms, exportRoom(t, s, fmt.Sprintf("rec%d", i)))
	}
	const maxAttempts = 3
	// Room 0: interrupted once: retried.
	first := mustCreateExport(t, s, rooms[0].ID, ExportManual)
	if _, err := s.StartExport(ctx, first.UUID); err != nil {
		t.Fatal(err)
	}
	// Room 1: interrupted on its last attempt: failed.
	worn := mustCreateExport(t, s, rooms[1].ID, ExportPeriodic)
	if _, err := s.w.Exec(`UPDATE history_exports SET attempts = ? WHERE uuid = ?`, maxAttempts-1, worn.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartExport(ctx, worn.UUID); err != nil {
		t.Fatal(err)
	}
	// Room 2: interrupted with a newer export waiting: failed, the newer one covers it.
	covered := mustCreateExport(t, s, rooms[2].ID, ExportManual)
	if _, err := s.StartExport(ctx, covered.UUID); err != nil {
		t.Fatal(err)
	}
	newer := mustCreateExport(t, s, rooms[2].ID, ExportManual)

	requeued, failed, err := s.RecoverExports(ctx, maxAttempts)
	if err != nil || requeued != 1 || failed != 2 {
		t.Fatalf("recover: %d requeued, %d failed, %v; want 1, 2", requeued, failed, err)
	}
	check := func(uuid string, state ExportState) {
		t.Helper()
		e, err := s.ExportByUUID(ctx, uuid)
		if err != nil || e.State != state {
			t.Errorf("%s: %+v, %v; want %s", uuid, e, err, state)
		}
		if state == ExportFailed && e.ErrorMessage != InterruptedExportReason {
			t.Errorf("%s: error %q", uuid, e.ErrorMessage)
		}
	}
	check(worn.UUID, ExportFailed)
	check(covered.UUID, ExportFailed)
	check(newer.UUID, ExportPending)
	check(first.UUID, ExportPending)
	// The requeued one runs again as a second attempt.
	c, err := s.ClaimExport(ctx, 0)
	if err != nil || c.UUID != first.UUID || c.Attempts != 2 {
		t.Errorf("claim after recovery: %+v, %v", c, err)
	}
	if n, _, _ := s.RecoverExports(ctx, maxAttempts); n != 1 {
		t.Errorf("second recovery requeued %d, want 1", n)
	}
}

// TestPendingExportAndProgress: the waiting export of a room is found; progress is
// recorded only while the export runs.
func TestPendingExportAndProgress(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	room := exportRoom(t, s, "progress")
	if _, err := s.PendingExport(ctx, room.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pending export of a room without one: %v, want ErrNotFound", err)
	}
	e := mustCreateExport(t, s, room.ID, ExportManual)
	if p, err := s.PendingExport(ctx, room.ID); err != nil || p.UUID != e.UUID {
		t.Fatalf("pending export: %+v, %v; want %s", p, err, e.UUID)
	}
	if err := s.ExportProgress(ctx, e.UUID, 5, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ExportByUUID(ctx, e.UUID); got.MessageCount != 0 {
		t.Errorf("progress recorded on a pending export: %d messages", got.MessageCount)
	}
	if _, err := s.StartExport(ctx, e.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PendingExport(ctx, room.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("a running export is not pending: %v", err)
	}
	if err := s.ExportProgress(ctx, e.UUID, 300, 2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ExportByUUID(ctx, e.UUID); got.MessageCount != 300 || got.MediaCount != 2 || got.State != ExportExporting {
		t.Errorf("running export after progress: %+v", got)
	}
	if err := s.FailExport(ctx, e.UUID, "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.ExportProgress(ctx, e.UUID, 400, 3); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ExportByUUID(ctx, e.UUID); got.MessageCount != 300 || got.State != ExportFailed {
		t.Errorf("progress after the export failed changed it: %+v", got)
	}
}

// TestOldestManualExportSince: the oldest manual export of the room in the window.
func TestOldestManualExportSince(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	room, other := exportRoom(t, s, "window"), exportRoom(t, s, "elsewhere")
	since := time.Now().Add(-24 * time.Hour)
	if at, err := s.OldestManualExportSince(ctx, room.ID, since); err != nil || !at.IsZero() {
		t.Fatalf("no exports: %v, %v", at, err)
	}
	old := mustCreateExport(t, s, room.ID, ExportManual)
	complete(t, s, old.UUID)
	age(t, s, old.UUID, 30*time.Hour) // out of the window
	inside := mustCreateExport(t, s, room.ID, ExportManual)
	complete(t, s, inside.UUID)
	age(t, s, inside.UUID, 3*time.Hour)
	complete(t, s, mustCreateExport(t, s, room.ID, ExportPeriodic).UUID) // not manual
	elsewhere := mustCreateExport(t, s, other.ID, ExportManual)          // another room
	age(t, s, elsewhere.UUID, 10*time.Hour)
	at, err := s.OldestManualExportSince(ctx, room.ID, since)
	if want := time.Now().Add(-3 * time.Hour); err != nil || at.Sub(want).Abs() > 5*time.Second {
		t.Errorf("oldest in the window: %v, %v; want about %v", at, err, want)
	}
}

// TestExportsCreatedBefore: the cut-off is a time; the newest completed export of a room
// is kept whatever the cut-off.
func TestExportsCreatedBefore(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	room := exportRoom(t, s, "cutoff")
	a := mustCreateExport(t, s, room.ID, ExportManual)
	complete(t, s, a.UUID)
	b := mustCreateExport(t, s, room.ID, ExportManual)
	complete(t, s, b.UUID)
	got, err := s.ExportsCreatedBefore(ctx, time.Now().Add(time.Hour), 10)
	if err != nil || len(got) != 1 || got[0].UUID != a.UUID {
		t.Fatalf("created before an hour from now: %v, %v; want only %s (the older one)", got, err, a.UUID)
	}
	if got, err := s.ExportsCreatedBefore(ctx, time.Now().Add(-time.Hour), 10); err != nil || len(got) != 0 {
		t.Errorf("created before an hour ago: %d, %v; want none", len(got), err)
	}
}

// TestQueuePeriodicExports: every active room on the homeserver gets one, except a room
// whose previous export still waits; rooms not active or not created get none.
func TestQueuePeriodicExports(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	activate := func(r *Room) {
		t.Helper()
		if err := s.FinishRoomSync(ctx, r.ID, r.RoomName); err != nil {
			t.Fatal(err)
		}
	}
	a, b, waiting := exportRoom(t, s, "a"), exportRoom(t, s, "b"), exportRoom(t, s, "waiting")
	for _, r := range []*Room{a, b, waiting} {
		activate(r)
	}
	creating := exportRoom(t, s, "creating") // has a room id, still creating
	notCreated, err := s.CreateRoom(ctx, putProject(t, s, "none").ID)
	if err != nil {
		t.Fatal(err)
	}
	prev := mustCreateExport(t, s, waiting.ID, ExportManual)

	if at, err := s.LastExportCreatedAt(ctx, ExportPeriodic); err != nil || !at.IsZero() {
		t.Fatalf("newest periodic export before any: %v, %v", at, err)
	}
	n, err := s.QueuePeriodicExports(ctx)
	if err != nil || n != 2 {
		t.Fatalf("queued %d, %v; want 2 (a and b)", n, err)
	}
	for _, r := range []*Room{a, b} {
		p, err := s.PendingExport(ctx, r.ID)
		if err != nil || p.Type != ExportPeriodic || p.RoomID != id.RoomID("!"+p.RoomName+":example.org") {
			t.Errorf("room %s: %+v, %v", r.RoomName, p, err)
		}
	}
	if p, _ := s.PendingExport(ctx, waiting.ID); p.UUID != prev.UUID {
		t.Errorf("the waiting room got a second export: %+v", p)
	}
	for _, r := range []*Room{creating, notCreated} {
		if _, err := s.PendingExport(ctx, r.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("room %d (not active or not created) got an export: %v", r.ID, err)
		}
	}
	if at, err := s.LastExportCreatedAt(ctx, ExportPeriodic); err != nil || time.Since(at) > time.Minute {
		t.Errorf("newest periodic export at %v, %v", at, err)
	}
	if n, err := s.QueuePeriodicExports(ctx); err != nil || n != 0 {
		t.Errorf("again while they wait: queued %d, %v; want 0", n, err)
	}
}

// TestExportStats counts what the diagnostic shows.
func TestExportStats(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t)
	since := time.Now().Add(-24 * time.Hour)
	st, err := s.ExportStats(ctx, since)
	if err != nil || st.Total != 0 || !st.LastDone.IsZero() {
		t.Fatalf("no exports: %+v, %v", st, err)
	}
	r1, r2, r3 := exportRoom(t, s, "s1"), exportRoom(t, s, "s2"), exportRoom(t, s, "s3")
	done := mustCreateExport(t, s, r1.ID, ExportManual)
	complete(t, s, done.UUID)
	oldFail := mustCreateExport(t, s, r1.ID, ExportManual)
	if err := s.FailExport(ctx, oldFail.UUID, "long ago"); err != nil {
		t.Fatal(err)
	}
	age(t, s, oldFail.UUID, 48*time.Hour)
	fail := mustCreateExport(t, s, r2.ID, ExportPeriodic)
	if err := s.FailExport(ctx, fail.UUID, "M_FORBIDDEN"); err != nil {
		t.Fatal(err)
	}
	mustCreateExport(t, s, r2.ID, ExportManual)
	running := mustCreateExport(t, s, r3.ID, ExportManual)
	if _, err := s.StartExport(ctx, running.UUID); err != nil {
		t.Fatal(err)
	}
	st, err = s.ExportStats(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 5 || st.Pending != 1 || st.Running != 1 || st.Failed != 1 || st.Completed != 1 || st.LastError != "M_FORBIDDEN" || st.LastDone.IsZero() {
		t.Errorf("stats %+v", st)
	}
}
