package db

import (
	"fmt"
	"slices"
)

// RoomState is a managed room's lifecycle state (the matrix_rooms.state column).
type RoomState string

// Room states. A room is created in RoomCreating; the worker moves it on.
const (
	RoomCreating  RoomState = "creating"
	RoomActive    RoomState = "active"
	RoomDisabling RoomState = "disabling"
	RoomArchived  RoomState = "archived"
	RoomError     RoomState = "error"
)

// RoomStates lists every state, in lifecycle order (for filters and tests).
var RoomStates = []RoomState{RoomCreating, RoomActive, RoomDisabling, RoomArchived, RoomError}

// Valid reports whether s is one of RoomStates.
func (s RoomState) Valid() bool {
	for _, v := range RoomStates {
		if s == v {
			return true
		}
	}
	return false
}

// CanTransition is the room state machine, the one rule the API, the worker and
// reprovision all go through:
//
//	creating -> active            the worker created (or adopted) the room
//	active|error -> disabling     staff disable it, or its project is deleted: the notice,
//	                              then everyone removed, then the history exported
//	disabling -> archived         the worker finished disabling; the Matrix room stays
//	any -> error                  the worker gave up after its attempts (or the export failed)
//	error -> creating             staff retry (the error is cleared)
//	archived -> active            staff reactivate it: the same Matrix room, members back
//	active -> creating            reprovision onto a new homeserver
func CanTransition(from, to RoomState) bool {
	switch to {
	case RoomError:
		return from.Valid() && from != RoomError
	case RoomActive:
		return from == RoomCreating || from == RoomArchived
	case RoomDisabling:
		return from == RoomActive || from == RoomError
	case RoomArchived:
		return from == RoomDisabling
	case RoomCreating:
		return from == RoomError || from == RoomActive
	}
	return false
}

// TransitionError is returned for a transition the state machine forbids; the API
// answers it with 409 and the current state.
type TransitionError struct {
	From, To RoomState
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("a room in state %s cannot become %s", e.From, e.To)
}

// RoomAction is an action on a room (the API's and the dashboard's): offered only from
// the states it names. One that changes the state (To) goes through CanTransition too;
// one that leaves the state as it is (To "") only needs the room to be in one of From.
// Reactivate is archived -> active, never creating -> active, which is the worker's.
type RoomAction struct {
	Name string
	From []RoomState
	To   RoomState // "" = the state stays (retry decides by the state it finds)
}

// The room actions of the rooms API and the dashboard.
var (
	// ActionRetry: from error back to creating (the error cleared); a room stuck in
	// creating or disabling is worked on again at once, its failures forgotten.
	ActionRetry = RoomAction{Name: "retry", From: []RoomState{RoomError, RoomCreating, RoomDisabling}}
	// ActionDisable: the disable path (notice, kicks, export, archive).
	ActionDisable = RoomAction{Name: "disable", From: []RoomState{RoomActive, RoomError}, To: RoomDisabling}
	// ActionReactivate: the same Matrix room again, members re-invited.
	ActionReactivate = RoomAction{Name: "reactivate", From: []RoomState{RoomArchived}, To: RoomActive}
	// ActionSyncMembers queues a member sync (a room being created syncs when made).
	ActionSyncMembers = RoomAction{Name: "sync_members", From: []RoomState{RoomActive, RoomCreating}}
	// ActionJoin and ActionLeave: staff join or leave the conversation.
	ActionJoin  = RoomAction{Name: "join", From: []RoomState{RoomActive}}
	ActionLeave = RoomAction{Name: "leave", From: []RoomState{RoomActive}}
	// ActionOpen: a member opens the conversation.
	ActionOpen = RoomAction{Name: "open", From: []RoomState{RoomActive}}
	// ActionDelete removes the room's record; only where nobody is in the room because
	// of it: not created yet, given up on, or archived (the Matrix room itself stays).
	ActionDelete = RoomAction{Name: "delete", From: []RoomState{RoomError, RoomCreating, RoomArchived}}
)

// RoomActions lists every room action.
var RoomActions = []RoomAction{ActionRetry, ActionDisable, ActionReactivate, ActionSyncMembers, ActionJoin, ActionLeave, ActionOpen, ActionDelete}

// Allowed reports whether the action applies to a room in state from.
func (a RoomAction) Allowed(from RoomState) bool {
	return slices.Contains(a.From, from) && (a.To == "" || CanTransition(from, a.To))
}

// ActionError refuses an action in the room's current state; the API answers it with
// 409 and the state.
type ActionError struct {
	Action RoomAction
	State  RoomState
}

func (e *ActionError) Error() string {
	return fmt.Sprintf("cannot %s a room in state %s", e.Action.Name, e.State)
}
