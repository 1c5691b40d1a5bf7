package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/matrix"
)

// ProjectTagKey is the key, in a room's creation content, that names the project the room
// was created for: it finds a room a crash left behind before its id was recorded.
const ProjectTagKey = "waldur.project"

// noticeRecreated starts the notice of a room created anew because the bot lost the old one.
const noticeRecreated = "The previous room ("

// aliasFor is the room's alias: #waldur-<project uuid hex>:<domain>.
func aliasFor(projectUUID, domain string) id.RoomAlias {
	return id.NewRoomAlias(matrix.AliasPrefix+projectUUID, domain)
}

// created is what createRoom knows of a room it has just made, so that the sync that
// follows need not read it back from the homeserver: the bot is in it, these users were
// invited, the power levels are these desired members' (createRequest), and these users
// were registered (or found already named) by this job under these display names, which
// their joins therefore carry.
type created struct {
	invited []id.UserID
	levels  map[id.UserID]int
	named   map[id.UserID]string
}

// namedAs reports whether the user's display name was set to name by the job that made
// the room (c nil: no room made).
func (c *created) namedAs(uid id.UserID, name string) bool {
	if c == nil {
		return false
	}
	n, ok := c.named[uid]
	return ok && n == name
}

// createRoom makes sure the project's room exists on the homeserver with the bot in it,
// and records its id. It is idempotent across crashes: a recorded room id is rejoined,
// and the alias is resolved first, so a room created just before a crash is adopted
// rather than created twice. It returns what it knows of a room it made itself (nil for
// a room rejoined or adopted, whose state the sync reads).
func (w *Worker) createRoom(ctx context.Context, ms *db.MatrixSettings, bot *mautrix.Client, room *db.Room) (*created, error) {
	if room.RoomID != "" {
		_, err := bot.JoinRoomByID(ctx, room.RoomID)
		if err == nil {
			return nil, nil
		}
		if !unusable(err) {
			return nil, step("rejoin room", err)
		}
	}
	nr := &newRoom{alias: aliasFor(room.ProjectUUID, ms.HomeserverDomain)}
	// A room created anew because the bot lost the old one keeps saying so.
	if strings.HasPrefix(room.Notice, noticeRecreated) {
		nr.notice = room.Notice
	}
	if adopted, err := w.adoptByAlias(ctx, ms, bot, room, nr); adopted || err != nil {
		return nil, err
	}
	// Members are registered first so that createRoom can invite them all at once.
	desired, err := w.desiredMembers(ctx, ms, room)
	if err != nil {
		return nil, err
	}
	var invite []id.UserID
	named := map[id.UserID]string{}
	kept := make([]*db.DesiredMember, 0, len(desired))
	for _, m := range desired {
		provisioned := m.Provisioned
		err := w.ensureProvisioned(ctx, ms, m)
		if errors.Is(err, ErrAccountRefused) {
			continue // someone else's account: neither invited nor given a level
		}
		kept = append(kept, m)
		if err == nil {
			invite = append(invite, m.MatrixUserID)
			if !provisioned { // provisionUser named the account just now
				named[m.MatrixUserID] = m.DisplayName()
			}
		} // else: the member sync that follows retries and reports it
	}
	desired = kept
	if !room.CreateStartedAt.IsZero() {
		if adopted, err := w.adoptInterrupted(ctx, ms, bot, room, nr); adopted || err != nil {
			return nil, err
		}
	}
	made, err := w.makeRoom(ctx, ms, bot, room, nr, desired, invite)
	if made != nil {
		made.named = named
	}
	return made, err
}

// newRoom is what a room is to be created or adopted with: its alias ("" when it must
// do without) and the notice staff see.
type newRoom struct {
	alias  id.RoomAlias
	notice string
}

// withoutAlias gives up the alias, saying why in the notice.
func (nr *newRoom) withoutAlias(why string) {
	nr.notice = strings.TrimSpace(nr.notice + " " + why)
	nr.alias = ""
}

// record stores the room's id, alias and notice as soon as the room exists on the
// homeserver, even if the worker is stopping.
func (w *Worker) record(ctx context.Context, room *db.Room, roomID id.RoomID, nr *newRoom) error {
	if err := w.store.SetRoomHomeserverID(context.WithoutCancel(ctx), room.ID, roomID, nr.alias, nr.notice); err != nil {
		return err
	}
	room.RoomID, room.RoomAlias, room.Notice = roomID, nr.alias, nr.notice
	return nil
}

