package platform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"matrixas/bot"
	"matrixas/db"
	"matrixas/waldur"
)

// Receive stores an event the platform pushed to the receiver, before the receiver
// answers, and wakes the events worker. A body that is not an event is
// waldur.ErrBadEvent (the receiver's 400). Event types the worker does not handle are
// stored as ignored: counted and shown, never worked on.
func (s *Syncer) Receive(ctx context.Context, contentType string, body []byte) error {
	ev, err := waldur.ParseEvent(contentType, body)
	if err != nil {
		return err
	}
	state := db.EventPending
	if ev.Kind == waldur.EventOther {
		state = db.EventIgnored
	}
	if _, err := s.store.InsertPlatformEvent(ctx, ev.Type, string(ev.Kind), contentType, body, state); err != nil {
		return err
	}
	if state == db.EventPending {
		select {
		case s.evKick <- struct{}{}:
		default:
		}
	}
	return nil
}

// eventRetries are the waits after an event's failed attempts (the platform was down,
// say); after the last the event is marked failed and the next full reconcile repairs
// what it would have done.
var eventRetries = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute}

// eventBatch is how many due events the worker takes at once.
const eventBatch = 50

// eventsLoop applies due events in the order received until ctx ends.
func (s *Syncer) eventsLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		s.ApplyEvents(ctx)
		wait := 30 * time.Second
		if at, ok, err := s.store.NextPlatformEventDue(ctx); err == nil && ok {
			wait = min(wait, max(at.Sub(s.opts.Now()), 0))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.evKick:
		}
	}
}

// ApplyEvents applies every due event now, in the order received, and returns how many
// it finished (applied, ignored or failed). The events loop calls it; tests do too.
func (s *Syncer) ApplyEvents(ctx context.Context) int {
	done := 0
	for ctx.Err() == nil {
		due, err := s.store.DuePlatformEvents(ctx, s.opts.Now(), eventBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("platform events: read the queue", "error", err.Error())
			}
			return done
		}
		if len(due) == 0 {
			return done
		}
		seen := map[string]bool{} // what this batch already re-read: repeats are no-ops
		retried := 0
		for _, e := range due {
			state, note, err := s.applyEvent(ctx, e, seen)
			if ctx.Err() != nil {
				return done
			}
			if err != nil {
				if e.Attempts >= len(eventRetries) {
					state, note = db.EventFailed, Describe(err)
				} else {
					retried++
					if rerr := s.store.RetryPlatformEvent(ctx, e.ID, Describe(err), s.opts.Now().Add(eventRetries[e.Attempts])); rerr != nil {
						s.log.Error("platform events: retry later", "event", e.ID, "error", rerr.Error())
					}
					s.log.Warn("platform event: will retry", "event", e.ID, "type", e.EventType, "error", Describe(err))
					continue
				}
			}
			if err := s.store.FinishPlatformEvent(ctx, e.ID, state, note); err != nil {
				s.log.Error("platform events: record the outcome", "event", e.ID, "error", err.Error())
				return done
			}
			done++
		}
		if retried == len(due) {
			return done // everything due is waiting for the platform: stop for now
		}
	}
	return done
}

