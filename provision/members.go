package provision

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/matrix"
)

// syncRoom makes the room's members, power levels, names and display names follow the
// project: every active user with a role (and staff who joined through the join action)
// is registered, invited by the bot and joined (as themselves), under the display name
// the platform gives them (full name, else username); managed users without a role are
// kicked with "Role removed", and staff who left through the leave action leave as
// themselves. Every member is tried; the first failure is returned after the others
// were done and recorded. changed reports whether anyone was invited, joined or
// removed (the room is then looked at again shortly: see roomJob).
func (w *Worker) syncRoom(ctx context.Context, ms *db.MatrixSettings, bot *mautrix.Client, room *db.Room, made *created) (changed bool, err error) {
	roomID := room.RoomID
	if roomID == "" {
		return false, errRoomLost // archived before it ever reached the homeserver: make it now
	}
	desired, err := w.desiredMembers(ctx, ms, room)
	if err != nil {
		return false, err
	}
	botID := ms.BotUserID()
	var membership map[id.UserID]memberState
	// The power levels, as read with the members (nil: not read).
	var levels map[string]any
	if made != nil { // just created: nobody but the bot and the invited
		membership = map[id.UserID]memberState{botID: {Membership: event.MembershipJoin}}
		for _, uid := range made.invited {
			membership[uid] = memberState{Membership: event.MembershipInvite}
		}
	} else {
		membership, levels, err = roomMembership(ctx, bot, roomID)
		if err != nil && !unusable(err) {
			return false, step("read members", err)
		}
	}
	if err != nil || membership[botID].Membership != event.MembershipJoin {
		// The bot is not in the room (as after an archive made before archived rooms
		// were kept): rejoin, else start over.
		if _, jerr := bot.JoinRoomByID(ctx, roomID); jerr != nil {
			if unusable(jerr) {
				return false, errRoomLost
			}
			return false, step("rejoin room", jerr)
		}
		if membership, levels, err = roomMembership(ctx, bot, roomID); err != nil {
			return false, step("read members", err)
		}
	}

	w.log.Debug("member sync", "room_id", roomID, "members", membership)
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	var synced []db.MemberSync
	want := map[id.UserID]int{}
	var unchecked []int // members joined just now, whose display name no event said yet
	for _, m := range desired {
		uid := m.MatrixUserID
		pl := m.PowerLevel()
		cur := membership[uid]
		ms2 := db.MemberSync{UserID: m.UserID, Membership: string(cur.Membership), PowerLevel: pl}
		registered := !m.Provisioned
		var err error
		if m.Registration == db.RegistrationRefused {
			err = &refusedError{RefusalMessage(m.Username, m.UserUUID, uid)}
		} else {
			want[uid] = pl
			err = w.ensureMember(ctx, ms, bot, roomID, m, cur.Membership)
			if cur.Membership != event.MembershipJoin {
				changed = true
			}
		}
		if err == nil {
			ms2.Membership = string(event.MembershipJoin)
			switch {
			case registered && m.Provisioned: // registered just now, under this name
			case made.namedAs(uid, m.DisplayName()): // registered by createRoom just now, likewise
			case cur.Membership == event.MembershipJoin: // its member event says its name
				if cur.Displayname != m.DisplayName() {
					err = w.setDisplayName(ctx, ms, uid, m.DisplayName())
				}
			default:
				unchecked = append(unchecked, len(synced))
			}
		}
		if errors.Is(err, ErrAccountRefused) {
			// Someone else's account: never invited nor given a level, and not the
			// room's failure; the member's error says how to link it.
			delete(want, uid)
			ms2.PowerLevel, ms2.LastError = 0, err.Error()
		} else if err != nil {
			ms2.LastError = describe(ms, err)
			fail(err)
		}
		synced = append(synced, ms2)
	}
	if len(unchecked) > 0 {
		// Their join events carry their profiles' names: one read for all of them.
		now, _, err := roomMembership(ctx, bot, roomID)
		if err != nil {
			fail(step("read members", err))
		}
		for _, i := range unchecked {
			m := desired[i]
			if err != nil || now[m.MatrixUserID].Displayname == m.DisplayName() {
				continue
			}
			if serr := w.setDisplayName(ctx, ms, m.MatrixUserID, m.DisplayName()); serr != nil {
				synced[i].LastError = describe(ms, serr)
				fail(serr)
			}
		}
	}

	// Managed users in the room without a role: kick them; staff who left through the
	// leave action leave as themselves.
	var others []id.UserID
	for uid, mem := range membership {
		if _, ok := want[uid]; !ok && uid != botID && (mem.Membership == event.MembershipJoin || mem.Membership == event.MembershipInvite) {
			others = append(others, uid)
		}
	}
	slices.Sort(others)
	managed, err := w.store.ManagedUsers(ctx, others)
	if err != nil {
		return changed, err
	}
	leaving, err := w.store.StaffLeaving(ctx, room.ID)
	if err != nil {
		return changed, err
	}
	var pending []int64 // former members still in the room
	for _, uid := range others {
		userPK, ok := managed[uid]
		if !ok {
			continue // not an account this appservice manages: leave it to the room's admins
		}
		changed = true
		if leaving[userPK] {
			if err := w.leaveAs(ctx, ms, uid, roomID); err != nil {
				fail(step("leave as "+uid.String(), err))
				pending = append(pending, userPK)
			}
			continue
		}
		_, err := bot.KickUser(ctx, roomID, &mautrix.ReqKickUser{UserID: uid, Reason: ReasonRoleRemoved})
		if err != nil {
			fail(step("kick "+uid.String(), err))
			pending = append(pending, userPK)
		}
	}

	// A room just created with these members' levels needs no reading back.
	if made == nil || !maps.Equal(made.levels, want) {
		if err := w.syncPowerLevels(ctx, bot, roomID, botID, want, levels); err != nil {
			fail(err)
		}
	}
	if room.RoomName != room.ProjectName {
		if _, err := bot.SendStateEvent(ctx, roomID, event.StateRoomName, "", &event.RoomNameEventContent{Name: room.ProjectName}); err != nil {
			fail(step("rename room", err))
		}
	}
	if err := w.store.SaveMembers(context.WithoutCancel(ctx), room.ID, synced, pending); err != nil {
		return changed, err
	}
	return changed, firstErr
}

