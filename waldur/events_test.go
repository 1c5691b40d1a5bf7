package waldur_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"matrixas/internal/fakewaldur"
	"matrixas/waldur"
)

func TestParseEvent(t *testing.T) {
	user, project, customer, actor := newUUID(), newUUID(), newUUID(), newUUID()
	created := time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC)
	revoked := fakewaldur.Event{Type: "role_revoked", Message: "User bob has lost PROJECT.ADMIN.", Created: created,
		Context: map[string]any{
			"scope_type": "project", "scope_uuid": project, "customer_uuid": customer, "role_name": "PROJECT.ADMIN",
			"affected_user_uuid": user, "affected_user_username": "bob", "affected_user_full_name": "Bob B",
			"user_uuid": actor, "project_name": "Apollo", "numeric": 5, "nested": map[string]any{"a": 1},
		}}
	wantRevoked := waldur.Event{Type: "role_revoked", Kind: waldur.EventRole, Created: created, Message: "User bob has lost PROJECT.ADMIN.",
		CustomerUUID: customer, UserUUID: user, ActorUUID: actor, ScopeType: "project", ScopeUUID: project,
		RoleName: "PROJECT.ADMIN", UserUsername: "bob", UserFullName: "Bob B", ProjectName: "Apollo", HasContext: true}

	for _, tc := range []struct {
		name string
		enc  fakewaldur.Encoding
		ev   fakewaldur.Event
		want waldur.Event
	}{
		{name: "role event as JSON", enc: fakewaldur.JSON, ev: revoked, want: wantRevoked},
		{name: "role event as a form with a JSON context", enc: fakewaldur.FormJSONContext, ev: revoked, want: wantRevoked},
		{name: "role event as the platform's form: context keys only", enc: fakewaldur.Form, ev: revoked,
			want: waldur.Event{Type: "role_revoked", Kind: waldur.EventRole, Created: created, Message: "User bob has lost PROJECT.ADMIN."}},
		{name: "older role event: structure_type and project_uuid", enc: fakewaldur.JSON,
			ev: fakewaldur.Event{Type: "role_granted", Created: created, Context: map[string]any{
				"structure_type": "project", "project_uuid": strings.ToUpper(project), "affected_user_uuid": user, "role_name": "PROJECT.MEMBER"}},
			want: waldur.Event{Type: "role_granted", Kind: waldur.EventRole, Created: created, ProjectUUID: project, UserUUID: user,
				ScopeType: "project", ScopeUUID: project, RoleName: "PROJECT.MEMBER", HasContext: true}},
		{name: "user deactivated: the affected user, not the actor", enc: fakewaldur.JSON,
			ev: fakewaldur.Event{Type: "user_deactivated", Created: created, Context: map[string]any{
				"affected_user_uuid": user, "affected_user_username": "bob", "user_uuid": actor}},
			want: waldur.Event{Type: "user_deactivated", Kind: waldur.EventUser, Created: created, UserUUID: user, ActorUUID: actor,
				UserUsername: "bob", HasContext: true}},
		{name: "user event naming only user_uuid", enc: fakewaldur.JSON,
			ev: fakewaldur.Event{Type: "user_update_succeeded", Created: created, Context: map[string]any{"user_uuid": actor}},
			want: waldur.Event{Type: "user_update_succeeded", Kind: waldur.EventUser, Created: created, UserUUID: actor, ActorUUID: actor,
				HasContext: true}},
		{name: "role event naming only user_uuid: no user", enc: fakewaldur.JSON,
			ev: fakewaldur.Event{Type: "role_granted", Created: created, Context: map[string]any{"user_uuid": actor, "scope_type": "customer", "customer_uuid": customer}},
			want: waldur.Event{Type: "role_granted", Kind: waldur.EventRole, Created: created, ActorUUID: actor, CustomerUUID: customer,
				ScopeType: "customer", ScopeUUID: customer, HasContext: true}},
		{name: "project deleted", enc: fakewaldur.JSON,
			ev: fakewaldur.Event{Type: "project_deletion_succeeded", Created: created, Context: map[string]any{
				"project_uuid": project, "project_name": "Apollo", "customer_uuid": customer, "customer_name": "Org"}},
			want: waldur.Event{Type: "project_deletion_succeeded", Kind: waldur.EventProject, Created: created, ProjectUUID: project,
				CustomerUUID: customer, ProjectName: "Apollo", CustomerName: "Org", HasContext: true}},
		{name: "customer updated", enc: fakewaldur.JSON,
			ev:   fakewaldur.Event{Type: "customer_update_succeeded", Created: created, Context: map[string]any{"customer_uuid": customer}},
			want: waldur.Event{Type: "customer_update_succeeded", Kind: waldur.EventCustomer, Created: created, CustomerUUID: customer, HasContext: true}},
		{name: "order completed, dashed uuids", enc: fakewaldur.JSON,
			ev: fakewaldur.Event{Type: "marketplace_order_completed", Created: created, Context: map[string]any{
				"order_uuid": dashed(user), "project_uuid": dashed(project)}},
			want: waldur.Event{Type: "marketplace_order_completed", Kind: waldur.EventOrder, Created: created, OrderUUID: user,
				ProjectUUID: project, HasContext: true}},
		{name: "other event, a uuid that is not one", enc: fakewaldur.JSON,
			ev:   fakewaldur.Event{Type: "ssh_key_creation_succeeded", Created: created, Context: map[string]any{"user_uuid": "nope"}},
			want: waldur.Event{Type: "ssh_key_creation_succeeded", Kind: waldur.EventOther, Created: created, HasContext: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct, body := tc.ev.Body(tc.enc)
			got, err := waldur.ParseEvent(ct, body)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Created.Equal(tc.want.Created) {
				t.Errorf("Created = %v, want %v", got.Created, tc.want.Created)
			}
			got.Created = tc.want.Created
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func dashed(u string) string {
	return u[:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:]
}

func TestParseEventOddButAccepted(t *testing.T) {
	for _, tc := range []struct{ name, ct, body, wantType string }{
		{"naive created, charset", "application/json; charset=utf-8", `{"created": "2026-03-01T10:00:00.5", "event_type": "user_activated", "context": {}}`, "user_activated"},
		{"no content type, JSON body", "", ` {"event_type": "role_granted"}`, "role_granted"},
		{"no content type, form body", "", `event_type=role_granted&created=x`, "role_granted"},
		{"context not an object", "application/json", `{"event_type": "role_granted", "context": "x", "created": 5}`, "role_granted"},
		{"duplicate names", "application/json", `{"event_type": "role_granted", "event_type": "role_revoked"}`, "role_revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := waldur.ParseEvent(tc.ct, []byte(tc.body))
			if err != nil || ev.Type != tc.wantType {
				t.Errorf("ParseEvent = %+v, %v; want type %s", ev, err, tc.wantType)
			}
		})
	}
}

func TestParseEventRefusesWhatIsNoEvent(t *testing.T) {
	for _, tc := range []struct{ name, ct, body string }{
		{"not JSON", "application/json", `{"event_type": `},
		{"a list", "application/json", `[{"event_type": "role_granted"}]`},
		{"no event_type", "application/json", `{"created": "2026-03-01T10:00:00+00:00", "context": {}}`},
		{"event_type a number", "application/json", `{"event_type": 5}`},
		{"empty event_type", "application/json", `{"event_type": ""}`},
		{"form without event_type", "application/x-www-form-urlencoded", `created=x&context=a`},
		{"bad form", "application/x-www-form-urlencoded", `event_type=%zz`},
		{"other content type", "text/plain", `role_granted`},
		{"empty", "application/json", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ev, err := waldur.ParseEvent(tc.ct, []byte(tc.body)); !errors.Is(err, waldur.ErrBadEvent) {
				t.Errorf("ParseEvent = %+v, %v; want ErrBadEvent", ev, err)
			}
		})
	}
}

// TestRegisteredHookDeliversParsableEvents registers the hook with the client, changes
// the fake platform, and parses what it posts: the round trip the event receiver does.
func TestRegisteredHookDeliversParsableEvents(t *testing.T) {
	f := fakewaldur.New(t)
	var mu sync.Mutex
	var got []waldur.Event
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := waldur.ParseEvent(r.Header.Get("Content-Type"), body)
		if err != nil {
			t.Errorf("the receiver cannot parse %s: %v", body, err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	c, _ := newClient(t, f, nil)
	if _, err := c.RegisterHook(context.Background(), recv.URL+"/api/waldur/events/secret/", waldur.HookEventTypes); err != nil {
		t.Fatal(err)
	}

	org := f.AddCustomer(fakewaldur.Customer{Name: "Org", Abbreviation: "ORG"})
	p := f.AddProject(fakewaldur.Project{Name: "Apollo", CustomerUUID: org.UUID})
	u := f.AddUser(fakewaldur.User{Username: "bob", Active: true})
	f.Grant(fakewaldur.Permission{UserUUID: u.UUID, Role: "PROJECT.ADMIN", ScopeType: "project", ScopeUUID: p.UUID})
	f.UpdateUser(u.UUID, func(u *fakewaldur.User) { u.Active = false })
	o := f.AddOrder(fakewaldur.Order{State: "pending-consumer", Type: "Create", ProjectUUID: p.UUID})
	f.SetOrderState(o.UUID, "done")
	f.RemoveProject(p.UUID)

	mu.Lock()
	defer mu.Unlock()
	var summary []string
	for _, ev := range got {
		if !ev.HasContext {
			t.Errorf("%s came without its context", ev.Type)
		}
		s := ev.Type + ":" + string(ev.Kind)
		switch ev.Kind {
		case waldur.EventRole:
			if ev.UserUUID != u.UUID || ev.ScopeType != "project" || ev.ScopeUUID != p.UUID || ev.CustomerUUID != org.UUID || ev.RoleName != "PROJECT.ADMIN" {
				t.Errorf("role event %+v", ev)
			}
		case waldur.EventUser:
			if ev.UserUUID != u.UUID || ev.ActorUUID == u.UUID {
				t.Errorf("user event %+v", ev)
			}
		case waldur.EventProject:
			if ev.ProjectUUID != p.UUID || ev.CustomerUUID != org.UUID {
				t.Errorf("project event %+v", ev)
			}
		case waldur.EventCustomer:
			if ev.CustomerUUID != org.UUID {
				t.Errorf("customer event %+v", ev)
			}
		case waldur.EventOrder:
			if ev.OrderUUID != o.UUID || ev.ProjectUUID != p.UUID {
				t.Errorf("order event %+v", ev)
			}
		}
		summary = append(summary, s)
	}
	want := "customer_creation_succeeded:customer project_creation_succeeded:project user_creation_succeeded:user " +
		"role_granted:role user_deactivated:user marketplace_order_created:order marketplace_order_completed:order " +
		"role_revoked:role project_deletion_succeeded:project"
	if strings.Join(summary, " ") != want {
		t.Errorf("received %s\nwant     %s", strings.Join(summary, " "), want)
	}
}
