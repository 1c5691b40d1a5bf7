package db

import "testing"

// TestRolePowerLevels pins the one rule of who may do what in a project's room (the
// README's table says the same).
func TestRolePowerLevels(t *testing.T) {
	tests := []struct {
		role  string
		valid bool
		level int
	}{
		{RoleAdmin, true, 50},
		{RoleManager, true, 50},
		{RoleMember, true, 0},
		{"", false, 0},      // no role: a former member on the way out
		{"owner", false, 0}, // not a project role
		{"Admin", false, 0}, // roles are lowercase
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
	} {
		if got := MemberPowerLevel(tt.role, tt.staff); got != tt.level {
			t.Errorf("MemberPowerLevel(%q, %v) = %d, want %d", tt.role, tt.staff, got, tt.level)
		}
	}
	if StaffJoinedPowerLevel != 50 {
		t.Errorf("StaffJoinedPowerLevel = %d, want 50", StaffJoinedPowerLevel)
	}
}
