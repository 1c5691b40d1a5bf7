package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"matrixas/db"
)

// fakeDirectory is what this server knows, in memory.
type fakeDirectory struct {
	room    *db.Room
	members []db.BotMember
	roles   map[id.UserID]string
	err     error // every read fails with it when set
}

func (f *fakeDirectory) RoomByID(_ context.Context, roomPK int64) (*db.Room, error) {
	if f.err != nil {
		return nil, f.err
	}
	if roomPK != f.room.ID {
		return nil, db.ErrNotFound
	}
	return f.room, nil
}

func (f *fakeDirectory) BotRoomMembers(context.Context, int64) ([]db.BotMember, error) {
	return f.members, f.err
}

func (f *fakeDirectory) SenderProjectRole(_ context.Context, projectID int64, sender id.UserID) (string, error) {
	if projectID != f.room.ProjectID {
		return "", nil
	}
	return f.roles[sender], f.err
}

type fakeOwners map[id.UserID]bool

func (f fakeOwners) IsCustomerOwner(_ context.Context, _ string, sender id.UserID) (bool, error) {
	return f[sender], nil
}

// fakePlatform answers from lists, or fails, or hangs until the context ends.
type fakePlatform struct {
	resources []Resource
	orders    []Order // newest first
	err       error
	hang      bool
}

func (f *fakePlatform) ProjectResources(ctx context.Context, projectUUID string, states []string, limit int) ([]Resource, int, error) {
	if f.hang {
		<-ctx.Done()
		return nil, 0, ctx.Err()
	}
	if f.err != nil {
		return nil, 0, f.err
	}
	var out []Resource
	for _, r := range f.resources {
		match := len(states) == 0
		for _, s := range states {
			match = match || r.State == s
		}
		if match {
			out = append(out, r)
		}
	}
	return out[:min(limit, len(out))], len(out), nil
}

func (f *fakePlatform) ProjectOrders(ctx context.Context, projectUUID string, states []string, limit int) ([]Order, int, error) {
	if f.hang {
		<-ctx.Done()
		return nil, 0, ctx.Err()
	}
	if f.err != nil {
		return nil, 0, f.err
	}
	var out []Order
	for _, o := range f.orders {
		match := len(states) == 0
		for _, s := range states {
			match = match || o.State == s
		}
		if match {
			out = append(out, o)
		}
	}
	total := len(out)
	return out[:min(limit, len(out))], total, nil
}

const (
	alice   id.UserID = "@alice:example.org" // project admin
	bob     id.UserID = "@bob:example.org"   // project member
	owner   id.UserID = "@olga:example.org"  // owner of the customer, no project role
	mallory id.UserID = "@mallory:example.org"
	botID   id.UserID = "@waldur-bot:example.org"
)

func newTestBot(p Platform) (*Bot, *fakeDirectory) {
	dir := &fakeDirectory{
		room: &db.Room{ID: 7, ProjectID: 3, ProjectUUID: "p-uuid", ProjectName: "Apollo <11>", State: db.RoomActive},
		members: []db.BotMember{
			{UserID: alice, DisplayName: "Alice *A*", PowerLevel: 50, Membership: "join"},
			{UserID: bob, DisplayName: "bob", PowerLevel: 0, Membership: "join"},
			{UserID: "@carol:example.org", DisplayName: "Carol", PowerLevel: 0, Membership: "invite"},
			{UserID: "@dave:example.org", DisplayName: "Dave", PowerLevel: 100, Membership: "leave"},
		},
		roles: map[id.UserID]string{alice: db.RoleAdmin, bob: db.RoleMember},
	}
	b := New(Config{
		Directory: dir,
		Owners:    fakeOwners{owner: true},
		Platform:  p,
		Self:      func(context.Context) (id.UserID, string) { return botID, "Waldur bot" },
		// Short, so the hanging platform's test is quick; not asserted on.
		PlatformTimeout: 50 * time.Millisecond,
	})
	return b, dir
}

func day(d int) time.Time { return time.Date(2026, 3, d, 10, 0, 0, 0, time.UTC) }

