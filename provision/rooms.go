package provision

import (
	"context"
	"errors"
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
	ReasonRoomDisabled = "The project's chat room was disabled"
)

// errRoomLost means the bot is not in the room and cannot get back in (an archived room
// being reactivated, a room that no longer exists): the room must be created anew.
var errRoomLost = errors.New("the bot is no longer in the room and cannot rejoin it")

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
	if errors.Is(err, db.ErrRoomNotQueued) {
		return
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
	defer func() { w.observe(ctx, kind, err) }()
	switch room.State {
	case db.RoomCreating:
		var made *created
		made, err = w.createRoom(ctx, ms, bot, room)
		if err == nil {
			err = w.syncRoom(ctx, ms, bot, room, made)
		}
		if err == nil {
			if err = w.store.FinishRoomSync(context.WithoutCancel(ctx), room.ID, room.ProjectName); err == nil {
				log.Info("room active", "room_id", room.RoomID, "alias", room.RoomAlias)
			}
		}
	case db.RoomActive:
		err = w.syncRoom(ctx, ms, bot, room, nil)
		if errors.Is(err, errRoomLost) {
			err = w.store.RecreateRoom(ctx, room.ID, noticeRecreated+room.RoomID.String()+") could not be used any more; a new one was created.")
			if err == nil {
				log.Warn("room lost on the homeserver; creating a new one", "room_id", room.RoomID)
				return
			}
		} else if err == nil {
			err = w.store.FinishRoomSync(context.WithoutCancel(ctx), room.ID, room.ProjectName)
		}
	case db.RoomDisabling:
		err = w.disableRoom(ctx, bot, room)
		if err == nil {
			if err = w.store.FinishRoomDisable(context.WithoutCancel(ctx), room.ID); err == nil {
				log.Info("room archived", "room_id", room.RoomID)
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

// disableRoom removes every member (joined or invited) with a reason and makes the bot
// leave. A room the bot already left, or that never got created, is simply done.
func (w *Worker) disableRoom(ctx context.Context, bot *mautrix.Client, room *db.Room) error {
	if room.RoomID == "" {
		return nil
	}
	roomID := room.RoomID
	membership, err := roomMembership(ctx, bot, roomID)
	if unusable(err) || (err == nil && membership[bot.UserID] != event.MembershipJoin) {
		return nil // the bot is not in the room any more: nothing left to do
	}
	if err != nil {
		return step("read members", err)
	}
	var members []id.UserID
	for uid, m := range membership {
		if uid != bot.UserID && (m == event.MembershipJoin || m == event.MembershipInvite) {
			members = append(members, uid)
		}
	}
	slices.Sort(members)
	for _, uid := range members {
		if _, err := bot.KickUser(ctx, roomID, &mautrix.ReqKickUser{UserID: uid, Reason: ReasonRoomDisabled}); err != nil {
			return step("kick "+uid.String(), err)
		}
	}
	// Free the alias while the bot may still remove it, so a reactivation can give it to
	// the new room.
	if room.RoomAlias != "" {
		if _, err := bot.DeleteAlias(ctx, room.RoomAlias); err != nil && !unusable(err) {
			return step("free alias", err)
		}
	}
	if _, err := bot.LeaveRoom(ctx, roomID, &mautrix.ReqLeave{Reason: ReasonRoomDisabled}); err != nil && !unusable(err) {
		return step("leave room", err)
	}
	return nil
}
