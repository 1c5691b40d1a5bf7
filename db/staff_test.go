package db

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func mustCreate(t *testing.T, s *Store, u *User) *User {
	t.Helper()
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSetUserActiveKeepsOneStaff: no deactivation leaves the server without an active
// staff account, whoever asks; platform users and other staff are not held back.
func TestSetUserActiveKeepsOneStaff(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a := mustCreate(t, s, &User{Username: "a", IsStaff: true, IsActive: true})
	platform := mustCreate(t, s, &User{Username: "p", IsActive: true})
	inactive := mustCreate(t, s, &User{Username: "gone", IsStaff: true})

	if err := s.SetUserActive(ctx, a.ID, false); !errors.Is(err, ErrLastStaff) {
		t.Fatalf("deactivate the only active staff: %v, want ErrLastStaff", err)
	}
	if err := s.SetUserActive(ctx, platform.ID, false); err != nil {
		t.Errorf("deactivate a platform user: %v", err)
	}
	if err := s.SetUserActive(ctx, inactive.ID, false); err != nil {
		t.Errorf("deactivate an inactive staff user again: %v", err)
	}
	if err := s.SetUserActive(ctx, 9999, false); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
	b := mustCreate(t, s, &User{Username: "b", IsStaff: true, IsActive: true})
	if err := s.SetUserActive(ctx, a.ID, false); err != nil {
		t.Fatalf("deactivate one of two staff: %v", err)
	}
	if err := s.SetUserActive(ctx, b.ID, false); !errors.Is(err, ErrLastStaff) {
		t.Errorf("deactivate the other, now the last: %v, want ErrLastStaff", err)
	}
	if n, _ := s.CountStaff(ctx); n != 1 {
		t.Errorf("%d active staff, want 1", n)
	}
}

// TestSetUserActiveConcurrentStaff: two staff users deactivating each other at the
// same moment: exactly one succeeds, the rule being read inside the write transaction.
func TestSetUserActiveConcurrentStaff(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for round := range 20 {
		a := mustCreate(t, s, &User{Username: "a" + string(rune('a'+round)), IsStaff: true, IsActive: true})
		b := mustCreate(t, s, &User{Username: "b" + string(rune('a'+round)), IsStaff: true, IsActive: true})
		// The previous round's survivor steps aside, so a and b are the only active staff.
		if _, err := s.w.ExecContext(ctx, `UPDATE users SET is_active = 0 WHERE id NOT IN (?, ?)`, a.ID, b.ID); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range []int64{a.ID, b.ID} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.SetUserActive(ctx, id, false)
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrLastStaff):
				t.Fatal(err)
			}
		}
		if n, _ := s.CountStaff(ctx); ok != 1 || n != 1 {
			t.Fatalf("round %d: %d deactivations succeeded, %d active staff left; want 1 and 1", round, ok, n)
		}
	}
}

// TestPutUserRefusesStaffAccounts: a directory write that names a staff account changes
// nothing and says why, even when it would change nothing.
func TestPutUserRefusesStaffAccounts(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	staff := mustCreate(t, s, &User{Username: "op", Email: "op@example.org", IsStaff: true, IsActive: true})
	for _, in := range []DirectoryUser{
		{UUID: staff.UUID, Username: "renamed", IsActive: true},
		{UUID: staff.UUID, Username: "op", Email: "op@example.org", IsActive: false},
		{UUID: staff.UUID, Username: "op", Email: "op@example.org", IsActive: true},
	} {
		if _, _, err := s.PutUser(ctx, in, ProfileRules{}); !errors.Is(err, ErrStaffAccount) {
			t.Errorf("PutUser(%+v): %v, want ErrStaffAccount", in, err)
		}
	}
	got, err := s.UserByID(ctx, staff.ID)
	if err != nil || got.Username != "op" || !got.IsActive || got.Email != "op@example.org" {
		t.Errorf("staff account after refused writes: %+v, %v", got, err)
	}
}

// TestListUsersPlatformOnly: the filter leaves staff accounts out of the page and the count.
func TestListUsersPlatformOnly(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	mustCreate(t, s, &User{Username: "op", IsStaff: true, IsActive: true})
	mustCreate(t, s, &User{Username: "opal", IsActive: true})
	all, total, err := s.ListUsers(ctx, UserFilter{Search: "op", Page: Page{Number: 1, Size: 10}})
	if err != nil || total != 2 || len(all) != 2 {
		t.Fatalf("all: %d of %d, %v", len(all), total, err)
	}
	users, total, err := s.ListUsers(ctx, UserFilter{Search: "op", PlatformOnly: true, Page: Page{Number: 1, Size: 10}})
	if err != nil || total != 1 || len(users) != 1 || users[0].Username != "opal" {
		t.Errorf("platform only: %v of %d, %v", users, total, err)
	}
}

// TestUpgradePasswordHash: the hash is replaced only while it is still the one that was
// checked, and the user's sessions survive (the password did not change).
func TestUpgradePasswordHash(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	u := mustCreate(t, s, &User{Username: "op", IsStaff: true, IsActive: true, PasswordHash: "old"})
	if err := s.SaveSession(ctx, &SessionRow{IDHash: "h", UserID: u.ID, Data: []byte{}, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpgradePasswordHash(ctx, u.ID, "old", "new"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UserByID(ctx, u.ID); got.PasswordHash != "new" {
		t.Errorf("hash %q, want new", got.PasswordHash)
	}
	if _, err := s.SessionByHash(ctx, "h"); err != nil {
		t.Errorf("the session did not survive the upgrade: %v", err)
	}
	// A password changed meanwhile wins.
	if err := s.UpgradePasswordHash(ctx, u.ID, "old", "stale"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UserByID(ctx, u.ID); got.PasswordHash != "new" {
		t.Errorf("hash %q after a stale upgrade, want new", got.PasswordHash)
	}
}
