package provision

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/matrix"
)

// Power levels of a managed room (MATRIX.md section 4).
const (
	plBot        = 100
	plModerator  = 50  // project admins and managers
	plRestricted = 100 // invite, kick, ban, redact, state_default
)

// Kick reasons shown to the users removed.
const (
	ReasonRoleRemoved  = "Role removed"
	ReasonRoomDisabled = "The project's chat room was disabled"
)

// ProjectTagKey is the key, in a room's creation content, that names the project the room
// was created for: it finds a room a crash left behind before its id was recorded.
const ProjectTagKey = "waldur.project"

// noticeRecreated starts the notice of a room created anew because the bot lost the old one.
const noticeRecreated = "The previous room ("

// errRoomLost means the bot is not in the room and cannot get back in (an archived room
// being reactivated, a room that no longer exists): the room must be created anew.
var errRoomLost = errors.New("the bot is no longer in the room and cannot rejoin it")

// errInDoubt defers a room's creation until a createRoom whose answer never came has had
// time to finish on the homeserver; it is not a failure.
type errInDoubt struct{ until time.Time }

func (e *errInDoubt) Error() string {
	return "an interrupted room creation may still be running on the homeserver until " + e.until.Format(time.RFC3339)
}

// stepError names the step that failed, for the room's error message.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func step(name string, err error) error {
	if err == nil {
		return nil
	}
	return &stepError{step: name, err: err}
}

// Message is what staff see for a failure: the step, then the homeserver's errcode and
// error when it answered, else the transport's reason. It never carries a token.
func Message(err error) string {
	prefix := ""
	var se *stepError
	if errors.As(err, &se) {
		prefix = se.step + ": "
		err = se.err
	}
	var he mautrix.HTTPError
	if errors.As(err, &he) && he.RespError != nil && he.RespError.ErrCode != "" {
		msg := he.RespError.ErrCode
		if he.RespError.Err != "" {
			msg += ": " + he.RespError.Err
		}
		return prefix + msg
	}
	return prefix + matrix.Reason(err)
}

// describe is Message with every secret of the settings masked: a homeserver may echo
// the token it refused ("Unknown token ..."), and the text is stored, shown and logged.
func describe(ms *db.MatrixSettings, err error) string {
	return matrix.Redact(Message(err), matrix.Secrets(ms))
}

// unusable reports whether a homeserver answer means the room (or alias target) cannot be
// used by the bot: it answered with a Matrix error in the 4xx range (forbidden, not found).
func unusable(err error) bool {
	var he mautrix.HTTPError
	return errors.As(err, &he) && he.RespError != nil && he.Response != nil &&
		he.Response.StatusCode >= 400 && he.Response.StatusCode < 500
}

// aliasFor is the room's alias: #waldur-<project uuid hex>:<domain>.
func aliasFor(projectUUID, domain string) id.RoomAlias {
	return id.NewRoomAlias(matrix.AliasPrefix+projectUUID, domain)
}

