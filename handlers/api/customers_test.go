package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix/id"

	"matrixas/db"
)

type apiCustomer struct {
	UUID         string `json:"uuid"`
	Name         string `json:"name"`
	Abbreviation string `json:"abbreviation"`
	Source       string `json:"source"`
	ProjectCount int    `json:"project_count"`
	OwnerCount   int    `json:"owner_count"`
}

// TestAPICustomersAndOwners: the push API of customers (upsert by uuid, update,
// delete) and their owners, who become members of every room of the customer's
// projects at power level 50.
func TestAPICustomersAndOwners(t *testing.T) {
	s := apiServer(t)
	ann, ben := mkUser(t, s, "ann"), mkUser(t, s, "ben")
	id := db.NewUUID()
	var c apiCustomer
	if code := s.JSON(t, http.MethodPost, "/api/customers/", s.StaffToken, map[string]any{"uuid": id, "name": "Acme", "abbreviation": "ACME"}, &c); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	if c.UUID != id || c.Name != "Acme" || c.Source != "api" {
		t.Errorf("created %+v", c)
	}
	if code := s.JSON(t, http.MethodPost, "/api/customers/", s.StaffToken, map[string]any{"uuid": id, "name": "Acme Inc."}, &c); code != http.StatusOK || c.Abbreviation != "ACME" {
		t.Errorf("upsert: %d %+v (the abbreviation is kept when left out)", code, c)
	}
	resp, body := s.Request(t, http.MethodPost, "/api/customers/", s.StaffToken, map[string]any{"name": " ", "abbreviation": "FAR TOO LONG ABBR"})
	if errs := apiErrs(t, body); resp.StatusCode != http.StatusBadRequest || len(errs["name"]) == 0 || len(errs["abbreviation"]) == 0 {
		t.Errorf("bad input: %d %s", resp.StatusCode, body)
	}
	if code := s.JSON(t, http.MethodPatch, "/api/customers/"+id+"/", s.StaffToken, map[string]any{"abbreviation": "AC"}, &c); code != http.StatusOK || c.Name != "Acme Inc." || c.Abbreviation != "AC" {
		t.Errorf("patch: %d %+v", code, c)
	}

	// A project of the customer, with a member; its room.
	var p apiProject
	if code := s.JSON(t, http.MethodPost, "/api/projects/", s.StaffToken, map[string]any{"name": "Apollo", "customer": id}, &p); code != http.StatusCreated {
		t.Fatalf("project: %d", code)
	}
	resp, body = s.Request(t, http.MethodPost, "/api/projects/", s.StaffToken, map[string]any{"name": "Orphan", "customer": db.NewUUID()})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "No customer") {
		t.Errorf("unknown customer: %d %s", resp.StatusCode, body)
	}
	s.JSON(t, http.MethodPost, "/api/projects/"+p.UUID+"/members/", s.StaffToken, map[string]any{"user": ben.UUID, "role": "PROJECT.MEMBER"}, nil)
	var room apiRoom
	s.JSON(t, http.MethodPost, "/api/matrix-rooms/", s.StaffToken, map[string]string{"project": p.UUID}, &room)

	// ann becomes an owner: a member of Apollo's room at 50.
	var owners []struct {
		User, Role string
	}
	if code := s.JSON(t, http.MethodPost, "/api/customers/"+id+"/owners/", s.StaffToken, map[string]any{"user": ann.UUID}, &owners); code != http.StatusCreated {
		t.Fatalf("add owner: %d", code)
	}
	if len(owners) != 1 || owners[0].User != ann.UUID || owners[0].Role != db.RoleCustomerOwner {
		t.Errorf("owners %+v", owners)
	}
	if code := s.JSON(t, http.MethodPost, "/api/customers/"+id+"/owners/", s.StaffToken, map[string]any{"user": ann.UUID, "role": "owner"}, nil); code != http.StatusOK {
		t.Errorf("add again: %d", code)
	}
	members := func() string {
		s.JSON(t, http.MethodGet, "/api/matrix-rooms/"+room.UUID+"/", s.UserToken, nil, &room)
		var out []string
		for _, m := range room.Members {
			out = append(out, fmt.Sprintf("%s:%s:%d", m.Username, m.Role, m.PowerLevel))
		}
		return fmt.Sprint(out)
	}
	if got, want := members(), "[ann:CUSTOMER.OWNER:50 ben:PROJECT.MEMBER:0]"; got != want {
		t.Errorf("room members %s, want %s", got, want)
	}
	// ben too, replacing the list; then ann's ownership goes.
	if code := s.JSON(t, http.MethodPut, "/api/customers/"+id+"/owners/", s.StaffToken, []map[string]any{{"user": ben.UUID}}, &owners); code != http.StatusOK || len(owners) != 1 {
		t.Errorf("replace owners: %d %+v", code, owners)
	}
	if got, want := members(), "[ben:CUSTOMER.OWNER:50]"; got != want {
		t.Errorf("room members %s, want %s (an owner who is a member counts as owner)", got, want)
	}
	resp, body = s.Request(t, http.MethodPut, "/api/customers/"+id+"/owners/", s.StaffToken, []map[string]any{{"user": db.NewUUID()}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "Item 1: No user") {
		t.Errorf("unknown owner: %d %s", resp.StatusCode, body)
	}
	resp, body = s.Request(t, http.MethodPost, "/api/customers/"+id+"/owners/", s.StaffToken, map[string]any{"user": ann.UUID, "role": "PROJECT.ADMIN"})
	if resp.StatusCode != http.StatusBadRequest || len(apiErrs(t, body)["role"]) == 0 {
		t.Errorf("a project role for an owner: %d %s", resp.StatusCode, body)
	}
	var list []apiCustomer
	s.JSON(t, http.MethodGet, "/api/customers/?search=acme", s.UserToken, nil, &list)
	if len(list) != 1 || list[0].ProjectCount != 1 || list[0].OwnerCount != 1 {
		t.Errorf("list %+v", list)
	}
	var projects []apiProject
	s.JSON(t, http.MethodGet, "/api/projects/?customer="+id, s.UserToken, nil, &projects)
	if len(projects) != 1 || projects[0].UUID != p.UUID {
		t.Errorf("projects of the customer: %+v", projects)
	}
	if resp, _ := s.Request(t, http.MethodDelete, "/api/customers/"+id+"/owners/"+ann.UUID+"/", s.StaffToken, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("remove a non-owner: %d", resp.StatusCode)
	}
	if resp, _ := s.Request(t, http.MethodDelete, "/api/customers/"+id+"/", s.StaffToken, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if got, want := members(), "[ben:PROJECT.MEMBER:0]"; got != want {
		t.Errorf("room members after the customer went %s, want %s", got, want)
	}
	if code := s.JSON(t, http.MethodGet, "/api/projects/"+p.UUID+"/", s.UserToken, nil, &p); code != http.StatusOK {
		t.Errorf("the project went with its customer: %d", code)
	}
	if resp, _ := s.Request(t, http.MethodGet, "/api/customers/"+id+"/", s.UserToken, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleted customer: %d", resp.StatusCode)
	}
}

// TestAPIRoleWritesAreAnnounced: the directory API's role writes queue "granted" and
// "lost" notifications into the project's active room, in the same transaction.
func TestAPIRoleWritesAreAnnounced(t *testing.T) {
	s := apiServer(t)
	ann := mkUser(t, s, "ann")
	p := mkProject(t, s, "Apollo")
	var room apiRoom
	s.JSON(t, http.MethodPost, "/api/matrix-rooms/", s.StaffToken, map[string]string{"project": p.UUID}, &room)
	r, err := s.Store.RoomByUUID(t.Context(), room.UUID)
	if err != nil {
		t.Fatal(err)
	}
	// Before the room is active nobody reads it: nothing is queued.
	s.JSON(t, http.MethodPost, "/api/projects/"+p.UUID+"/members/", s.StaffToken, map[string]any{"user": ann.UUID, "role": "member"}, nil)
	if err := s.Store.SetRoomHomeserverID(t.Context(), r.ID, id.RoomID("!apollo:example.org"), "", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.FinishRoomSync(t.Context(), r.ID, "Apollo"); err != nil {
		t.Fatal(err)
	}
	s.JSON(t, http.MethodPost, "/api/projects/"+p.UUID+"/members/", s.StaffToken, map[string]any{"user": ann.UUID, "role": "Admin"}, nil)
	s.Request(t, http.MethodDelete, "/api/projects/"+p.UUID+"/members/"+ann.UUID+"/", s.StaffToken, nil)
	msgs, err := s.Store.RoomOutbox(t.Context(), r.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(msgs) - 1; i >= 0; i-- {
		got = append(got, msgs[i].Body)
	}
	want := []string{"ANN has lost the Project Member role.", "ANN has been granted the Project Admin role.", "ANN has lost the Project Admin role."}
	if !slices.Equal(got, want) {
		t.Errorf("notifications %q, want %q", got, want)
	}
}