// adoptByAlias resolves the room's alias: a room it points at that the bot can join is
// this project's room, made before a crash (adopted: recorded, and done). An alias the
// bot cannot use is freed for the new room, or given up when the homeserver keeps it.
func (w *Worker) adoptByAlias(ctx context.Context, ms *db.MatrixSettings, bot *mautrix.Client, room *db.Room, nr *newRoom) (adopted bool, err error) {
	resolved, err := bot.ResolveAlias(ctx, nr.alias)
	switch {
	case errors.Is(err, mautrix.MNotFound):
		return false, nil
	case err != nil:
		return false, step("resolve alias", err)
	}
	_, jerr := bot.JoinRoomByID(ctx, resolved.RoomID)
	if jerr == nil {
		w.log.Info("adopted a room by its alias", "room", room.UUID, "room_id", resolved.RoomID, "alias", nr.alias)
		return true, w.record(ctx, room, resolved.RoomID, nr)
	}
	if !unusable(jerr) {
		return false, step("join room of alias", jerr)
	}
	// The alias points at a room the bot cannot use: move it to the new room, or
	// create the room without it when the homeserver does not let go of it.
	if _, err := bot.DeleteAlias(ctx, nr.alias); err != nil && !errors.Is(err, mautrix.MNotFound) {
		if !unusable(err) {
			return false, step("free alias", err)
		}
		nr.withoutAlias(fmt.Sprintf("The alias %s still points to the previous room (%s) and could not be moved (%s); the room was created without an alias.",
			nr.alias, resolved.RoomID, describe(ms, err)))
	}
	return false, nil
}

// adoptInterrupted handles a room whose earlier createRoom got no recorded answer (the
// process died, the request timed out): the homeserver may have made the room anyway,
// without its alias, and may still be making it. Once that has settled (errInDoubt
// until then), the room it made is adopted, given its alias when the homeserver allows.
func (w *Worker) adoptInterrupted(ctx context.Context, ms *db.MatrixSettings, bot *mautrix.Client, room *db.Room, nr *newRoom) (adopted bool, err error) {
	if until := room.CreateStartedAt.Add(w.opts.CreateSettle); time.Now().Before(until) {
		return false, &errInDoubt{until: until}
	}
	orphan, err := w.findOrphan(ctx, bot, room)
	if err != nil {
		return false, step("look for a room left by an interrupted creation", err)
	}
	if orphan == "" {
		return false, nil
	}
	if nr.alias != "" {
		if _, err := bot.CreateAlias(ctx, nr.alias, orphan); err != nil {
			if !unusable(err) {
				return false, step("set alias", err)
			}
			nr.withoutAlias(fmt.Sprintf("The alias %s is taken on the homeserver (%s); the room has no alias.", nr.alias, describe(ms, err)))
		}
	}
	w.log.Info("adopted a room left by an interrupted creation", "room", room.UUID, "room_id", orphan)
	return true, w.record(ctx, room, orphan, nr)
}

// makeRoom creates the room with the desired members' power levels, inviting those
// registered, and records it. The creation is marked started first, so that a crash
// before its answer is recorded leads to adoptInterrupted, not to a second room. An
// alias the homeserver refuses is given up and the room created without it.
func (w *Worker) makeRoom(ctx context.Context, ms *db.MatrixSettings, bot *mautrix.Client, room *db.Room, nr *newRoom,
	desired []*db.DesiredMember, invite []id.UserID) (*created, error) {
	if err := w.store.SetCreateStarted(ctx, room.ID, true); err != nil {
		return nil, err
	}
	room.CreateStartedAt = time.Now()
	req := createRequest(ms, room, desired)
	req.Invite = invite
	if nr.alias == "" {
		req.RoomAliasName = ""
	}
	resp, err := bot.CreateRoom(ctx, req)
	if nr.alias != "" && (errors.Is(err, mautrix.MRoomInUse) || errors.Is(err, mautrix.MExclusive)) {
		nr.withoutAlias(fmt.Sprintf("The alias %s is taken on the homeserver (%s); the room was created without an alias.", nr.alias, describe(ms, err)))
		req.RoomAliasName = ""
		resp, err = bot.CreateRoom(ctx, req)
	}
	if err != nil {
		if unusable(err) {
			// Refused outright: no room was made, there is nothing to look for later.
			if cerr := w.store.SetCreateStarted(context.WithoutCancel(ctx), room.ID, false); cerr != nil {
				return nil, cerr
			}
		}
		return nil, step("create room", err)
	}
	if err := w.record(ctx, room, resp.RoomID, nr); err != nil {
		return nil, err
	}
	made := &created{invited: invite, levels: map[id.UserID]int{}}
	for _, m := range desired {
		made.levels[m.MatrixUserID] = m.PowerLevel()
	}
	return made, nil
}

