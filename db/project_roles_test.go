package db

import "testing"

// TestRolePowerLevels pins the one rule of who may do what in a project's room (the
// README's table says the same): the reference's, where project admins and the owners
// of the project's customer moderate (50) and managers, like members, talk (0).
func TestRolePowerLevels(t *testing.T) {
	tests := []struct {
		role  string
		valid bool // a project role (the directory API accepts it)
		level int
	}{
		{RoleAdmin, true, 50},
		{RoleManager, true, 0},
		{RoleMember, true, 0},
		{RoleCustomerOwner, false, 50}, // a customer role, not a project role
		{"admin", true, 50},            // the short spelling the API took before
		{"manager", true, 0},
		{"member", true, 0},
		{"", false, 0},      // no role: a former member on the way out
		{"owner", false, 0}, // not a role
		{"PROJECT.OWNER", false, 0},
	}
	for _, tt := range tests {
		if got := ValidRole(tt.role); got != tt.valid {
			t.Errorf("ValidRole(%q) = %v, want %v", tt.role, got, tt.valid)
		}
		if got := RolePowerLevel(tt.role); got != tt.level {
			t.Errorf("RolePowerLevel(%q) = %d, want %d", tt.role, got, tt.level)
		}
	}
	if BotPowerLevel != 100 {
		t.Errorf("BotPowerLevel = %d, want 100", BotPowerLevel)
	}
}

// TestMemberPowerLevel: staff who joined through the join action moderate (50), whatever
// role they hold; a higher role level is not lowered.
func TestMemberPowerLevel(t *testing.T) {
	for _, tt := range []struct {
		role  string
		staff bool
		level int
	}{
		{"", false, 0},
		{"", true, 50},
		{RoleMember, false, 0},
		{RoleMember, true, 50},
		{RoleAdmin, false, 50},
		{RoleAdmin, true, 50},
		{RoleManager, false, 0},
		{RoleManager, true, 50},
		{RoleCustomerOwner, true, 50},
	} {
		if got := MemberPowerLevel(tt.role, tt.staff); got != tt.level {
			t.Errorf("MemberPowerLevel(%q, %v) = %d, want %d", tt.role, tt.staff, got, tt.level)
		}
	}
	if StaffJoinedPowerLevel != 50 {
		t.Errorf("StaffJoinedPowerLevel = %d, want 50", StaffJoinedPowerLevel)
	}
}

// TestParseProjectRole accepts both spellings in any case and answers the platform's.
func TestParseProjectRole(t *testing.T) {
	for in, want := range map[string]string{
		"admin": RoleAdmin, "Admin": RoleAdmin, " MANAGER ": RoleManager, "member": RoleMember,
		"PROJECT.ADMIN": RoleAdmin, "project.member": RoleMember, "Project.Manager": RoleManager,
	} {
		if got, ok := ParseProjectRole(in); !ok || got != want {
			t.Errorf("ParseProjectRole(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "owner", "CUSTOMER.OWNER", "PROJECT.", "adminx"} {
		if got, ok := ParseProjectRole(in); ok {
			t.Errorf("ParseProjectRole(%q) = %q, want refused", in, got)
		}
	}
}

// TestStrongerRole is the order in which a person holding several roles in a room keeps one.
func TestStrongerRole(t *testing.T) {
	order := []string{RoleAdmin, RoleCustomerOwner, RoleManager, RoleMember}
	for i := range order {
		for j := range order {
			if got := StrongerRole(order[i], order[j]); got != (i < j) {
				t.Errorf("StrongerRole(%s, %s) = %v", order[i], order[j], got)
			}
		}
	}
}
