package provision_test

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"matrixas/internal/dendritetest"
)

// newProjectRoom creates a project with the given members (all "member") and its room.
func (a *appservice) newProjectRoom(t *testing.T, name string, members ...apiUser) apiRoom {
	t.Helper()
	var p struct {
		UUID string `json:"uuid"`
	}
	a.call(t, http.MethodPost, "/api/projects/", map[string]string{"name": name}, &p, http.StatusCreated)
	var body []map[string]string
	for _, u := range members {
		body = append(body, map[string]string{"user": u.UUID, "role": "member"})
	}
	if len(body) > 0 {
		a.call(t, http.MethodPut, "/api/projects/"+p.UUID+"/members/", body, nil, http.StatusOK)
	}
	var r apiRoom
	a.call(t, http.MethodPost, "/api/matrix-rooms/", map[string]string{"project": p.UUID}, &r, http.StatusCreated)
	return r
}

// inState is a waitFor condition on one room's state.
func (a *appservice) inState(t *testing.T, uuid, state string) func() (bool, string) {
	return func() (bool, string) {
		r := a.room(t, uuid)
		return r.State == state, fmt.Sprintf("%s, attempts %d, error %q", r.State, r.Attempts, r.ErrorMessage)
	}
}

// TestHomeserverOutage: while the homeserver is down rooms back off and recover when it
// returns; a room that keeps failing ends in error with the reason, stays there, and
// retry/ brings it back.
func TestHomeserverOutage(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	env := maps.Clone(fastEnv)
	env["PROVISION_MAX_ATTEMPTS"] = "4"
	a := newAppservice(t, env)
	u := a.createUser(t, "outage")
	waitFor(t, "user provisioned", 30*time.Second, pendingProfiles(t, a))

	a.hs.Stop()
	ra := a.newProjectRoom(t, "Outage A", u)
	waitFor(t, "room A failing and backing off", 30*time.Second, func() (bool, string) {
		r := a.room(t, ra.UUID)
		return r.State == "creating" && r.Attempts >= 2 && r.ErrorMessage != "", fmt.Sprintf("%+v", r)
	})
	if err := a.hs.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "room A active once the homeserver is back", 30*time.Second, a.inState(t, ra.UUID, "active"))
	if r := a.room(t, ra.UUID); r.ErrorMessage != "" || r.Attempts != 0 {
		t.Errorf("recovered room keeps its failure: %+v", r)
	}

	a.hs.Stop()
	rb := a.newProjectRoom(t, "Outage B", u)
	waitFor(t, "room B gives up", 30*time.Second, a.inState(t, rb.UUID, "error"))
	r := a.room(t, rb.UUID)
	if r.Attempts != 4 || !strings.Contains(r.ErrorMessage, "connection refused") {
		t.Errorf("errored room: attempts %d, message %q", r.Attempts, r.ErrorMessage)
	}
	if err := a.hs.Restart(); err != nil {
		t.Fatal(err)
	}
	// The worker does not retry an errored room by itself: staff do.
	a.call(t, http.MethodGet, "/api/matrix-rooms/"+rb.UUID+"/", nil, &r, http.StatusOK)
	if r.State != "error" {
		t.Fatalf("errored room moved on its own to %s", r.State)
	}
	a.call(t, http.MethodPost, "/api/matrix-rooms/"+rb.UUID+"/retry/", nil, &r, http.StatusAccepted)
	if r.State != "creating" || r.ErrorMessage != "" {
		t.Errorf("after retry: %+v", r)
	}
	waitFor(t, "room B active after retry", 30*time.Second, a.inState(t, rb.UUID, "active"))
	r = a.room(t, rb.UUID)
	if got := joined(t, a.bot(t, a.hs), r.RoomID); !sameStrings(got, []string{mxid("outage"), a.ms.BotUserID().String()}) {
		t.Errorf("room B members %v", got)
	}
}