// findOrphan looks among the rooms the bot is in, and no managed room records, for one
// created for this room's project; "" when there is none.
func (w *Worker) findOrphan(ctx context.Context, bot *mautrix.Client, room *db.Room) (id.RoomID, error) {
	jr, err := bot.JoinedRooms(ctx)
	if err != nil {
		return "", err
	}
	known, err := w.store.KnownRoomIDs(ctx, jr.JoinedRooms)
	if err != nil {
		return "", err
	}
	for _, r := range jr.JoinedRooms {
		if known[r] {
			continue
		}
		var create map[string]any
		if err := bot.StateEvent(ctx, r, event.StateCreate, "", &create); err != nil {
			if unusable(err) {
				continue
			}
			return "", err
		}
		if create[ProjectTagKey] == room.ProjectUUID {
			return r, nil
		}
	}
	return "", nil
}

// createRequest is the createRoom body: private, invite only, history shared with members,
// not federated, named after the project, with the project's power levels.
func createRequest(ms *db.MatrixSettings, room *db.Room, desired []*db.DesiredMember) *mautrix.ReqCreateRoom {
	users := map[id.UserID]int{ms.BotUserID(): db.BotPowerLevel}
	for _, m := range desired {
		if pl := m.PowerLevel(); pl > 0 && m.MatrixUserID != "" {
			users[m.MatrixUserID] = pl
		}
	}
	restricted := plRestricted
	empty := ""
	return &mautrix.ReqCreateRoom{
		Visibility:      "private",
		Preset:          "private_chat",
		RoomAliasName:   matrix.AliasPrefix + room.ProjectUUID,
		Name:            room.ProjectName,
		CreationContent: map[string]any{"m.federate": false, ProjectTagKey: room.ProjectUUID},
		InitialState: []*event.Event{
			{Type: event.StateJoinRules, StateKey: &empty, Content: event.Content{Parsed: &event.JoinRulesEventContent{JoinRule: event.JoinRuleInvite}}},
			{Type: event.StateHistoryVisibility, StateKey: &empty, Content: event.Content{Parsed: &event.HistoryVisibilityEventContent{HistoryVisibility: event.HistoryVisibilityShared}}},
			{Type: event.StateGuestAccess, StateKey: &empty, Content: event.Content{Parsed: &event.GuestAccessEventContent{GuestAccess: event.GuestAccessForbidden}}},
		},
		PowerLevelOverride: &event.PowerLevelsEventContent{
			Users:         users,
			EventsDefault: 0,
			// Presets give admins (50) a say over some state (name, avatar, alias);
			// here every state change stays with the bot, which follows the project.
			Events:          restrictedStateEvents(restricted),
			StateDefaultPtr: &restricted,
			InvitePtr:       &restricted,
			KickPtr:         &restricted,
			BanPtr:          &restricted,
			RedactPtr:       &restricted,
		},
	}
}

// restrictedStateEvents lists the state events that room presets open to lower power
// levels, pinned to level.
func restrictedStateEvents(level int) map[string]int {
	out := map[string]int{}
	for _, t := range []string{"m.room.name", "m.room.topic", "m.room.avatar", "m.room.canonical_alias", "m.room.power_levels",
		"m.room.history_visibility", "m.room.join_rules", "m.room.tombstone", "m.room.encryption", "m.room.server_acl", "m.room.pinned_events"} {
		out[t] = level
	}
	return out
}