// TestAnswers: every command's answer, word for word.
func TestAnswers(t *testing.T) {
	ctx := context.Background()
	var errored []Resource
	for i := range 7 {
		errored = append(errored, Resource{Name: fmt.Sprintf("vm-%d", i), State: "Erred"})
	}
	busy := &fakePlatform{
		resources: append(errored,
			Resource{Name: "new", State: "Creating"}, Resource{Name: "fine", State: "OK"},
			Resource{Name: "gone", State: "Terminating"}, Resource{Name: "gone2", State: "Terminating"}),
		orders: []Order{
			{State: "pending-consumer", Type: "Create", ResourceName: "new", Created: day(9)},
			{State: "pending-provider", Type: "Update", ResourceName: "vm-1", Created: day(8)},
			{State: "done", Type: "Create", ResourceName: "vm_1", Created: day(7)},
			{State: "erred", Type: "Create", OfferingName: "Big VM", Created: day(6)},
			{State: "executing", Type: "Terminate", ResourceName: "old", Created: day(5)},
			{State: "done", Type: "Create", ResourceName: "oldest", Created: day(4)},
		},
	}
	calm := &fakePlatform{resources: []Resource{{Name: "fine", State: "OK"}}}
	tests := []struct {
		name     string
		platform Platform
		sender   id.UserID
		text     string
		want     string
	}{
		{"help", nil, alice, "!help", HelpText},
		{"help, any case, arguments", nil, bob, "!HELP me please", HelpText},
		{"unknown", nil, bob, "!deploy now", "Unknown command: `!deploy`\n\n" + HelpText},
		{"unknown with a backtick", nil, bob, "!a`b", "Unknown command: ``!a`b``\n\n" + HelpText},
		{"refused: not in the project", nil, mallory, "!help", NoAccessText},
		{"refused: unknown command too", nil, mallory, "!nope", NoAccessText},
		{"owner of the customer", nil, owner, "!help", HelpText},
		{"members: the bot first, joined only", nil, bob, "!members",
			"**Apollo \\<11\\>**: members\n\n" +
				"- Waldur bot (@waldur-bot:example.org): admin\n" +
				"- Alice \\*A\\* (@alice:example.org): admin\n" +
				"- bob (@bob:example.org): member"},
		{"status without a platform", nil, alice, "!status",
			"**Apollo \\<11\\>**\n\nRoom members: 2 joined, 1 invited.\n" + NoPlatformText},
		{"orders without a platform", nil, alice, "!orders", "**Apollo \\<11\\>**\n\n" + NoPlatformText},
		{"status", busy, alice, "!status",
			"**Apollo \\<11\\>**\n\n" +
				"- Errored resources (7): vm-0, vm-1, vm-2, vm-3, vm-4 +2 more\n" +
				"- Orders waiting for approval: 2\n" +
				"- Resources in progress: 1 being created, 2 being terminated"},
		{"status: all clear", calm, alice, "!status", "**Apollo \\<11\\>**: all clear."},
		{"orders: the last five", busy, alice, "!orders",
			"**Apollo \\<11\\>**: last orders\n\n" +
				"- pending-consumer, Create, new, 2026-03-09\n" +
				"- pending-provider, Update, vm-1, 2026-03-08\n" +
				"- done, Create, vm\\_1, 2026-03-07\n" +
				"- erred, Create, Big VM, 2026-03-06\n" +
				"- executing, Terminate, old, 2026-03-05"},
		{"orders: none", calm, alice, "!orders", "**Apollo \\<11\\>**: no orders."},
		{"status: platform error", &fakePlatform{err: errors.New("HTTP 502")}, alice, "!status",
			"**Apollo \\<11\\>**\n\nThe platform could not be read; please try again later."},
		{"orders: platform error", &fakePlatform{err: errors.New("token rejected")}, alice, "!orders",
			"**Apollo \\<11\\>**\n\nThe platform could not be read; please try again later."},
		{"status: platform too slow", &fakePlatform{hang: true}, alice, "!status",
			"**Apollo \\<11\\>**\n\nThe platform did not answer in time; please try again later."},
		{"orders: platform too slow", &fakePlatform{hang: true}, alice, "!orders",
			"**Apollo \\<11\\>**\n\nThe platform did not answer in time; please try again later."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newTestBot(tt.platform)
			got := b.Reply(ctx, &db.OutboxMessage{Kind: db.OutboxReply, RoomPK: 7, CommandSender: tt.sender, CommandBody: tt.text})
			if got != tt.want {
				t.Errorf("answer\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestAnswerWhenTheStoreFails: a failure while answering gets a short reply, never
// silence, and never the cause's text.
func TestAnswerWhenTheStoreFails(t *testing.T) {
	b, dir := newTestBot(nil)
	dir.err = errors.New("database is locked: /secret/path")
	got := b.Answer(context.Background(), 7, alice, "!members")
	if got != "Sorry, something went wrong while answering `!members`. Please try again later." {
		t.Errorf("%q", got)
	}
}

// TestMembersHTMLIsEscaped: a display name with HTML or Markdown shows as itself.
func TestMembersHTMLIsEscaped(t *testing.T) {
	b, dir := newTestBot(nil)
	dir.members = append(dir.members, db.BotMember{UserID: "@eve:example.org", DisplayName: "<script>x</script> **Eve** [a](javascript:x)", Membership: "join"})
	dir.room.ProjectName = "<img src=x onerror=alert(1)>"
	html := Render(b.Answer(context.Background(), 7, alice, "!members")).FormattedBody
	for _, bad := range []string{"<script", "<img", "<a", "<strong>Eve"} {
		if strings.Contains(html, bad) {
			t.Errorf("%s in %q", bad, html)
		}
	}
	if !strings.Contains(html, "&lt;script&gt;x&lt;/script&gt; **Eve** [a](javascript:x) (@eve:example.org): member") {
		t.Errorf("%q", html)
	}
}

// TestMembersListIsBounded: a large room's answer lists the first members and counts
// the rest.
func TestMembersListIsBounded(t *testing.T) {
	b, dir := newTestBot(nil)
	dir.members = nil
	for i := range 80 {
		dir.members = append(dir.members, db.BotMember{UserID: id.UserID(fmt.Sprintf("@u%02d:example.org", i)), DisplayName: fmt.Sprintf("U%02d", i), Membership: "join"})
	}
	got := b.Answer(context.Background(), 7, alice, "!members")
	lines := strings.Split(got, "\n")
	if n := len(lines); n != 2+1+maxMembersListed+1 || lines[len(lines)-1] != "- +30 more" || !strings.Contains(got, "U49") || strings.Contains(got, "U50") {
		t.Errorf("%d lines, last %q", len(lines), lines[len(lines)-1])
	}
}
