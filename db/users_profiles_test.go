package db

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

func TestListUsersWithProfiles(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	rules := ProfileRules{Domain: "example.org", BotLocalpart: "waldur-bot"}
	users := map[string]*User{}
	for _, name := range []string{"ann", "ben", "cat"} {
		u := &User{Username: name, FullName: "Full " + name, IsActive: name != "cat", PasswordHash: "secret-hash"}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		users[name] = u
	}
	if _, err := s.EnsureProfile(ctx, users["ann"].ID, rules); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkProfileProvisioned(ctx, users["ann"].ID, "Full ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureProfile(ctx, users["ben"].ID, rules); err != nil {
		t.Fatal(err)
	}

	active, inactive := true, false
	tests := []struct {
		name  string
		f     UserFilter
		want  string
		total int
	}{
		{"all", UserFilter{}, "[ann:@ann:example.org:true ben:@ben:example.org:false cat::false]", 3},
		{"search matrix id", UserFilter{Search: "@ben:"}, "[ben:@ben:example.org:false]", 1},
		{"search name", UserFilter{Search: "full c"}, "[cat::false]", 1},
		{"active", UserFilter{IsActive: &active}, "[ann:@ann:example.org:true ben:@ben:example.org:false]", 2},
		{"inactive", UserFilter{IsActive: &inactive}, "[cat::false]", 1},
		{"page 2 of 2", UserFilter{Page: Page{Number: 2, Size: 2}}, "[cat::false]", 3},
		{"like wildcards are literal", UserFilter{Search: "%"}, "[]", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, total, err := s.ListUsersWithProfiles(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, r := range rows {
				got = append(got, fmt.Sprintf("%s:%s:%v", r.Username, r.MatrixUserID, r.Provisioned))
				if r.PasswordHash != "" {
					t.Errorf("%s: the list carries the password hash", r.Username)
				}
			}
			if fmt.Sprint(got) != tt.want || total != tt.total {
				t.Errorf("got %v (total %d), want %s (total %d)", got, total, tt.want, tt.total)
			}
		})
	}
}
