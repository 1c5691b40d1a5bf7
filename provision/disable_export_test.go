package provision_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/export"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testserver"
	"matrixas/matrix"
	"matrixas/web"
)

// gatedRoomIO is the bot's reading of rooms, through which the server's own export job
// reads a room's history, with a gate per room: an export of a gated room waits in its
// first read until the test releases the gate (or fails, with the error the test gives).
// A room without a gate reads straight through.
type gatedRoomIO struct {
	mu    sync.Mutex
	inner matrix.RoomIO // the real one, set once the server runs
	gates map[id.RoomID]chan error
}

func (g *gatedRoomIO) Send(ctx context.Context, roomID id.RoomID, txnID string, content *event.MessageEventContent) (id.EventID, error) {
	return g.real().Send(ctx, roomID, txnID, content)
}

func (g *gatedRoomIO) Download(ctx context.Context, uri id.ContentURI, maxBytes int64) (io.ReadCloser, error) {
	return g.real().Download(ctx, uri, maxBytes)
}

func (g *gatedRoomIO) History(ctx context.Context, roomID id.RoomID, from string, limit int) (*matrix.HistoryPage, error) {
	g.mu.Lock()
	gate := g.gates[roomID]
	g.mu.Unlock()
	if gate != nil {
		select {
		case err, open := <-gate:
			if open && err != nil {
				return nil, err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.real().History(ctx, roomID, from, limit)
}

func (g *gatedRoomIO) real() matrix.RoomIO {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inner
}

// gate holds the exports of roomID until release (close) or a failure (an error sent).
func (g *gatedRoomIO) gate(roomID string) chan error {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := make(chan error, 1)
	g.gates[id.RoomID(roomID)] = ch
	return ch
}

// document reads an export's decrypted JSON document from the server's export folder.
func document(t *testing.T, a *appservice, key *export.MasterKey, e *db.HistoryExport) string {
	t.Helper()
	f, err := export.Open(export.DefaultDir(a.ts.Config.DatabasePath), export.FileName(e.UUID, export.KindJSON), key, e.UUID, export.KindJSON)
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
	key, err := export.ParseMasterKey(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	rio := &gatedRoomIO{gates: map[id.RoomID]chan error{}}
	// History export on, as an operator turns it on (which makes the disable path export
	// first); the daily exports are due 12 hours from now, so none is queued meanwhile.
	env := map[string]string{"MATRIX_HISTORY_EXPORT_ENABLED": "true",
		"MATRIX_HISTORY_EXPORT_HOUR": strconv.Itoa((time.Now().UTC().Hour() + 12) % 24)}
	maps.Copy(env, fastEnv)
	a := newAppserviceWith(t, testserver.Options{Env: env, Configure: func(c *web.Config) {
		c.Provision.ExportTimeout = timeout
		c.Export.Key = key
		c.Export.RoomIO = rio
	}})
	rio.mu.Lock()
	rio.inner = matrix.NewBotRoomIO(a.ts.Web.Settings().Matrix, matrix.HTTPClient(3*time.Second, 30*time.Second))
	rio.mu.Unlock()
	u := a.createUser(t, "hist1")
	bc := a.bot(t, a.hs)
	active := func(name string) apiRoom {
		t.Helper()
		r := a.newProjectRoom(t, name, u)
		waitFor(t, name+" active", 60*time.Second, a.inState(t, r.UUID, "active"))
		return a.room(t, r.UUID)
	}
	// waitingForExport waits until the room's on_deletion export runs (held at its gate).
	waitingForExport := func(r apiRoom) *db.HistoryExport {
		t.Helper()
		var e *db.HistoryExport
		waitFor(t, r.UUID+": an on_deletion export running", 30*time.Second, func() (bool, string) {
			es := roomExports(t, a, r.UUID)
			if len(es) == 1 {
				e = es[0]
			}
			return e != nil && e.Type == db.ExportOnDeletion && e.State == db.ExportExporting, fmt.Sprintf("%+v", es)
		})
		return e
	}

	t.Run("archived once the export completed", func(t *testing.T) {
		r := active("Exported")
		gate := rio.gate(r.RoomID)
		a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/disable/", nil, nil, http.StatusAccepted)
		e := waitingForExport(r)
		// Everyone is out already; the room waits for its record.
		if got := joined(t, bc, r.RoomID); len(got) != 1 || got[0] != a.ms.BotUserID().String() {
			t.Errorf("joined while waiting for the export: %v", got)
		}
		time.Sleep(1500 * time.Millisecond) // the worker looks again every second
		if st := a.room(t, r.UUID).State; st != "disabling" {
			t.Fatalf("state while the export waits: %s", st)
		}
		close(gate)
		waitFor(t, "archived", 30*time.Second, a.inState(t, r.UUID, "archived"))
		if e, _ = a.ts.Store.ExportByUUID(ctx, e.UUID); e.State != db.ExportCompleted {
			t.Fatalf("the export of an archived room: %+v", e)
		}
		doc := document(t, a, key, e)
		if !strings.Contains(doc, `"Chat room was deactivated"`) || !strings.Contains(doc, r.RoomID) {
			t.Errorf("the export lacks the room's notice: %.400s", doc)
		}
	})

	t.Run("error when the export fails", func(t *testing.T) {
		r := active("Export fails")
		gate := rio.gate(r.RoomID)
		a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/disable/", nil, nil, http.StatusAccepted)
		e := waitingForExport(r)
		gate <- errors.New("disk full")
		waitFor(t, "error", 30*time.Second, a.inState(t, r.UUID, "error"))
		got := a.room(t, r.UUID)
		if !strings.HasPrefix(got.ErrorMessage, "history export failed: ") || !strings.Contains(got.ErrorMessage, "disk full") || got.RoomID != r.RoomID {
			t.Errorf("room after its export failed: %+v", got)
		}
		if e, _ = a.ts.Store.ExportByUUID(ctx, e.UUID); e.State != db.ExportFailed {
			t.Errorf("the failed export: %+v", e)
		}
		close(gate) // the second export goes through
		// Disabled again: a new export, no second notice; this one completes.
		a.call(t, http.MethodPost, "/api/matrix-rooms/"+r.UUID+"/disable/", nil, nil, http.StatusAccepted)
		waitFor(t, "archived", 30*time.Second, a.inState(t, r.UUID, "archived"))
		if es := roomExports(t, a, r.UUID); len(es) != 2 || es[0].State != db.ExportCompleted || es[0].Type != db.ExportOnDeletion {
			t.Errorf("the room's exports after the second disable: %+v", es)
		}
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
		rio.gate(r.RoomID) // never released: the export runs until the server stops
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