// applyEvent re-reads what one event names and writes it; state is the event's outcome
// (applied or ignored, with a note), err a failure worth retrying.
func (s *Syncer) applyEvent(ctx context.Context, e *db.PlatformEvent, seen map[string]bool) (state, note string, err error) {
	ev, err := waldur.ParseEvent(e.ContentType, e.Body)
	if err != nil {
		return db.EventFailed, "unreadable: " + err.Error(), nil
	}
	if !ev.HasContext {
		// The platform's form encoding drops the context's values: nothing names the
		// object, so look for what changed instead.
		s.requestRun(false)
		return db.EventApplied, "no context in the event: incremental run requested", nil
	}
	once := func(key string, f func() error) error {
		if seen[key] {
			return nil
		}
		if err := f(); err != nil {
			return err
		}
		seen[key] = true
		return nil
	}
	switch ev.Kind {
	case waldur.EventRole:
		switch ev.ScopeType {
		case string(waldur.ScopeProject), string(waldur.ScopeCustomer):
		default:
			return db.EventIgnored, "role on a " + orNone(ev.ScopeType) + " scope: not mirrored", nil
		}
		if ev.ScopeUUID == "" {
			return db.EventIgnored, "no scope in the event", nil
		}
		err = once("scope:"+ev.ScopeUUID, func() error { return s.refreshScope(ctx, waldur.ScopeType(ev.ScopeType), ev.ScopeUUID) })
	case waldur.EventProject:
		if ev.ProjectUUID == "" {
			return db.EventIgnored, "no project in the event", nil
		}
		err = once("project:"+ev.ProjectUUID, func() error { return s.refreshProject(ctx, ev.ProjectUUID) })
	case waldur.EventCustomer:
		if ev.CustomerUUID == "" {
			return db.EventIgnored, "no customer in the event", nil
		}
		err = once("customer:"+ev.CustomerUUID, func() error { return s.refreshCustomer(ctx, ev.CustomerUUID) })
	case waldur.EventUser:
		if ev.UserUUID == "" {
			return db.EventIgnored, "no user in the event", nil
		}
		err = once("user:"+ev.UserUUID, func() error { return s.refreshUser(ctx, ev.UserUUID) })
	case waldur.EventOrder:
		if ev.OrderUUID == "" || ev.ProjectUUID == "" {
			return db.EventIgnored, "no order or project in the event", nil
		}
		var n string
		n, err = s.announceOrder(ctx, ev.ProjectUUID, ev.OrderUUID)
		if err == nil && n != "" {
			return db.EventApplied, n, nil
		}
	default:
		return db.EventIgnored, "not an event the sync handles", nil
	}
	if err != nil {
		return "", "", err
	}
	return db.EventApplied, "", nil
}

// rules reads the profile rules for a write.
func (s *Syncer) rules(ctx context.Context) (db.ProfileRules, error) { return s.opts.Rules(ctx) }

