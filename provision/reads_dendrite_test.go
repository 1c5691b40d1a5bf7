package provision_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"matrixas/internal/dendritetest"
	"matrixas/internal/metricstest"
	"matrixas/settings"
)

const readsMetricsToken = "metrics-token-0123456789abcdef"

// workerStateReads is how many room state reads the worker has made so far, from the
// server's metrics: of the whole state, and of single state events.
func workerStateReads(t *testing.T, a *appservice) (whole, single float64) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.ts.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+readsMetricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %d %s", resp.StatusCode, b)
	}
	s := metricstest.Parse(t, string(b))
	reads := func(ep string) float64 {
		v, _ := s.Value("matrixas_homeserver_request_duration_seconds", map[string]string{
			"caller": "worker", "endpoint": "/_matrix/client/{version}/rooms/{roomId}" + ep, "method": http.MethodGet})
		return v
	}
	return reads("/state"), reads("/state/{eventType}") + reads("/state/{eventType}/{stateKey}")
}

// TestCreatedRoomNotReadBack: a room the worker creates for members it registers in the
// same job is made active without reading any of its state back (the creation says who
// is in it, their levels and their names); a member registered earlier, who may have
// renamed themselves since, still has their name checked (one state read) and restored;
// a role change in an active room reads the room once, its power levels with it.
func TestCreatedRoomNotReadBack(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	ctx := context.Background()
	env := map[string]string{"METRICS_TOKEN": readsMetricsToken, "PROVISION_CONCURRENCY": "1"}
	for k, v := range fastEnv {
		env[k] = v
	}
	a := newAppservice(t, env)
	st := a.ts.Web.Settings()
	room := func(name string, users ...apiUser) apiRoom {
		var p struct {
			UUID string `json:"uuid"`
		}
		a.call(t, http.MethodPost, "/api/projects/", map[string]string{"name": name}, &p, http.StatusCreated)
		var body []map[string]string
		for i, u := range users {
			body = append(body, map[string]string{"user": u.UUID, "role": []string{"admin", "member"}[i%2]})
		}
		a.call(t, http.MethodPut, "/api/projects/"+p.UUID+"/members/", body, nil, http.StatusOK)
		var r apiRoom
		a.call(t, http.MethodPost, "/api/matrix-rooms/", map[string]string{"project": p.UUID}, &r, http.StatusCreated)
		return r
	}

	// Everything is queued while the worker is off; on, it takes the room first (one job
	// at a time), which registers the members itself.
	if err := st.Set(ctx, map[string]string{settings.Enabled.Key: "false"}); err != nil {
		t.Fatal(err)
	}
	fresh1, fresh2 := a.createUser(t, "fresh1"), a.createUser(t, "fresh2")
	r := room("Fresh", fresh1, fresh2)
	if err := st.Set(ctx, map[string]string{settings.Enabled.Key: "true"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "room active", 60*time.Second, a.inState(t, r.UUID, "active"))
	if whole, single := workerStateReads(t, a); whole+single != 0 {
		t.Errorf("state reads for a room just created: %v + %v, want 0", whole, single)
	}
	r = a.room(t, r.UUID)
	bc := a.bot(t, a.hs)
	ms := memberships(t, bc, id.RoomID(r.RoomID))
	for _, u := range []string{"fresh1", "fresh2"} {
		if m := ms[mxid(u)]; m.Membership != "join" || m.Displayname != "User "+u {
			t.Errorf("%s: %+v", u, m)
		}
	}
	if got := powerUsers(t, bc, r.RoomID); fmt.Sprint(got) != fmt.Sprint(map[string]int{a.ms.BotUserID().String(): 100, mxid("fresh1"): 50}) {
		t.Errorf("power levels %v", got)
	}

	// A member registered before, who renamed themselves on the homeserver: a new room's
	// sync reads the room once and restores the platform's name.
	old := a.createUser(t, "old1")
	waitFor(t, "old1 registered", 30*time.Second, pendingProfiles(t, a))
	if err := a.as(t, a.hs, id.UserID(mxid("old1"))).SetDisplayName(ctx, "Somebody Else"); err != nil {
		t.Fatal(err)
	}
	whole0, single0 := workerStateReads(t, a)
	r2 := room("Later", old)
	waitFor(t, "second room active", 60*time.Second, a.inState(t, r2.UUID, "active"))
	if whole, single := workerStateReads(t, a); whole-whole0 != 1 || single-single0 != 0 {
		t.Errorf("state reads for a room with a member registered before: %v + %v, want 1 + 0", whole-whole0, single-single0)
	}
	r2 = a.room(t, r2.UUID)
	if m := memberships(t, bc, id.RoomID(r2.RoomID))[mxid("old1")]; m.Membership != "join" || m.Displayname != "User old1" {
		t.Errorf("old1: %+v", m)
	}

	// fresh2 becomes an admin: the sync reads the whole state, and no power levels apart.
	whole0, single0 = workerStateReads(t, a)
	a.call(t, http.MethodPut, "/api/projects/"+r.Project+"/members/", []map[string]string{
		{"user": fresh1.UUID, "role": "admin"}, {"user": fresh2.UUID, "role": "admin"}}, nil, http.StatusOK)
	waitFor(t, "fresh2 at 50", 30*time.Second, func() (bool, string) {
		got := powerUsers(t, bc, r.RoomID)
		return got[mxid("fresh2")] == 50 && got[mxid("fresh1")] == 50, fmt.Sprint(got)
	})
	if whole, single := workerStateReads(t, a); whole-whole0 < 1 || single-single0 != 0 {
		t.Errorf("state reads for a role change: %v + %v, want 1 (or more) + 0", whole-whole0, single-single0)
	}
	if got := powerRules(t, bc, r.RoomID); got != "invite=100 kick=100 ban=100 redact=100 state_default=100 events_default=0 name=100 power_levels=100" {
		t.Errorf("power rules after the role change: %s", got)
	}
}
