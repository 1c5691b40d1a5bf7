package provision

import (
	"context"
	"errors"

	"matrixas/db"
)

// Job kinds, as an Observer sees them.
const (
	KindRoomCreate  = "room_create"
	KindRoomSync    = "room_sync"
	KindRoomDisable = "room_disable"
	KindUser        = "user"
	// KindUserDeactivate signs a deactivated user out and locks their account.
	KindUserDeactivate = "user_deactivate"
)

// Kinds lists every job kind, so an Observer can set up its series in advance.
var Kinds = []string{KindRoomCreate, KindRoomSync, KindRoomDisable, KindUser, KindUserDeactivate}

// Observer is told the outcome of every provisioning job the worker runs (err nil =
// done); the server's metrics implement it. It must not block. A job interrupted by
// shutdown is not reported: the row still says what to do.
type Observer interface {
	ProvisionDone(kind string, err error)
}

// roomKind is the job kind for a room in state s.
func roomKind(s db.RoomState) string {
	switch s {
	case db.RoomCreating:
		return KindRoomCreate
	case db.RoomDisabling:
		return KindRoomDisable
	default:
		return KindRoomSync
	}
}

// observe reports a finished job to the observer, if there is one.
func (w *Worker) observe(ctx context.Context, kind string, err error) {
	if w.opts.Observer == nil {
		return
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return
	}
	w.opts.Observer.ProvisionDone(kind, err)
}
