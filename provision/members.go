package provision

import (
	"context"
	"errors"
	"maps"
	"slices"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/matrix"
)

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
		ms2 := db.MemberSync{UserID: m.UserID, Membership: string(membership[uid]), PowerLevel: pl}
		var err error
		if m.Registration == db.RegistrationRefused {
			err = &refusedError{RefusalMessage(m.Username, m.UserUUID, uid)}
		} else {
			want[uid] = pl
			err = w.ensureMember(ctx, ms, bot, roomID, m, membership[uid])
		}
		if errors.Is(err, ErrAccountRefused) {
			// Someone else's account: never invited nor given a level, and not the
			// room's failure; the member's error says how to link it.
			delete(want, uid)
			ms2.PowerLevel, ms2.LastError = 0, err.Error()
		} else if err != nil {
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
// db.RolePowerLevel; the bot db.BotPowerLevel), everyone else of ours the default 0;
// invite, kick, ban, redact and state events need the bot's level, messages 0. Users the
// appservice does not manage keep theirs.
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
