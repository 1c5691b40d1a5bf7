package provision_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"matrixas/db"
	"matrixas/export"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testserver"
	"matrixas/matrix"
	"matrixas/web"
)

// exportJob plays the export job (package export runs the exports, the job that claims
// them is wired elsewhere): it claims the next pending export and runs the real exporter
// on it, recording the outcome with the store's methods.
type exportJob struct {
	store *db.Store
	exp   *export.Exporter
	dir   string
	key   *export.MasterKey
}

func newExportJob(t *testing.T, a *appservice) *exportJob {
	t.Helper()
	dir := t.TempDir()
	mk, _, err := export.LoadOrCreateKeyFile(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	rio := matrix.NewBotRoomIO(a.ts.Web.Settings().Matrix, matrix.HTTPClient(3*time.Second, 30*time.Second))
	exp, err := export.New(rio, export.Config{Dir: dir, Key: mk})
	if err != nil {
		t.Fatal(err)
	}
	return &exportJob{store: a.ts.Store, exp: exp, dir: dir, key: mk}
}

// runOne runs the next pending export to completion and returns it.
func (j *exportJob) runOne(t *testing.T) *db.HistoryExport {
	t.Helper()
	ctx := context.Background()
	e, err := j.store.ClaimExport(ctx, 1)
	if err != nil {
		t.Fatalf("claim export: %v", err)
	}
	res, err := j.exp.Run(ctx, export.Job{UUID: e.UUID, RoomID: e.RoomID, RoomName: e.RoomName})
	if err != nil {
		t.Fatalf("export %s: %v", e.UUID, err)
	}
	if err := j.store.CompleteExport(ctx, e.UUID, db.ExportOutcome{MessageCount: res.MessageCount, ExportFile: res.ExportFile,
		ExportSize: res.ExportSize, KeyID: res.KeyID}); err != nil {
		t.Fatal(err)
	}
	return e
}

// document reads an export's decrypted JSON document.
func (j *exportJob) document(t *testing.T, e *db.HistoryExport) string {
	t.Helper()
	f, err := export.Open(j.dir, export.FileName(e.UUID, export.KindJSON), j.key, e.UUID, export.KindJSON)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// roomExports lists a room's exports, newest first.
func roomExports(t *testing.T, a *appservice, roomUUID string) []*db.HistoryExport {
	t.Helper()
	out, _, err := a.ts.Store.ListExports(context.Background(), db.ExportFilter{RoomUUID: roomUUID})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDisableExportsHistoryFirst: with exports on, the disable path removes everyone,
// then waits for an on_deletion export of the room's history and archives the room only
// once it completed; an export that fails, or does not finish in time, sends the room to
// error with the reason instead. With delete_history the room's exports are deleted,
// files first, and none is made.
func TestDisableExportsHistoryFirst(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	ctx := context.Background()
	const timeout = 5 * time.Second
	a := newAppserviceWith(t, testserver.Options{Env: fastEnv, Configure: func(c *web.Config) {
		c.Provision.ExportBeforeArchive = true
		c.Provision.ExportTimeout = timeout
	}})
	job := newExportJob(t, a)
	u := a.createUser(t, "hist1")
	bc := a.bot(t, a.hs)
	active := func(name string) apiRoom {
		t.Helper()
		r := a.newProjectRoom(t, name, u)
		waitFor(t, name+" active", 60*time.Second, a.inState(t, r.UUID, "active"))
		return a.room(t, r.UUID)
	}
	waitingForExport := func(r apiRoom) *db.HistoryExport {
		t.Helper()
		var e *db.HistoryExport
		waitFor(t, r.UUID+": an on_deletion export waiting", 30*time.Second, func() (bool, string) {
			es := roomExports(t, a, r.UUID)
			if len(es) == 1 {
				e = es[0]
			}
			return e != nil && e.Type == db.ExportOnDeletion && e.State == db.ExportPending, fmt.Sprintf("%+v", es)
		})
		return e
	}

	t.Run("archived once the export completed", func(t *testing.T) {
		r := active("Exported")
		a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/disable/", nil, nil, http.StatusAccepted)
		waitingForExport(r)
		// Everyone is out already; the room waits for its record.
		if got := joined(t, bc, r.RoomID); len(got) != 1 || got[0] != a.ms.BotUserID().String() {
			t.Errorf("joined while waiting for the export: %v", got)
		}
		time.Sleep(1500 * time.Millisecond) // the worker looks again every second
		if st := a.room(t, r.UUID).State; st != "disabling" {
			t.Fatalf("state while the export waits: %s", st)
		}
		e := job.runOne(t)
		waitFor(t, "archived", 30*time.Second, a.inState(t, r.UUID, "archived"))
		doc := job.document(t, e)
		if !strings.Contains(doc, `"Chat room was deactivated"`) || !strings.Contains(doc, r.RoomID) {
			t.Errorf("the export lacks the room's notice: %.400s", doc)
		}
	})

	t.Run("error when the export fails", func(t *testing.T) {
		r := active("Export fails")
		a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/disable/", nil, nil, http.StatusAccepted)
		e := waitingForExport(r)
		if err := a.ts.Store.FailExport(ctx, e.UUID, "disk full"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "error", 30*time.Second, a.inState(t, r.UUID, "error"))
		if got := a.room(t, r.UUID); got.ErrorMessage != "history export failed: disk full" || got.RoomID != r.RoomID {
			t.Errorf("room after its export failed: %+v", got)
		}
		// Disabled again: a new export, no second notice; this one completes.
		a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/disable/", nil, nil, http.StatusAccepted)
		waitFor(t, "a second export", 30*time.Second, func() (bool, string) {
			es := roomExports(t, a, r.UUID)
			return len(es) == 2 && es[0].State == db.ExportPending, fmt.Sprintf("%+v", es)
		})
		job.runOne(t)
		waitFor(t, "archived", 30*time.Second, a.inState(t, r.UUID, "archived"))
		dbRoom, _ := a.ts.Store.RoomByUUID(ctx, r.UUID)
		notices := 0
		ms, _ := a.ts.Store.RoomOutbox(ctx, dbRoom.ID, 20)
		for _, m := range ms {
			if m.Body == "Chat room was deactivated" {
				notices++
			}
		}
		if notices != 1 {
			t.Errorf("the deactivation notice was queued %d times", notices)
		}
	})

	t.Run("error when the export takes too long", func(t *testing.T) {
		r := active("Export late")
		a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/disable/", nil, nil, http.StatusAccepted)
		e := waitingForExport(r)
		waitFor(t, "error", timeout+30*time.Second, a.inState(t, r.UUID, "error"))
		if got := a.room(t, r.UUID); got.ErrorMessage != "history export did not finish within "+timeout.String() {
			t.Errorf("room after its export ran late: %+v", got)
		}
		if got, _ := a.ts.Store.ExportByUUID(ctx, e.UUID); got.State != db.ExportFailed {
			t.Errorf("the late export: %+v", got)
		}
	})

	t.Run("delete_history deletes the exports and makes none", func(t *testing.T) {
		r := active("Forget me")
		dbRoom, _ := a.ts.Store.RoomByUUID(ctx, r.UUID)
		old, _, err := a.ts.Store.CreateExport(ctx, dbRoom.ID, db.ExportManual)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.ts.Store.StartExport(ctx, old.UUID); err != nil {
			t.Fatal(err)
		}
		dir := export.DefaultDir(a.ts.Config.DatabasePath)
		file := filepath.Join(dir, export.FileName(old.UUID, export.KindJSON))
		os.MkdirAll(dir, 0o750)
		if err := os.WriteFile(file, []byte("sealed"), 0o600); err != nil {
			t.Fatal(err)
		}
		a.ts.Store.CompleteExport(ctx, old.UUID, db.ExportOutcome{ExportFile: filepath.Base(file), ExportSize: 6})
		a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/disable/", map[string]any{"delete_history": true}, nil, http.StatusAccepted)
		waitFor(t, "archived", 30*time.Second, a.inState(t, r.UUID, "archived"))
		if es := roomExports(t, a, r.UUID); len(es) != 0 {
			t.Errorf("exports after a disable that deletes history: %+v", es)
		}
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Errorf("the export's file is still there: %v", err)
		}
		if got := joined(t, bc, r.RoomID); len(got) != 1 {
			t.Errorf("joined after the disable: %v", got)
		}
	})
}
