package main

import (
	"context"
	"strings"
	"testing"

	"matrixas/db"
	"matrixas/settings"
)

// activeRoom makes one active room with a provisioned member in the CLI's database.
func activeRoom(t *testing.T, s *db.Store) *db.Room {
	t.Helper()
	ctx := context.Background()
	rules := db.ProfileRules{Domain: "example.org", BotLocalpart: "waldur-bot"}
	u, _, err := s.PutUser(ctx, db.DirectoryUser{Username: "ann", FullName: "Ann", IsActive: true}, rules)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := s.PutProject(ctx, db.DirectoryProject{Name: "P"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoles(ctx, p.ID, []db.RoleInput{{UserUUID: u.UUID, Role: db.RoleMember}}, rules); err != nil {
		t.Fatal(err)
	}
	r, err := s.RoomByUUID(ctx, p.RoomUUID)
	if err != nil {
		t.Fatal(err)
	}
	s.ClaimRoom(ctx, r.ID)
	s.SetRoomHomeserverID(ctx, r.ID, "!old:example.org", "", "")
	if err := s.FinishRoomSync(ctx, r.ID, "P"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.MarkProfileProvisioned(ctx, u.ID, "Ann"); !ok || err != nil {
		t.Fatalf("mark provisioned: %v %v", ok, err)
	}
	return r
}

func TestReprovisionCommand(t *testing.T) {
	ctx := context.Background()
	c := newCLI(t)
	s := c.store(t)
	st := db.NewSettings(s, nil)
	room := activeRoom(t, s)
	state := func() string {
		r, err := s.RoomByID(ctx, room.ID)
		if err != nil {
			t.Fatal(err)
		}
		return string(r.State)
	}

	if err := c.run(ctx, "reprovision", "--yes"); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("disabled: %v", err)
	}
	if err := st.Set(ctx, map[string]string{settings.Enabled.Key: "true", settings.HomeserverURL.Key: "https://new.example.org", settings.HomeserverDomain.Key: "example.org"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		args      []string
		stdin     string
		wantErr   string
		stdout    []string
		wantState string
	}{
		{"dry run", []string{"--dry-run"}, "", "", []string{"would reprovision 1 active rooms and reset 1 provisioned users", "dry run: nothing changed"}, "active"},
		{"declined", nil, "no\n", "aborted", []string{"https://new.example.org", "Type yes to continue"}, "active"},
		{"no answer", nil, "", "aborted", nil, "active"},
		{"confirmed", nil, "yes\n", "", []string{"reprovisioned 1 rooms and reset 1 users"}, "creating"},
		{"again, nothing active", []string{"--yes"}, "", "", []string{"reprovisioned 0 rooms and reset 0 users"}, "creating"},
	} {
		c.stdin = tc.stdin
		err := c.run(ctx, append([]string{"reprovision"}, tc.args...)...)
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.wantErr)
		}
		for _, want := range tc.stdout {
			if !strings.Contains(c.stdout.String(), want) {
				t.Errorf("%s: stdout lacks %q:\n%s", tc.name, want, c.stdout)
			}
		}
		if got := state(); got != tc.wantState {
			t.Errorf("%s: room %s, want %s", tc.name, got, tc.wantState)
		}
	}
}
