package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/matrix"
)

// plRestricted is the power level that invite, kick, ban, redact and state events need
// in a managed room: the bot's, so that only the bot, following the project, changes it.
const plRestricted = db.BotPowerLevel

// Kick reasons shown to the users removed.
const (
	ReasonRoleRemoved  = "Role removed"
	ReasonRoomDisabled = "Chat room was deactivated"
)

// errRoomLost means the bot is not in the room and cannot get back in (a room archived
// before archived rooms were kept, a room that no longer exists): the room must be
// created anew.
var errRoomLost = errors.New("the bot is no longer in the room and cannot rejoin it")

// errWaiting defers a room's work without counting a failure: the disable path waits for
// its notice to be sent, or for its history export.
type errWaiting struct {
	until time.Time
	why   string
}

func (e *errWaiting) Error() string { return e.why }

// errDisableFailed ends a disable that cannot go on by itself: the room goes to state
// error at once, with this message, until staff disable (or retry) it again.
type errDisableFailed struct{ msg string }

func (e *errDisableFailed) Error() string { return e.msg }

// errInDoubt defers a room's creation until a createRoom whose answer never came has had
// time to finish on the homeserver; it is not a failure.
type errInDoubt struct{ until time.Time }

func (e *errInDoubt) Error() string {
	return "an interrupted room creation may still be running on the homeserver until " + e.until.Format(time.RFC3339)
}

// stepError names the step that failed, for the room's error message.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func step(name string, err error) error {
	if err == nil {
		return nil
	}
	return &stepError{step: name, err: err}
}

// Message is what staff see for a failure: the step, then the homeserver's errcode and
// error when it answered, else the transport's reason. It never carries a token.
func Message(err error) string {
	prefix := ""
	var se *stepError
	if errors.As(err, &se) {
		prefix = se.step + ": "
		err = se.err
	}
	var he mautrix.HTTPError
	if errors.As(err, &he) && he.RespError != nil && he.RespError.ErrCode != "" {
		msg := he.RespError.ErrCode
		if he.RespError.Err != "" {
			msg += ": " + he.RespError.Err
		}
		return prefix + msg
	}
	return prefix + matrix.Reason(err)
}

// describe is Message with every secret of the settings masked: a homeserver may echo
// the token it refused ("Unknown token ..."), and the text is stored, shown and logged.
func describe(ms *db.MatrixSettings, err error) string {
	return matrix.Redact(Message(err), matrix.Secrets(ms))
}

// unusable reports whether a homeserver answer means the room (or alias target) cannot be
// used by the bot: it answered with a Matrix error in the 4xx range (forbidden, not found).
func unusable(err error) bool {
	var he mautrix.HTTPError
	return errors.As(err, &he) && he.RespError != nil && he.Response != nil &&
		he.Response.StatusCode >= 400 && he.Response.StatusCode < 500
}