// leaveAs makes a managed user leave the room as themselves (a staff member's leave).
func (w *Worker) leaveAs(ctx context.Context, ms *db.MatrixSettings, uid id.UserID, roomID id.RoomID) error {
	user, err := matrix.Client(ms, w.opts.HTTPClient, uid)
	if err != nil {
		return err
	}
	_, err = user.LeaveRoom(ctx, roomID, &mautrix.ReqLeave{})
	return err
}

// setDisplayName sets a managed user's display name, as the user (the homeserver
// updates their member event in every room).
func (w *Worker) setDisplayName(ctx context.Context, ms *db.MatrixSettings, uid id.UserID, name string) error {
	user, err := matrix.Client(ms, w.opts.HTTPClient, uid)
	if err != nil {
		return err
	}
	return step("set display name of "+uid.String(), user.SetDisplayName(ctx, name))
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

// memberState is a member's membership and display name in a room, from their member event.
type memberState struct {
	Membership  event.Membership
	Displayname string
}

// roomMembership reads every member's membership and display name in the room (as the
// bot sees it) from the room's current state, and the power levels' content that comes
// with it (nil when the state has none), which only the bot changes: a member sync uses
// it rather than reading it again. Not from /members: Dendrite serves that from its sync
// component, which lags the room behind by moments, so a sync right after the kicks of
// a disable would take members kicked a moment ago for joined ones.
func roomMembership(ctx context.Context, bot *mautrix.Client, roomID id.RoomID) (map[id.UserID]memberState, map[string]any, error) {
	state, err := bot.State(ctx, roomID)
	if err != nil {
		return nil, nil, err
	}
	out := map[id.UserID]memberState{}
	for key, evt := range state[event.StateMember] {
		if m := evt.Content.AsMember(); m != nil {
			out[id.UserID(key)] = memberState{Membership: m.Membership, Displayname: m.Displayname}
		}
	}
	var levels map[string]any
	if evt := state[event.StatePowerLevels][""]; evt != nil && len(evt.Content.VeryRaw) > 0 {
		if err := json.Unmarshal(evt.Content.VeryRaw, &levels); err != nil {
			return nil, nil, err
		}
	}
	return out, levels, nil
}

// desiredMembers lists who should be in the room, each with a Matrix user id (profiles
// missing so far are made now).
func (w *Worker) desiredMembers(ctx context.Context, ms *db.MatrixSettings, room *db.Room) ([]*db.DesiredMember, error) {
	desired, err := w.store.DesiredMembers(ctx, room.ID)
	if err != nil {
		return nil, err
	}
	rules := ms.ProfileRules()
	for _, m := range desired {
		if m.MatrixUserID == "" {
			if m.MatrixUserID, err = w.store.EnsureProfile(ctx, m.UserID, rules); err != nil {
				return nil, err
			}
		}
	}
	return desired, nil
}

// syncPowerLevels makes the room's power levels follow the roles (want, from
// db.MemberPowerLevel; the bot db.BotPowerLevel), everyone else of ours the default 0;
// invite, kick, ban, redact and state events need the bot's level, messages 0. Users the
// appservice does not manage keep theirs. pl is the power levels' content as the sync
// read it with the members; nil: read it now.
func (w *Worker) syncPowerLevels(ctx context.Context, bot *mautrix.Client, roomID id.RoomID, botID id.UserID, want map[id.UserID]int, pl map[string]any) error {
	if pl == nil {
		if err := bot.StateEvent(ctx, roomID, event.StatePowerLevels, "", &pl); err != nil {
			return step("read power levels", err)
		}
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
	set(users, botID.String(), db.BotPowerLevel)
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
