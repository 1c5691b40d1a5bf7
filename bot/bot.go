// Package bot is the bot in the project rooms: it answers commands (!help, !status,
// !orders, !members) and words the notifications, and its Sender posts every message
// through one durable outbox (db.OutboxMessage) so that none is lost or posted twice.
//
// Commands reach the outbox without this package: the webhook picks them out of a
// homeserver transaction (IsCommand) and the recorder queues them in the transaction that
// records the txnId. The answer is composed when the Sender first sends the row (Bot.Reply),
// from what this server knows (Directory, CustomerOwners) and, when one is connected,
// from the platform (Platform).
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
)

// Directory is what this server knows about a room and its people.
type Directory interface {
	// RoomByID returns the managed room (its project's id, uuid and name).
	RoomByID(ctx context.Context, roomPK int64) (*db.Room, error)
	// BotRoomMembers lists the room's people with a Matrix account, power level and
	// last known membership.
	BotRoomMembers(ctx context.Context, roomPK int64) ([]db.BotMember, error)
	// SenderProjectRole is the project role of the active user whose Matrix account is
	// sender, "" when there is none.
	SenderProjectRole(ctx context.Context, projectID int64, sender id.UserID) (string, error)
}

var _ Directory = (*db.Store)(nil)

// CustomerOwners says whether a Matrix user owns the customer a project belongs to: they
// may ask the bot too. Customers are mirrored by the platform sync; until then there is
// none (nil in Config).
type CustomerOwners interface {
	IsCustomerOwner(ctx context.Context, projectUUID string, sender id.UserID) (bool, error)
}

// Resource is a platform resource as !status reads it.
type Resource struct {
	Name         string
	State        string // Creating, OK, Erred, Updating, Terminating, Terminated
	OfferingName string
}

// Order is a platform order as !orders reads it.
type Order struct {
	State        string // pending-consumer, ..., executing, done, erred, canceled, rejected
	Type         string // Create, Update, Terminate, Restore
	ResourceName string
	OfferingName string
	CreatedBy    string // the requester: full name, else username
	Created      time.Time
}

// Platform reads a project's resources and orders live (the platform connector: one
// request each, the first page and the total count, as waldur.Client's live reads do).
type Platform interface {
	// ProjectResources returns up to limit of the project's resources in the given
	// states (none: every state), and how many match in all.
	ProjectResources(ctx context.Context, projectUUID string, states []string, limit int) ([]Resource, int, error)
	// ProjectOrders returns up to limit of the project's orders in the given states
	// (none: every state), newest first, and how many match in all.
	ProjectOrders(ctx context.Context, projectUUID string, states []string, limit int) ([]Order, int, error)
}

// Config wires a Bot.
type Config struct {
	Directory Directory      // required
	Owners    CustomerOwners // nil: nobody is a customer owner (no customers known yet)
	Platform  Platform       // nil: no platform connected; answers say so
	// PlatformTimeout bounds each answer's platform reads (default 5s): a slow platform
	// gets an answer in words, never silence.
	PlatformTimeout time.Duration
	// Self returns the bot's Matrix user ID and display name, listed first by !members.
	Self func(ctx context.Context) (id.UserID, string)
	Log  *slog.Logger
}

// Bot composes the answers to commands.
type Bot struct {
	cfg Config
}