// roomJob does the room's due work: create, sync members, or disable.
func (w *Worker) roomJob(ctx context.Context, ms *db.MatrixSettings, roomPK int64) {
	room, err := w.store.ClaimRoom(ctx, roomPK)
	if errors.Is(err, db.ErrRoomNotQueued) || errors.Is(err, db.ErrNotFound) {
		return // nothing to do any more, or deleted meanwhile
	}
	if err != nil {
		w.logErr(ctx, "claim room", err)
		return
	}
	bot, err := matrix.Client(ms, w.opts.HTTPClient, "")
	if err != nil {
		w.logErr(ctx, "homeserver client", err)
		return
	}
	log := w.log.With("room", room.UUID, "project", room.ProjectUUID)
	kind := roomKind(room.State)
	waiting := false // a disable looking whether what it waits for is done: not a job outcome
	defer func() {
		if !waiting {
			w.observe(ctx, kind, err)
		}
	}()
	switch room.State {
	case db.RoomCreating:
		if room.ProjectDeleting && room.RoomID == "" && room.CreateStartedAt.IsZero() {
			// Its project was deleted before the room reached the homeserver: nothing
			// to create, nothing to close.
			var deleted bool
			if deleted, err = w.store.DeleteUncreatedRoom(ctx, room.ID); err == nil && deleted {
				log.Info("project deleted before its room was created; both are gone")
				return
			}
			if err != nil {
				break
			}
		}
		var made *created
		made, err = w.createRoom(ctx, ms, bot, room)
		if err == nil {
			_, err = w.syncRoom(ctx, ms, bot, room, made)
		}
		if err == nil {
			if err = w.store.FinishRoomSync(context.WithoutCancel(ctx), room.ID, room.ProjectName); err == nil {
				log.Info("room active", "room_id", room.RoomID, "alias", room.RoomAlias)
			}
		}
	case db.RoomActive:
		var changed bool
		changed, err = w.syncRoom(ctx, ms, bot, room, nil)
		if errors.Is(err, errRoomLost) {
			notice := "" // a room that never reached the homeserver is simply made now
			if room.RoomID != "" {
				notice = noticeRecreated + room.RoomID.String() + ") could not be used any more; a new one was created."
			}
			err = w.store.RecreateRoom(ctx, room.ID, notice)
			if err == nil {
				log.Warn("room lost on the homeserver; creating a new one", "room_id", room.RoomID)
				return
			}
		} else if err == nil {
			err = w.store.FinishRoomSync(context.WithoutCancel(ctx), room.ID, room.ProjectName)
			if err == nil && changed {
				// Look again shortly: a homeserver can lose a membership change made while
				// other events of the room were being sent (Dendrite, loaded, resolved a
				// member's rejoin after a reactivation back to the kick before it). A
				// look that finds everyone in place changes nothing and stops there.
				err = w.store.RecheckRoom(context.WithoutCancel(ctx), room.ID, time.Now().Add(w.opts.Recheck))
			}
		}
	case db.RoomDisabling:
		err = w.disableRoom(ctx, bot, room)
		if err == nil {
			var projectDeleted bool
			if projectDeleted, err = w.store.FinishRoomDisable(context.WithoutCancel(ctx), room.ID); err == nil {
				log.Info("room archived", "room_id", room.RoomID, "project_deleted", projectDeleted)
			}
		}
	}
	if err == nil {
		return
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // shutting down: the row still says what to do
	}
	var doubt *errInDoubt
	if errors.As(err, &doubt) {
		if err = w.store.DeferRoom(context.WithoutCancel(ctx), room.ID, doubt.until); err != nil {
			w.logErr(ctx, "defer room", err)
		} else {
			log.Info("waiting for an interrupted room creation to settle", "until", doubt.until)
		}
		return
	}
	var wait *errWaiting
	if errors.As(err, &wait) {
		waiting = true
		if derr := w.store.DeferRoom(context.WithoutCancel(ctx), room.ID, wait.until); derr != nil {
			w.logErr(ctx, "defer room", derr)
		} else {
			log.Debug("disable waiting", "why", wait.why)
		}
		return
	}
	var stop *errDisableFailed
	if errors.As(err, &stop) {
		if ferr := w.store.FailRoomDisable(context.WithoutCancel(ctx), room.ID, stop.msg); ferr != nil {
			w.logErr(ctx, "record room failure", ferr)
		} else {
			log.Error("room disable failed; the room is in state error until disabled again", "error", stop.msg)
		}
		return
	}
	msg := describe(ms, err)
	gaveUp, ferr := w.store.FailRoom(context.WithoutCancel(ctx), room.ID, msg, w.opts.MaxAttempts, w.backoff)
	switch {
	case ferr != nil:
		w.logErr(ctx, "record room failure", ferr)
	case gaveUp:
		log.Error("room failed; giving up until retried", "state", room.State, "attempts", room.Attempts+1, "error", msg)
	default:
		log.Warn("room failed; will retry", "state", room.State, "attempts", room.Attempts+1, "error", msg)
	}
}

// disableRoom is the disable path, resumable step by step (the room row says how far it
// got): wait until the notice announcing it (queued when the room entered disabling) is
// sent or failed; remove every member, joined or invited, with ReasonRoomDisabled; then
// either delete the room's history exports (delete_history) or, with
// ExportBeforeArchive, make an on_deletion export and wait for it (ExportTimeout at
// most; a failed or late export is errDisableFailed, the room never archived without its
// record). A nil return means: archive it. The bot stays in the room, and the room keeps
// its alias, so that a reactivation brings back the same room.
func (w *Worker) disableRoom(ctx context.Context, bot *mautrix.Client, room *db.Room) error {
	if room.RoomID != "" && room.DisableNotice != "" {
		m, err := w.store.OutboxByUUID(ctx, room.DisableNotice)
		switch {
		case errors.Is(err, db.ErrNotFound): // pruned long ago: sent or failed
		case err != nil:
			return err
		case m.State == db.OutboxPending:
			return &errWaiting{until: time.Now().Add(w.opts.DisableWait), why: "waiting for the notice to be sent"}
		}
	}
	if room.RoomID != "" && room.DisableExport == "" { // once the export exists, the kicks are done
		if err := w.removeEveryone(ctx, bot, room.RoomID); err != nil {
			return err
		}
	}
	if room.DeleteHistory {
		return w.deleteHistory(ctx, room)
	}
	if w.opts.ExportBeforeArchive && room.RoomID != "" {
		return w.awaitExport(ctx, room)
	}
	return nil
}