// roomJob does the room's due work: create, sync members, or disable.
func (w *Worker) roomJob(ctx context.Context, ms *db.MatrixSettings, roomPK int64) {
	room, err := w.store.ClaimRoom(ctx, roomPK)
	if errors.Is(err, db.ErrRoomNotQueued) {
		return
	}
	if err != nil {
		w.logErr(ctx, "claim room", err)
		return
	}
	bot, err := matrix.Client(ms, w.opts.HTTPClient, "")
	if err != nil {
		w.logErr(ctx, "homeserver client", err)
		return
	}
	log := w.log.With("room", room.UUID, "project", room.ProjectUUID)
	kind := roomKind(room.State)
	defer func() { w.observe(ctx, kind, err) }()
	switch room.State {
	case db.RoomCreating:
		var made *created
		made, err = w.createRoom(ctx, ms, bot, room)
		if err == nil {
			err = w.syncRoom(ctx, ms, bot, room, made)
		}
		if err == nil {
			if err = w.store.FinishRoomSync(context.WithoutCancel(ctx), room.ID, room.ProjectName); err == nil {
				log.Info("room active", "room_id", room.RoomID, "alias", room.RoomAlias)
			}
		}
	case db.RoomActive:
		err = w.syncRoom(ctx, ms, bot, room, nil)
		if errors.Is(err, errRoomLost) {
			err = w.store.RecreateRoom(ctx, room.ID, noticeRecreated+room.RoomID.String()+") could not be used any more; a new one was created.")
			if err == nil {
				log.Warn("room lost on the homeserver; creating a new one", "room_id", room.RoomID)
				return
			}
		} else if err == nil {
			err = w.store.FinishRoomSync(context.WithoutCancel(ctx), room.ID, room.ProjectName)
		}
	case db.RoomDisabling:
		err = w.disableRoom(ctx, bot, room)
		if err == nil {
			if err = w.store.FinishRoomDisable(context.WithoutCancel(ctx), room.ID); err == nil {
				log.Info("room archived", "room_id", room.RoomID)
			}
		}
	}
	if err == nil {
		return
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // shutting down: the row still says what to do
	}
	var doubt *errInDoubt
	if errors.As(err, &doubt) {
		if err = w.store.DeferRoom(context.WithoutCancel(ctx), room.ID, doubt.until); err != nil {
			w.logErr(ctx, "defer room", err)
		} else {
			log.Info("waiting for an interrupted room creation to settle", "until", doubt.until)
		}
		return
	}
	msg := describe(ms, err)
	gaveUp, ferr := w.store.FailRoom(context.WithoutCancel(ctx), room.ID, msg, w.opts.MaxAttempts, w.backoff)
	switch {
	case ferr != nil:
		w.logErr(ctx, "record room failure", ferr)
	case gaveUp:
		log.Error("room failed; giving up until retried", "state", room.State, "attempts", room.Attempts+1, "error", msg)
	default:
		log.Warn("room failed; will retry", "state", room.State, "attempts", room.Attempts+1, "error", msg)
	}
}

// created is what createRoom knows of a room it has just made, so that the sync that
// follows need not read it back from the homeserver: the bot is in it, these users were
// invited, and the power levels are these desired members' (createRequest).
type created struct {
	invited []id.UserID
	levels  map[id.UserID]int
}

