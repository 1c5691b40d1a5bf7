package db

import (
	"slices"
	"testing"
)

// TestCanTransitionExhaustive checks every (from, to) pair of the state machine, so a
// transition can neither appear nor vanish unnoticed.
func TestCanTransitionExhaustive(t *testing.T) {
	allowed := map[[2]RoomState]bool{
		{RoomCreating, RoomActive}:    true, // the worker created it
		{RoomActive, RoomDisabling}:   true, // staff disable
		{RoomError, RoomDisabling}:    true,
		{RoomDisabling, RoomArchived}: true, // the worker finished disabling
		{RoomCreating, RoomError}:     true, // any -> error
		{RoomActive, RoomError}:       true,
		{RoomDisabling, RoomError}:    true,
		{RoomArchived, RoomError}:     true,
		{RoomError, RoomCreating}:     true, // retry
		{RoomArchived, RoomActive}:    true, // reactivate
		{RoomActive, RoomCreating}:    true, // reprovision
	}
	states := append([]RoomState{"", "bogus"}, RoomStates...)
	n := 0
	for _, from := range states {
		for _, to := range states {
			want := allowed[[2]RoomState{from, to}]
			if want {
				n++
			}
			if got := CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%q, %q) = %v, want %v", from, to, got, want)
			}
		}
	}
	if n != len(allowed) {
		t.Fatalf("the table names a state outside RoomStates")
	}
}

func TestRoomStateValid(t *testing.T) {
	for _, tc := range []struct {
		s    RoomState
		want bool
	}{{"creating", true}, {"active", true}, {"disabling", true}, {"archived", true}, {"error", true}, {"", false}, {"Active", false}, {"deleted", false}} {
		if got := tc.s.Valid(); got != tc.want {
			t.Errorf("%q.Valid() = %v, want %v", tc.s, got, tc.want)
		}
	}
}

// TestRoomActions checks each room action against every state: from where it is offered,
// and that an action that changes the state does so through the state machine.
func TestRoomActions(t *testing.T) {
	want := map[string][]RoomState{
		"retry":        {RoomError, RoomCreating, RoomDisabling},
		"disable":      {RoomActive, RoomError},
		"reactivate":   {RoomArchived},
		"sync_members": {RoomActive, RoomCreating},
		"join":         {RoomActive},
		"leave":        {RoomActive},
		"open":         {RoomActive},
		"delete":       {RoomError, RoomCreating, RoomArchived},
	}
	if len(RoomActions) != len(want) {
		t.Fatalf("%d actions, the table has %d", len(RoomActions), len(want))
	}
	for _, a := range RoomActions {
		w, ok := want[a.Name]
		if !ok {
			t.Errorf("action %s is not in the table", a.Name)
		}
		for _, from := range RoomStates {
			if got, w := a.Allowed(from), slices.Contains(w, from); got != w {
				t.Errorf("%s from %s: allowed %v, want %v", a.Name, from, got, w)
			}
			if a.To != "" && a.Allowed(from) && !CanTransition(from, a.To) {
				t.Errorf("%s from %s to %s is not a transition of the state machine", a.Name, from, a.To)
			}
		}
	}
}