// removeEveryone kicks everyone joined or invited but the bot. A room the bot is not in
// (one archived before archived rooms were kept, or gone) has nobody it could remove.
func (w *Worker) removeEveryone(ctx context.Context, bot *mautrix.Client, roomID id.RoomID) error {
	membership, _, err := roomMembership(ctx, bot, roomID)
	if unusable(err) || (err == nil && membership[bot.UserID].Membership != event.MembershipJoin) {
		return nil
	}
	if err != nil {
		return step("read members", err)
	}
	var members []id.UserID
	for uid, m := range membership {
		if uid != bot.UserID && (m.Membership == event.MembershipJoin || m.Membership == event.MembershipInvite) {
			members = append(members, uid)
		}
	}
	slices.Sort(members)
	for _, uid := range members {
		if _, err := bot.KickUser(ctx, roomID, &mautrix.ReqKickUser{UserID: uid, Reason: ReasonRoomDisabled}); err != nil {
			return step("kick "+uid.String(), err)
		}
		w.log.Debug("removed from a disabled room", "room_id", roomID, "user", uid)
	}
	return nil
}

// awaitExport makes the room's on_deletion export (once) and reports whether it is done:
// nil when completed, errWaiting while it is pending or running, errDisableFailed when
// it failed or ran out of time (it is then failed, so a late run is not recorded).
func (w *Worker) awaitExport(ctx context.Context, room *db.Room) error {
	if room.DisableExport == "" {
		e, _, err := w.store.CreateExport(ctx, room.ID, db.ExportOnDeletion)
		if err != nil {
			return step("queue the history export", err)
		}
		if err := w.store.SetDisableExport(ctx, room.ID, e.UUID); err != nil {
			return err
		}
		room.DisableExport, room.DisableExportAt = e.UUID, time.Now()
		if w.opts.ExportQueued != nil {
			w.opts.ExportQueued()
		}
	}
	e, err := w.store.ExportByUUID(ctx, room.DisableExport)
	if errors.Is(err, db.ErrNotFound) {
		return &errDisableFailed{msg: "history export " + room.DisableExport + " was deleted before it finished; disable the room again to export it anew"}
	}
	if err != nil {
		return err
	}
	switch e.State {
	case db.ExportCompleted:
		return nil
	case db.ExportFailed:
		return &errDisableFailed{msg: "history export failed: " + e.ErrorMessage}
	}
	if deadline := room.DisableExportAt.Add(w.opts.ExportTimeout); time.Now().After(deadline) {
		msg := fmt.Sprintf("history export did not finish within %s", w.opts.ExportTimeout)
		if err := w.store.FailExport(context.WithoutCancel(ctx), e.UUID, "the room's disable stopped waiting for it: "+msg); err != nil &&
			!errors.Is(err, db.ErrConflict) {
			return err
		}
		return &errDisableFailed{msg: msg}
	}
	return &errWaiting{until: time.Now().Add(w.opts.DisableWait), why: "waiting for the history export"}
}

// deleteHistory deletes the room's history exports, files first (disable with
// delete_history). One still waiting is failed first, so the export job cannot start it
// meanwhile; one running is waited for.
func (w *Worker) deleteHistory(ctx context.Context, room *db.Room) error {
	for {
		exports, _, err := w.store.ListExports(ctx, db.ExportFilter{RoomUUID: room.UUID, Page: db.Page{Size: db.MaxPageSize}})
		if err != nil {
			return err
		}
		if len(exports) == 0 {
			return nil
		}
		for _, e := range exports {
			switch e.State {
			case db.ExportExporting:
				return &errWaiting{until: time.Now().Add(w.opts.DisableWait), why: "waiting for a running history export before deleting it"}
			case db.ExportPending:
				if err := w.store.FailExport(ctx, e.UUID, "the room's history is being deleted"); err != nil && !errors.Is(err, db.ErrConflict) {
					return err
				}
				if cur, err := w.store.ExportByUUID(ctx, e.UUID); err != nil || cur.State == db.ExportExporting {
					if err != nil {
						return err
					}
					continue // started meanwhile: the next round waits for it
				}
			}
			if w.opts.RemoveExportFiles != nil {
				if err := w.opts.RemoveExportFiles(e.UUID); err != nil {
					return step("delete history export files", err)
				}
			}
			if err := w.store.DeleteExport(ctx, e.UUID); err != nil && !errors.Is(err, db.ErrNotFound) {
				return err
			}
		}
	}
}
