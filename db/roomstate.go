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
//	active|error -> disabling     staff disable it; the worker kicks everyone and leaves
//	disabling -> archived         the worker finished disabling
//	any -> error                  the worker gave up after its attempts
//	error -> creating             staff retry (the error is cleared)
//	archived -> active            staff reactivate it; members are synced again
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

// RoomAction is a staff action on a room: one transition of the state machine, offered
// only from the states it names (reactivate is archived -> active, never creating -> active,
// which is the worker's).
type RoomAction struct {
	Name string
	From []RoomState
	To   RoomState
}

// The staff actions of the rooms API and dashboard.
var (
	ActionRetry      = RoomAction{Name: "retry", From: []RoomState{RoomError}, To: RoomCreating}
	ActionDisable    = RoomAction{Name: "disable", From: []RoomState{RoomActive, RoomError}, To: RoomDisabling}
	ActionReactivate = RoomAction{Name: "reactivate", From: []RoomState{RoomArchived}, To: RoomActive}
)

// Allowed reports whether the action applies to a room in state from.
func (a RoomAction) Allowed(from RoomState) bool {
	return slices.Contains(a.From, from) && CanTransition(from, a.To)
}