// ensureCustomer writes the customer if the store does not have it (a project or an
// owner names it before its own event came).
func (s *Syncer) ensureCustomer(ctx context.Context, uuid string) error {
	if uuid == "" {
		return nil
	}
	if _, err := s.store.CustomerByUUID(ctx, uuid); err == nil || !errors.Is(err, db.ErrNotFound) {
		return err
	}
	c, err := s.client.Customer(ctx, uuid)
	if errors.Is(err, waldur.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	_, err = s.store.SyncPutCustomers(ctx, []db.DirectoryCustomer{{UUID: c.UUID, Name: c.Name, Abbreviation: c.Abbreviation}})
	return err
}

// ensureUsers writes the users the store does not have (a role names them before their
// own event came).
func (s *Syncer) ensureUsers(ctx context.Context, uuids []string) error {
	var missing []db.DirectoryUser
	for _, id := range uuids {
		if _, err := s.store.UserByUUID(ctx, id); err == nil {
			continue
		} else if !errors.Is(err, db.ErrNotFound) {
			return err
		}
		u, err := s.client.User(ctx, id)
		if errors.Is(err, waldur.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		missing = append(missing, db.DirectoryUser{UUID: u.UUID, Username: u.Username, Email: u.Email, FullName: u.FullName, IsActive: u.Active})
	}
	if len(missing) == 0 {
		return nil
	}
	rules, err := s.rules(ctx)
	if err != nil {
		return err
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	_, _, err = s.store.SyncPutUsers(ctx, missing, rules)
	return err
}

// refreshProject re-reads a project: gone or removed, its room is disabled (only a
// project the sync owns); otherwise it is written (with its customer).
func (s *Syncer) refreshProject(ctx context.Context, uuid string) error {
	p, err := s.client.Project(ctx, uuid)
	if errors.Is(err, waldur.ErrNotFound) || (err == nil && p.Removed) {
		return s.projectGone(ctx, uuid)
	}
	if err != nil {
		return err
	}
	if err := s.ensureCustomer(ctx, p.CustomerUUID); err != nil {
		return err
	}
	old, err := s.store.ProjectByUUID(ctx, uuid)
	desc := ""
	switch {
	case err == nil:
		desc = old.Description
	case !errors.Is(err, db.ErrNotFound):
		return err
	}
	s.applyMu.Lock()
	n, err := s.store.SyncPutProjects(ctx, []db.DirectoryProject{{UUID: p.UUID, Name: p.Name, CustomerUUID: p.CustomerUUID, Description: desc}}, s.opts.AutoCreateRooms)
	s.applyMu.Unlock()
	s.wake(err == nil && n.Created+n.Updated > 0)
	return err
}

// projectGone disables the room of a project the platform no longer has, if the sync owns it.
func (s *Syncer) projectGone(ctx context.Context, uuid string) error {
	p, err := s.store.ProjectByUUID(ctx, uuid)
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	if err != nil || p.Source != db.SourceWaldur {
		return err
	}
	s.applyMu.Lock()
	_, err = s.removeProject(ctx, uuid)
	s.applyMu.Unlock()
	s.wake(err == nil)
	return err
}

// refreshCustomer re-reads a customer and its owners; a customer gone is removed.
func (s *Syncer) refreshCustomer(ctx context.Context, uuid string) error {
	c, err := s.client.Customer(ctx, uuid)
	if errors.Is(err, waldur.ErrNotFound) {
		s.applyMu.Lock()
		_, err := s.store.SyncRemoveCustomers(ctx, []string{uuid})
		s.applyMu.Unlock()
		s.wake(err == nil)
		return err
	}
	if err != nil {
		return err
	}
	s.applyMu.Lock()
	_, err = s.store.SyncPutCustomers(ctx, []db.DirectoryCustomer{{UUID: c.UUID, Name: c.Name, Abbreviation: c.Abbreviation}})
	s.applyMu.Unlock()
	if err != nil {
		return err
	}
	return s.refreshScope(ctx, waldur.ScopeCustomer, uuid)
}

// refreshUser re-reads a user: gone, they are deactivated (out of every room); else written.
func (s *Syncer) refreshUser(ctx context.Context, uuid string) error {
	rules, err := s.rules(ctx)
	if err != nil {
		return err
	}
	u, err := s.client.User(ctx, uuid)
	if errors.Is(err, waldur.ErrNotFound) {
		s.applyMu.Lock()
		n, err := s.store.SyncDeactivateUsers(ctx, []string{uuid}, rules)
		s.applyMu.Unlock()
		s.wake(err == nil && n > 0)
		return err
	}
	if err != nil {
		return err
	}
	s.applyMu.Lock()
	n, skipped, err := s.store.SyncPutUsers(ctx, []db.DirectoryUser{{UUID: u.UUID, Username: u.Username, Email: u.Email, FullName: u.FullName, IsActive: u.Active}}, rules)
	s.applyMu.Unlock()
	for _, sk := range skipped {
		s.log.Warn("platform event: user skipped", "uuid", sk.UUID, "username", sk.Username, "reason", sk.Reason)
	}
	s.wake(err == nil && n.Created+n.Updated > 0)
	return err
}

// refreshScope re-reads the roles on one project or customer and makes the store's
// match them exactly: grants, changes and revocations, each announced in its room.
func (s *Syncer) refreshScope(ctx context.Context, scope waldur.ScopeType, uuid string) error {
	grants, err := s.client.ScopeRoles(ctx, scope, uuid)
	if errors.Is(err, waldur.ErrNotFound) {
		if scope == waldur.ScopeProject {
			return s.projectGone(ctx, uuid)
		}
		return s.refreshCustomer(ctx, uuid)
	}
	if err != nil {
		return err
	}
	// The scope itself first, when the store does not have it yet.
	switch scope {
	case waldur.ScopeProject:
		p, err := s.store.ProjectByUUID(ctx, uuid)
		if errors.Is(err, db.ErrNotFound) {
			if err := s.refreshProject(ctx, uuid); err != nil {
				return err
			}
			p, err = s.store.ProjectByUUID(ctx, uuid)
		}
		if err != nil {
			if errors.Is(err, db.ErrNotFound) {
				return nil // removed meanwhile
			}
			return err
		}
		if p.Source != db.SourceWaldur {
			return nil
		}
	case waldur.ScopeCustomer:
		if err := s.ensureCustomer(ctx, uuid); err != nil {
			return err
		}
		c, err := s.store.CustomerByUUID(ctx, uuid)
		if errors.Is(err, db.ErrNotFound) {
			return nil
		}
		if err != nil || c.Source != db.SourceWaldur {
			return err
		}
	}
	want := map[string]string{}
	var users []string
	for _, g := range grants {
		if _, ok := want[g.UserUUID]; !ok {
			users = append(users, g.UserUUID)
		}
		role := string(g.Role)
		if old, ok := want[g.UserUUID]; !ok || db.StrongerRole(role, old) {
			want[g.UserUUID] = role
		}
	}
	if err := s.ensureUsers(ctx, users); err != nil {
		return err
	}
	rules, err := s.rules(ctx)
	if err != nil {
		return err
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	have := map[string]string{}
	var changes []db.RoleChange
	if scope == waldur.ScopeProject {
		p, err := s.store.ProjectByUUID(ctx, uuid)
		if err != nil {
			return ignoreNotFound(err)
		}
		roles, err := s.store.ListRoles(ctx, p.ID)
		if err != nil {
			return err
		}
		for _, r := range roles {
			have[r.UserUUID] = r.Role
		}
		for u, role := range want {
			if have[u] != role {
				changes = append(changes, db.RoleChange{ProjectUUID: uuid, UserUUID: u, Role: role})
			}
		}
		for u := range have {
			if _, ok := want[u]; !ok {
				changes = append(changes, db.RoleChange{ProjectUUID: uuid, UserUUID: u})
			}
		}
	} else {
		c, err := s.store.CustomerByUUID(ctx, uuid)
		if err != nil {
			return ignoreNotFound(err)
		}
		owners, err := s.store.ListCustomerOwners(ctx, c.ID)
		if err != nil {
			return err
		}
		for _, o := range owners {
			have[o.UserUUID] = db.RoleCustomerOwner
		}
		for u := range want {
			if _, ok := have[u]; !ok {
				changes = append(changes, db.RoleChange{CustomerUUID: uuid, UserUUID: u, Role: db.RoleCustomerOwner})
			}
		}
		for u := range have {
			if _, ok := want[u]; !ok {
				changes = append(changes, db.RoleChange{CustomerUUID: uuid, UserUUID: u})
			}
		}
	}
	// Revocations first, then grants, each by user: the room reads them in a stable order.
	slices.SortFunc(changes, func(a, b db.RoleChange) int {
		if (a.Role == "") != (b.Role == "") {
			if a.Role == "" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.UserUUID, b.UserUUID)
	})
	n, _, err := s.store.SyncRoles(ctx, slices.Values(changes), rules)
	s.wake(err == nil && n.Created+n.Updated+n.Removed > 0)
	return err
}

func ignoreNotFound(err error) error {
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	return err
}

// ordersToSearch is how many of a project's newest orders are read to find the one an
// event names (the API has no read of one order): a changed order is a recent one.
const ordersToSearch = 100

// announceOrder re-reads an order and announces its state in the project's room when
// it is one people are told about (approved, completed, rejected, canceled, failed)
// and was not announced yet. note says why nothing was announced, when so.
func (s *Syncer) announceOrder(ctx context.Context, projectUUID, orderUUID string) (note string, err error) {
	page, err := s.client.ProjectOrders(ctx, projectUUID, nil, ordersToSearch)
	if err != nil {
		return "", err
	}
	for _, o := range page.Items {
		if o.UUID != orderUUID {
			continue
		}
		by := o.CreatedByFullName
		if strings.TrimSpace(by) == "" {
			by = o.CreatedByUsername
		}
		text, _ := bot.OrderChanged(string(o.State), o.Type, o.OfferingName, by)
		queued, err := s.store.AnnounceOrderState(ctx, projectUUID, orderUUID, string(o.State), text)
		if err != nil {
			return "", err
		}
		if queued {
			s.wake(true)
			return "", nil
		}
		return fmt.Sprintf("order %s: nothing to announce", o.State), nil
	}
	return fmt.Sprintf("order not among the project's %d newest", ordersToSearch), nil
}