// New returns a Bot.
func New(cfg Config) *Bot {
	if cfg.PlatformTimeout <= 0 {
		cfg.PlatformTimeout = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Self == nil {
		cfg.Self = func(context.Context) (id.UserID, string) { return "", "" }
	}
	return &Bot{cfg: cfg}
}

// Texts of the answers.
const (
	// HelpText is !help's answer.
	HelpText = "**Commands**\n\n" +
		"- `!help`: this list\n" +
		"- `!status`: what needs attention in the project\n" +
		"- `!orders`: the project's last 5 orders\n" +
		"- `!members`: who is in this room"
	// NoAccessText answers anyone who has no role in the room's project.
	NoAccessText = "You don't have access to this room's project."
	// NoPlatformText says that the platform's data is not available.
	NoPlatformText = "No platform is connected, so resources and orders are not shown."
)

// approvalStates are the states of an order waiting for someone to approve it.
var approvalStates = []string{"pending-consumer", "pending-provider", "pending-project"}

const (
	maxErroredNames = 5
	lastOrders      = 5
	// maxMembersListed bounds !members, so a large project's answer stays a chat message
	// well within the homeserver's event size.
	maxMembersListed = 50
)

// Reply composes the answer to the command a reply row carries (Composer). It never
// fails: a failure while answering is answered in words.
func (b *Bot) Reply(ctx context.Context, m *db.OutboxMessage) string {
	return b.Answer(ctx, m.RoomPK, m.CommandSender, m.CommandBody)
}

// Answer composes the Markdown answer to text, a command sent by sender in the room.
func (b *Bot) Answer(ctx context.Context, roomPK int64, sender id.UserID, text string) string {
	name, _ := Parse(text)
	room, err := b.cfg.Directory.RoomByID(ctx, roomPK)
	if err != nil {
		return b.trouble(ctx, name, "read the room", err)
	}
	ok, err := b.allowed(ctx, room, sender)
	if err != nil {
		return b.trouble(ctx, name, "check access", err)
	}
	if !ok {
		return NoAccessText
	}
	switch name {
	case CmdHelp:
		return HelpText
	case CmdStatus:
		return b.status(ctx, room)
	case CmdOrders:
		return b.orders(ctx, room)
	case CmdMembers:
		return b.members(ctx, room)
	}
	return UnknownCommand(name)
}

// UnknownCommand answers a command the bot does not know: "Unknown command: `!x`" and
// the help.
func UnknownCommand(name string) string {
	if r := []rune(name); len(r) > maxEcho {
		name = string(r[:maxEcho]) + "…"
	}
	return "Unknown command: " + format.SafeMarkdownCode("!"+name) + "\n\n" + HelpText
}

// trouble answers a command that could not be answered: a short error reply, never
// silence. The cause is logged, not shown.
func (b *Bot) trouble(ctx context.Context, name, what string, err error) string {
	b.cfg.Log.ErrorContext(ctx, "bot: answer a command", "command", name, "step", what, "error", err)
	return "Sorry, something went wrong while answering " + format.SafeMarkdownCode("!"+name) + ". Please try again later."
}

func (b *Bot) allowed(ctx context.Context, room *db.Room, sender id.UserID) (bool, error) {
	role, err := b.cfg.Directory.SenderProjectRole(ctx, room.ProjectID, sender)
	if err != nil || role != "" {
		return role != "", err
	}
	if b.cfg.Owners == nil {
		return false, nil
	}
	return b.cfg.Owners.IsCustomerOwner(ctx, room.ProjectUUID, sender)
}

// platformTrouble says in words why the platform could not be read.
func (b *Bot) platformTrouble(ctx context.Context, err error) string {
	b.cfg.Log.WarnContext(ctx, "bot: read the platform", "error", err)
	if errors.Is(err, context.DeadlineExceeded) {
		return "The platform did not answer in time; please try again later."
	}
	return "The platform could not be read; please try again later."
}

func projectTitle(room *db.Room) string { return "**" + EscapeMarkdown(room.ProjectName) + "**" }

func (b *Bot) status(ctx context.Context, room *db.Room) string {
	title := projectTitle(room)
	if b.cfg.Platform == nil {
		members, err := b.cfg.Directory.BotRoomMembers(ctx, room.ID)
		if err != nil {
			return b.trouble(ctx, CmdStatus, "read the members", err)
		}
		joined, invited := 0, 0
		for _, m := range members {
			switch m.Membership {
			case "join":
				joined++
			case "invite":
				invited++
			}
		}
		return fmt.Sprintf("%s\n\nRoom members: %d joined, %d invited.\n%s", title, joined, invited, NoPlatformText)
	}
	// One request per number shown, side by side, within one timeout: the errored
	// resources (the first names and the total), the orders waiting for approval, and
	// the resources being created, updated and terminated.
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PlatformTimeout)
	defer cancel()
	var (
		wg      sync.WaitGroup
		errored []Resource
		totals  [5]int // errored, waiting, creating, updating, terminating
		errs    [5]error
	)
	read := func(i int, f func() (int, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			totals[i], errs[i] = f()
		}()
	}
	read(0, func() (n int, err error) {
		errored, n, err = b.cfg.Platform.ProjectResources(ctx, room.ProjectUUID, []string{"Erred"}, maxErroredNames)
		return n, err
	})
	read(1, func() (int, error) {
		_, n, err := b.cfg.Platform.ProjectOrders(ctx, room.ProjectUUID, approvalStates, 1)
		return n, err
	})
	for i, state := range []string{"Creating", "Updating", "Terminating"} {
		read(2+i, func() (int, error) {
			_, n, err := b.cfg.Platform.ProjectResources(ctx, room.ProjectUUID, []string{state}, 1)
			return n, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return title + "\n\n" + b.platformTrouble(ctx, err)
	}
	var lines []string
	if n := max(totals[0], len(errored)); n > 0 {
		var names []string
		for _, r := range errored[:min(len(errored), maxErroredNames)] {
			names = append(names, EscapeMarkdown(r.Name))
		}
		line := fmt.Sprintf("- Errored resources (%d): %s", n, strings.Join(names, ", "))
		if more := n - len(names); more > 0 {
			line += fmt.Sprintf(" +%d more", more)
		}
		lines = append(lines, line)
	}
	if totals[1] > 0 {
		lines = append(lines, fmt.Sprintf("- Orders waiting for approval: %d", totals[1]))
	}
	var busy []string
	for i, verb := range []string{"created", "updated", "terminated"} {
		if n := totals[2+i]; n > 0 {
			busy = append(busy, fmt.Sprintf("%d being %s", n, verb))
		}
	}
	if len(busy) > 0 {
		lines = append(lines, "- Resources in progress: "+strings.Join(busy, ", "))
	}
	if len(lines) == 0 {
		return title + ": all clear."
	}
	return title + "\n\n" + strings.Join(lines, "\n")
}

func (b *Bot) orders(ctx context.Context, room *db.Room) string {
	title := projectTitle(room)
	if b.cfg.Platform == nil {
		return title + "\n\n" + NoPlatformText
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PlatformTimeout)
	defer cancel()
	orders, _, err := b.cfg.Platform.ProjectOrders(ctx, room.ProjectUUID, nil, lastOrders)
	if err != nil {
		return title + "\n\n" + b.platformTrouble(ctx, err)
	}
	if len(orders) == 0 {
		return title + ": no orders."
	}
	lines := make([]string, 0, len(orders))
	for _, o := range orders[:min(len(orders), lastOrders)] {
		resource := o.ResourceName
		if resource == "" {
			resource = o.OfferingName
		}
		if resource == "" {
			resource = "-"
		}
		date := "-"
		if !o.Created.IsZero() {
			date = o.Created.UTC().Format(time.DateOnly)
		}
		lines = append(lines, fmt.Sprintf("- %s, %s, %s, %s", EscapeMarkdown(o.State), EscapeMarkdown(o.Type), EscapeMarkdown(resource), date))
	}
	return title + ": last orders\n\n" + strings.Join(lines, "\n")
}

// memberRole is how !members marks someone: admin from power level 50 on.
func memberRole(powerLevel int) string {
	if powerLevel >= 50 {
		return "admin"
	}
	return "member"
}

func (b *Bot) members(ctx context.Context, room *db.Room) string {
	members, err := b.cfg.Directory.BotRoomMembers(ctx, room.ID)
	if err != nil {
		return b.trouble(ctx, CmdMembers, "read the members", err)
	}
	line := func(name string, user id.UserID, role string) string {
		if name == "" {
			return fmt.Sprintf("- %s: %s", EscapeMarkdown(string(user)), role)
		}
		return fmt.Sprintf("- %s (%s): %s", EscapeMarkdown(name), EscapeMarkdown(string(user)), role)
	}
	var lines []string
	self, selfName := b.cfg.Self(ctx)
	if self != "" {
		lines = append(lines, line(selfName, self, "admin")) // the bot holds power level 100
	}
	more := 0
	for _, m := range members {
		if m.Membership != "join" || m.UserID == self {
			continue
		}
		if len(lines) > maxMembersListed {
			more++
			continue
		}
		lines = append(lines, line(m.DisplayName, m.UserID, memberRole(m.PowerLevel)))
	}
	if more > 0 {
		lines = append(lines, fmt.Sprintf("- +%d more", more))
	}
	return projectTitle(room) + ": members\n\n" + strings.Join(lines, "\n")
}
