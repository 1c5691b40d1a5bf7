package bot

import "testing"

// TestNotificationTexts: the texts of MATRIX.md section 6, word for word.
func TestNotificationTexts(t *testing.T) {
	tests := []struct{ got, want string }{
		{RoleGranted("Alice Smith", "PROJECT.ADMIN"), "Alice Smith has been granted the Project Admin role."},
		{RoleGranted("Bob", "CUSTOMER.OWNER"), "Bob has been granted the Customer Owner role."},
		{RoleRevoked("Alice Smith", "PROJECT.MEMBER"), "Alice Smith has lost the Project Member role."},
		{RoleGranted("Carol", PlatformRole("manager")), "Carol has been granted the Project Manager role."},
		{StaffJoined("Dan Staff"), "Dan Staff joined the room."},
		{StaffLeft("Dan Staff"), "Dan Staff left the room."},
		{RoomDeactivated(false), "Chat room was deactivated"},
		{RoomDeactivated(true), "Chat room was deactivated due to project termination"},
		{RoomReactivated(), "Chat room was reactivated"},
		{RoleGranted("a_b", "PROJECT.ADMIN"), `a\_b has been granted the Project Admin role.`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %q\nwant %q", tt.got, tt.want)
		}
	}
	// The text readers see for an escaped name is the name.
	if got := Render(RoleGranted("a_b", "PROJECT.ADMIN")).FormattedBody; got != "a_b has been granted the Project Admin role." {
		t.Errorf("%q", got)
	}
}

func TestRoleName(t *testing.T) {
	for in, want := range map[string]string{
		"PROJECT.ADMIN":   "Project Admin",
		"PROJECT.MANAGER": "Project Manager",
		"CUSTOMER.OWNER":  "Customer Owner",
		"project.member":  "Project Member",
		"SOME_ROLE.X":     "Some Role X",
	} {
		if got := RoleName(in); got != want {
			t.Errorf("RoleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOrderChanged(t *testing.T) {
	tests := []struct {
		state, typ, offering, by string
		want                     string
		ok                       bool
	}{
		{"executing", "Create", "Small VM", "Alice", "Order approved: Create of Small VM (requested by Alice).", true},
		{"done", "Update", "Small VM", "Alice", "Order completed: Update of Small VM (requested by Alice).", true},
		{"rejected", "Create", "Big VM", "Bob", "Order rejected: Create of Big VM (requested by Bob).", true},
		{"canceled", "Terminate", "Big VM", "Bob", "Order canceled: Terminate of Big VM (requested by Bob).", true},
		{"erred", "Create", "Big VM", "Bob", "Order failed: Create of Big VM (requested by Bob).", true},
		{"erred", "Create", "Big VM", "", "Order failed: Create of Big VM.", true},
		{"erred", "Create", "<b>VM</b>", "*x*", `Order failed: Create of \<b\>VM\</b\> (requested by \*x\*).`, true},
		{"pending-consumer", "Create", "VM", "Bob", "", false},
		{"pending-provider", "Create", "VM", "Bob", "", false},
		{"pending-project", "Create", "VM", "Bob", "", false},
		{"pending-start-date", "Create", "VM", "Bob", "", false},
		{"", "Create", "VM", "Bob", "", false},
	}
	for _, tt := range tests {
		got, ok := OrderChanged(tt.state, tt.typ, tt.offering, tt.by)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: %q %v, want %q %v", tt.state, got, ok, tt.want, tt.ok)
		}
	}
}