// createRoom makes sure the project's room exists on the homeserver with the bot in it,
// and records its id. It is idempotent across crashes: a recorded room id is rejoined,
// and the alias is resolved first, so a room created just before a crash is adopted
// rather than created twice. It returns what it knows of a room it made itself (nil for
// a room rejoined or adopted, whose state the sync reads).
func (w *Worker) createRoom(ctx context.Context, ms *db.MatrixSettings, bot *mautrix.Client, room *db.Room) (*created, error) {
	record := func(roomID id.RoomID, alias id.RoomAlias, notice string) error {
		// Recorded even if the worker is stopping: the room exists now.
		if err := w.store.SetRoomHomeserverID(context.WithoutCancel(ctx), room.ID, roomID, alias, notice); err != nil {
			return err
		}
		room.RoomID, room.RoomAlias, room.Notice = roomID, alias, notice
		return nil
	}
	if room.RoomID != "" {
		_, err := bot.JoinRoomByID(ctx, room.RoomID)
		if err == nil {
			return nil, nil
		}
		if !unusable(err) {
			return nil, step("rejoin room", err)
		}
	}
	// A room created anew because the bot lost the old one keeps saying so.
	carry := ""
	if strings.HasPrefix(room.Notice, noticeRecreated) {
		carry = room.Notice
	}
	alias := aliasFor(room.ProjectUUID, ms.HomeserverDomain)
	aliasNotice := ""
	resolved, err := bot.ResolveAlias(ctx, alias)
	switch {
	case err == nil:
		_, jerr := bot.JoinRoomByID(ctx, resolved.RoomID)
		if jerr == nil {
			w.log.Info("adopted a room by its alias", "room", room.UUID, "room_id", resolved.RoomID, "alias", alias)
			return nil, record(resolved.RoomID, alias, carry)
		}
		if !unusable(jerr) {
			return nil, step("join room of alias", jerr)
		}
		// The alias points at a room the bot cannot use: move it to the new room, or
		// create the room without it when the homeserver does not let go of it.
		if _, err := bot.DeleteAlias(ctx, alias); err != nil && !errors.Is(err, mautrix.MNotFound) {
			if !unusable(err) {
				return nil, step("free alias", err)
			}
			aliasNotice = fmt.Sprintf("The alias %s still points to the previous room (%s) and could not be moved (%s); the room was created without an alias.",
				alias, resolved.RoomID, describe(ms, err))
		}
	case errors.Is(err, mautrix.MNotFound):
	default:
		return nil, step("resolve alias", err)
	}
	// Members are registered first so that createRoom can invite them all at once.
	desired, err := w.desiredMembers(ctx, ms, room)
	if err != nil {
		return nil, err
	}
	var invite []id.UserID
	for _, m := range desired {
		if err := w.ensureProvisioned(ctx, ms, m); err == nil {
			invite = append(invite, m.MatrixUserID)
		} // else: the member sync that follows retries and reports it
	}
	notice := strings.TrimSpace(carry + " " + aliasNotice)
	if aliasNotice != "" {
		alias = ""
	}
	if !room.CreateStartedAt.IsZero() {
		// An earlier createRoom got no recorded answer (the process died, the request
		// timed out): the homeserver may have made the room anyway, without its alias,
		// and may still be making it. Once that has settled, adopt what it made.
		if until := room.CreateStartedAt.Add(w.opts.CreateSettle); time.Now().Before(until) {
			return nil, &errInDoubt{until: until}
		}
		orphan, err := w.findOrphan(ctx, bot, room)
		if err != nil {
			return nil, step("look for a room left by an interrupted creation", err)
		}
		if orphan != "" {
			if alias != "" {
				if _, err := bot.CreateAlias(ctx, alias, orphan); err != nil {
					if !unusable(err) {
						return nil, step("set alias", err)
					}
					notice = strings.TrimSpace(notice + " " + fmt.Sprintf("The alias %s is taken on the homeserver (%s); the room has no alias.", alias, describe(ms, err)))
					alias = ""
				}
			}
			w.log.Info("adopted a room left by an interrupted creation", "room", room.UUID, "room_id", orphan)
			return nil, record(orphan, alias, notice)
		}
	}
	if err := w.store.SetCreateStarted(ctx, room.ID, true); err != nil {
		return nil, err
	}
	room.CreateStartedAt = time.Now()
	req := createRequest(ms, room, desired)
	req.Invite = invite
	if alias == "" {
		req.RoomAliasName = ""
	}
	resp, err := bot.CreateRoom(ctx, req)
	if alias != "" && (errors.Is(err, mautrix.MRoomInUse) || errors.Is(err, mautrix.MExclusive)) {
		notice = strings.TrimSpace(notice + " " + fmt.Sprintf("The alias %s is taken on the homeserver (%s); the room was created without an alias.", alias, describe(ms, err)))
		req.RoomAliasName = ""
		alias = ""
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
	if err := record(resp.RoomID, alias, notice); err != nil {
		return nil, err
	}
	made := &created{invited: invite, levels: map[id.UserID]int{}}
	for _, m := range desired {
		made.levels[m.MatrixUserID] = db.RolePowerLevel(m.Role)
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
	users := map[id.UserID]int{ms.BotUserID(): plBot}
	for _, m := range desired {
		if pl := db.RolePowerLevel(m.Role); pl > 0 && m.MatrixUserID != "" {
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

// syncRoom makes the room's members, power levels and name follow the project: every
// active user with a role is registered, invited by the bot and joined (as themselves);
// managed users without a role are kicked with "Role removed". Every member is tried;
// the first failure is returned after the others were done and recorded.
func (w *Worker) syncRoom(ctx context.Context, ms *db.MatrixSettings, bot *mautrix.Client, room *db.Room, made *created) error {
	roomID := room.RoomID
	desired, err := w.desiredMembers(ctx, ms, room)
	if err != nil {
		return err
	}
	botID := ms.BotUserID()
	var membership map[id.UserID]event.Membership
	if made != nil { // just created: nobody but the bot and the invited
		membership = map[id.UserID]event.Membership{botID: event.MembershipJoin}
		for _, uid := range made.invited {
			membership[uid] = event.MembershipInvite
		}
	} else {
		membership, err = roomMembership(ctx, bot, roomID)
		if err != nil && !unusable(err) {
			return step("read members", err)
		}
	}
	if err != nil || membership[botID] != event.MembershipJoin {
		// The bot is not in the room (as after an archive): rejoin, else start over.
		if _, jerr := bot.JoinRoomByID(ctx, roomID); jerr != nil {
			if unusable(jerr) {
				return errRoomLost
			}
			return step("rejoin room", jerr)
		}
		if membership, err = roomMembership(ctx, bot, roomID); err != nil {
			return step("read members", err)
		}
	}

	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	var synced []db.MemberSync
	want := map[id.UserID]int{}
	for _, m := range desired {
		uid := m.MatrixUserID
		pl := db.RolePowerLevel(m.Role)
		want[uid] = pl
		ms2 := db.MemberSync{UserID: m.UserID, Membership: string(membership[uid]), PowerLevel: pl}
		err := w.ensureMember(ctx, ms, bot, roomID, m, membership[uid])
		if err != nil {
			ms2.LastError = describe(ms, err)
			fail(err)
		} else {
			ms2.Membership = string(event.MembershipJoin)
		}
		synced = append(synced, ms2)
	}

	// Managed users in the room without a role: kick them.
	var others []id.UserID
	for uid, mem := range membership {
		if _, ok := want[uid]; !ok && uid != botID && (mem == event.MembershipJoin || mem == event.MembershipInvite) {
			others = append(others, uid)
		}
	}
	slices.Sort(others)
	managed, err := w.store.ManagedUsers(ctx, others)
	if err != nil {
		return err
	}
	var pending []int64 // former members still in the room
	for _, uid := range others {
		userPK, ok := managed[uid]
		if !ok {
			continue // not an account this appservice manages: leave it to the room's admins
		}
		_, err := bot.KickUser(ctx, roomID, &mautrix.ReqKickUser{UserID: uid, Reason: ReasonRoleRemoved})
		if err != nil {
			fail(step("kick "+uid.String(), err))
			pending = append(pending, userPK)
		}
	}

	// A room just created with these members' levels needs no reading back.
	if made == nil || !maps.Equal(made.levels, want) {
		if err := w.syncPowerLevels(ctx, bot, roomID, botID, want); err != nil {
			fail(err)
		}
	}
	if room.RoomName != room.ProjectName {
		if _, err := bot.SendStateEvent(ctx, roomID, event.StateRoomName, "", &event.RoomNameEventContent{Name: room.ProjectName}); err != nil {
			fail(step("rename room", err))
		}
	}
	if err := w.store.SaveMembers(context.WithoutCancel(ctx), room.ID, synced, pending); err != nil {
		return err
	}
	return firstErr
}

// ensureMember brings one desired member to "join": registered, invited, joined.
func (w *Worker) ensureMember(ctx context.Context, ms *db.MatrixSettings, bot *mautrix.Client, roomID id.RoomID, m *db.DesiredMember, cur event.Membership) error {
	if cur == event.MembershipJoin {
		return nil
	}
	uid := m.MatrixUserID
	if err := w.ensureProvisioned(ctx, ms, m); err != nil {
		return err
	}
	if cur == event.MembershipBan {
		if _, err := bot.UnbanUser(ctx, roomID, &mautrix.ReqUnbanUser{UserID: uid}); err != nil {
			return step("unban "+uid.String(), err)
		}
		cur = event.MembershipLeave
	}
	if cur != event.MembershipInvite {
		if _, err := bot.InviteUser(ctx, roomID, &mautrix.ReqInviteUser{UserID: uid}); err != nil {
			return step("invite "+uid.String(), err)
		}
	}
	user, err := matrix.Client(ms, w.opts.HTTPClient, uid)
	if err != nil {
		return err
	}
	if _, err := user.JoinRoomByID(ctx, roomID); err != nil {
		return step("join "+uid.String(), err)
	}
	return nil
}

// roomMembership reads every member's membership in the room (as the bot sees it).
func roomMembership(ctx context.Context, bot *mautrix.Client, roomID id.RoomID) (map[id.UserID]event.Membership, error) {
	resp, err := bot.Members(ctx, roomID)
	if err != nil {
		return nil, err
	}
	out := map[id.UserID]event.Membership{}
	for _, evt := range resp.Chunk {
		if evt.StateKey == nil {
			continue
		}
		if m := evt.Content.AsMember(); m != nil {
			out[id.UserID(*evt.StateKey)] = m.Membership
		}
	}
	return out, nil
}

// desiredMembers lists who should be in the room, each with a Matrix user id (profiles
// missing so far are made now).
func (w *Worker) desiredMembers(ctx context.Context, ms *db.MatrixSettings, room *db.Room) ([]*db.DesiredMember, error) {
	desired, err := w.store.DesiredMembers(ctx, room.ID)
	if err != nil {
		return nil, err
	}
	rules := db.ProfileRules{Domain: ms.HomeserverDomain, BotLocalpart: ms.SenderLocalpart}
	for _, m := range desired {
		if m.MatrixUserID == "" {
			if m.MatrixUserID, err = w.store.EnsureProfile(ctx, m.UserID, rules); err != nil {
				return nil, err
			}
		}
	}
	return desired, nil
}

// ensureProvisioned registers a member on the homeserver unless their profile says so.
func (w *Worker) ensureProvisioned(ctx context.Context, ms *db.MatrixSettings, m *db.DesiredMember) error {
	if m.Provisioned {
		return nil
	}
	if err := w.provisionUser(ctx, ms, m.MatrixUserID, m.Username, m.FullName); err != nil {
		return err
	}
	if _, err := w.store.MarkProfileProvisioned(context.WithoutCancel(ctx), m.UserID, m.FullName); err != nil {
		return err
	}
	m.Provisioned = true
	return nil
}

// syncPowerLevels makes the room's power levels follow the roles: the bot 100, project
// admins and managers 50, everyone else of ours the default 0; invite, kick, ban, redact
// and state events need 100, messages 0. Users the appservice does not manage keep theirs.
func (w *Worker) syncPowerLevels(ctx context.Context, bot *mautrix.Client, roomID id.RoomID, botID id.UserID, want map[id.UserID]int) error {
	var pl map[string]any
	if err := bot.StateEvent(ctx, roomID, event.StatePowerLevels, "", &pl); err != nil {
		return step("read power levels", err)
	}
	if pl == nil {
		pl = map[string]any{}
	}
	users := map[string]any{}
	if u, ok := pl["users"].(map[string]any); ok {
		users = u
	}
	var listed []id.UserID // the power levels' users, as read (the JSON keys)
	for uid := range users {
		listed = append(listed, id.UserID(uid))
	}
	managed, err := w.store.ManagedUsers(ctx, listed)
	if err != nil {
		return err
	}
	changed := false
	set := func(m map[string]any, key string, v int) {
		if cur, ok := m[key].(float64); !ok || int(cur) != v {
			m[key] = v
			changed = true
		}
	}
	for uid := range managed {
		if _, ok := want[uid]; !ok {
			delete(users, uid.String())
			changed = true
		}
	}
	for uid, v := range want {
		if v > 0 {
			set(users, uid.String(), v)
		} else if _, ok := users[uid.String()]; ok {
			delete(users, uid.String())
			changed = true
		}
	}
	set(users, botID.String(), plBot)
	pl["users"] = users
	for _, k := range []string{"invite", "kick", "ban", "redact", "state_default"} {
		set(pl, k, plRestricted)
	}
	set(pl, "events_default", 0)
	if !changed {
		return nil
	}
	_, err = bot.SendStateEvent(ctx, roomID, event.StatePowerLevels, "", pl)
	return step("set power levels", err)
}

// disableRoom removes every member (joined or invited) with a reason and makes the bot
// leave. A room the bot already left, or that never got created, is simply done.
func (w *Worker) disableRoom(ctx context.Context, bot *mautrix.Client, room *db.Room) error {
	if room.RoomID == "" {
		return nil
	}
	roomID := room.RoomID
	membership, err := roomMembership(ctx, bot, roomID)
	if unusable(err) || (err == nil && membership[bot.UserID] != event.MembershipJoin) {
		return nil // the bot is not in the room any more: nothing left to do
	}
	if err != nil {
		return step("read members", err)
	}
	var members []id.UserID
	for uid, m := range membership {
		if uid != bot.UserID && (m == event.MembershipJoin || m == event.MembershipInvite) {
			members = append(members, uid)
		}
	}
	slices.Sort(members)
	for _, uid := range members {
		if _, err := bot.KickUser(ctx, roomID, &mautrix.ReqKickUser{UserID: uid, Reason: ReasonRoomDisabled}); err != nil {
			return step("kick "+uid.String(), err)
		}
	}
	// Free the alias while the bot may still remove it, so a reactivation can give it to
	// the new room.
	if room.RoomAlias != "" {
		if _, err := bot.DeleteAlias(ctx, room.RoomAlias); err != nil && !unusable(err) {
			return step("free alias", err)
		}
	}
	if _, err := bot.LeaveRoom(ctx, roomID, &mautrix.ReqLeave{Reason: ReasonRoomDisabled}); err != nil && !unusable(err) {
		return step("leave room", err)
	}
	return nil
}

// provisionUser registers a namespaced user through m.login.application_service
// (M_USER_IN_USE counts as done) and sets their display name (full name, else username).
func (w *Worker) provisionUser(ctx context.Context, ms *db.MatrixSettings, uid id.UserID, username, fullName string) error {
	bot, err := matrix.Client(ms, w.opts.HTTPClient, "")
	if err != nil {
		return err
	}
	localpart, _, err := uid.Parse()
	if err != nil {
		return fmt.Errorf("bad matrix user id %q: %w", uid, err)
	}
	_, err = bot.MakeRequest(ctx, http.MethodPost, bot.BuildClientURL("v3", "register"), &mautrix.ReqRegister[any]{
		Username:     localpart,
		Type:         mautrix.AuthTypeAppservice,
		InhibitLogin: true,
	}, nil)
	if err != nil && !errors.Is(err, mautrix.MUserInUse) {
		return step("register "+uid.String(), err)
	}
	fresh := err == nil // a new account has the homeserver's default display name
	user, err := matrix.Client(ms, w.opts.HTTPClient, uid)
	if err != nil {
		return err
	}
	name := strings.TrimSpace(fullName)
	if name == "" {
		name = username
	}
	// Setting a display name sends a member event to every room the user is in: only
	// when it changed. A new account is in no room and has the default name: set it.
	if !fresh {
		if cur, err := user.GetOwnDisplayName(ctx); err == nil && cur.DisplayName == name {
			return nil
		}
	}
	if err := user.SetDisplayName(ctx, name); err != nil {
		return step("set display name of "+uid.String(), err)
	}
	return nil
}

// profileJob registers one user whose profile is pending.
func (w *Worker) profileJob(ctx context.Context, ms *db.MatrixSettings, p *db.Profile) {
	err := w.provisionUser(ctx, ms, p.MatrixUserID, p.Username, p.FullName)
	defer func() { w.observe(ctx, KindUser, err) }()
	if err == nil {
		_, err = w.store.MarkProfileProvisioned(context.WithoutCancel(ctx), p.UserID, p.FullName)
		if err == nil {
			return
		}
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return
	}
	msg := describe(ms, err)
	if ferr := w.store.FailProfile(context.WithoutCancel(ctx), p.UserID, msg, w.backoff); ferr != nil {
		w.logErr(ctx, "record user failure", ferr)
		return
	}
	w.log.Warn("user not provisioned; will retry", "user", p.MatrixUserID, "attempts", p.Attempts+1, "error", msg)
}
