package diagnostics_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/diagnostics"
)

// exportedRoom puts a project with a room that exists on the homeserver.
func exportedRoom(t *testing.T, store *db.Store, name string) *db.Room {
	t.Helper()
	ctx := context.Background()
	p, _, err := store.PutProject(ctx, db.DirectoryProject{Name: name}, false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.CreateRoom(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetRoomHomeserverID(ctx, r.ID, id.RoomID("!"+name+":example.org"), "", ""); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestHistoryExportsCheck: absent while exports are off and none exist; listed when on
// or when any exist; failing with a failed export in the last 24 hours.
func TestHistoryExportsCheck(t *testing.T) {
	srv := httptest.NewServer(&fakeHS{})
	defer srv.Close()
	ctx := context.Background()

	e := newEnv(t, setUp(srv.URL))
	if c := e.run(t).Check(diagnostics.CheckHistoryExports); c != nil {
		t.Fatalf("history_exports listed with exports off and none made: %+v", c)
	}
	e.opts.ExportsEnabled = true
	assertCheck(t, e.run(t), diagnostics.CheckHistoryExports, expect{true, "0 completed, 0 failed in the last 24 h; 0 waiting, 0 running", ""})

	// A manual export of a server with daily exports off still lists the check.
	e.opts.ExportsEnabled = false
	room := exportedRoom(t, e.store, "apollo")
	done, _, err := e.store.CreateExport(ctx, room.ID, db.ExportManual)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.StartExport(ctx, done.UUID); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CompleteExport(ctx, done.UUID, db.ExportOutcome{MessageCount: 3, ExportFile: done.UUID + ".json.enc"}); err != nil {
		t.Fatal(err)
	}
	assertCheck(t, e.run(t), diagnostics.CheckHistoryExports,
		expect{true, "1 completed, 0 failed in the last 24 h; 0 waiting, 0 running; the last completed just now (daily exports are off", ""})

	failed, _, err := e.store.CreateExport(ctx, exportedRoom(t, e.store, "gemini").ID, db.ExportPeriodic)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.FailExport(ctx, failed.UUID, "the homeserver did not give the room's history: M_FORBIDDEN"); err != nil {
		t.Fatal(err)
	}
	rep := e.run(t)
	assertCheck(t, rep, diagnostics.CheckHistoryExports, expect{false, "1 completed, 1 failed in the last 24 h; 0 waiting, 0 running", "Exports page"})
	assertCheck(t, rep, diagnostics.CheckHistoryExports, expect{false, "Last error: the homeserver did not give the room's history: M_FORBIDDEN", ""})
	if rep.OK {
		t.Error("report ok with a failed export")
	}
}
