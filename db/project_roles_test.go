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
