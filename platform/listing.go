package platform

import (
	"context"
	"fmt"
	"time"

	"matrixas/db"
	"matrixas/waldur"
)

// roleNames are the mirrored roles in the store's spelling (the platform's).
var roleNames = []string{db.RoleAdmin, db.RoleManager, db.RoleMember, db.RoleCustomerOwner}

// maxRereadUsers bounds the users an incremental run re-reads one by one; past it, the
// run lists everything instead (a full reconcile costs a few hundred requests).
const maxRereadUsers = 100

type pUser struct {
	username, email, fullName string
	active                    bool
}

type pProject struct {
	name     string
	customer uid
	removed  bool
}

// listing is what the platform said in one run, kept compact: only what the directory
// stores, keyed by 16-byte uuids.
type listing struct {
	// complete is true for a full listing: a row the store has and the listing lacks
	// was removed on the platform. An incremental listing only says what changed.
	complete  bool
	customers map[uid]waldur.Customer
	users     map[uid]pUser
	projects  map[uid]pProject
	roles     map[pair]uint8    // project roles: (project, user) -> the strongest held (roleIndex)
	owners    map[pair]struct{} // (customer, user)
	// reread are the users whose whole role set an incremental run read: their roles
	// are compared completely (a role they lost is revoked).
	reread map[uid]bool
}

func newListing(complete bool) *listing {
	return &listing{
		complete:  complete,
		customers: map[uid]waldur.Customer{},
		users:     map[uid]pUser{},
		projects:  map[uid]pProject{},
		roles:     map[pair]uint8{},
		owners:    map[pair]struct{}{},
		reread:    map[uid]bool{},
	}
}

// addRole records one grant: a customer's owner, or a project role, keeping for each
// person the role that weighs most (the platform may grant one several).
func (l *listing) addRole(r waldur.RoleAssignment) {
	scope, ok1 := parseUID(r.ScopeUUID)
	user, ok2 := parseUID(r.UserUUID)
	if !ok1 || !ok2 {
		return
	}
	k := pair{scope, user}
	if r.Role == waldur.RoleCustomerOwner {
		l.owners[k] = struct{}{}
		return
	}
	role := roleIndex(string(r.Role))
	if role == 0 {
		return
	}
	if old, ok := l.roles[k]; !ok || db.StrongerRole(roleOf(role), roleOf(old)) {
		l.roles[k] = role
	}
}

// list reads the platform: everything for a full run, what changed since for an
// incremental one (which turns into a full listing when too many users' roles changed).
// Any error leaves the listing unusable: the caller changes nothing.
func (s *Syncer) list(ctx context.Context, full bool, since time.Time) (*listing, bool, error) {
	l := newListing(full)
	c := s.client
	p := s.progress
	p.phase("listing customers")
	if err := c.Customers(ctx, func(cu waldur.Customer) error {
		if u, ok := parseUID(cu.UUID); ok {
			l.customers[u] = cu
			p.listed("customers")
		}
		return nil
	}); err != nil {
		return nil, full, err
	}
	opts := waldur.ListOptions{}
	if !full {
		opts.ModifiedSince = since
	}
	p.phase("listing projects")
	if err := c.Projects(ctx, opts, func(pr waldur.Project) error {
		u, ok1 := parseUID(pr.UUID)
		cu, _ := parseUID(pr.CustomerUUID)
		if ok1 {
			l.projects[u] = pProject{name: pr.Name, customer: cu, removed: pr.Removed}
			p.listed("projects")
		}
		return nil
	}); err != nil {
		return nil, full, err
	}
	p.phase("listing users")
	if err := c.Users(ctx, opts, func(us waldur.User) error {
		if u, ok := parseUID(us.UUID); ok {
			l.users[u] = pUser{username: us.Username, email: us.Email, fullName: us.FullName, active: us.Active}
			p.listed("users")
		}
		return nil
	}); err != nil {
		return nil, full, err
	}
	p.phase("listing role assignments")
	if full {
		err := c.RoleAssignments(ctx, waldur.ListOptions{}, func(r waldur.RoleAssignment) error {
			l.addRole(r)
			p.listed("roles")
			return nil
		})
		return l, true, err
	}
	changed := map[string]bool{}
	if err := c.RoleAssignments(ctx, opts, func(r waldur.RoleAssignment) error {
		changed[r.UserUUID] = true
		return nil
	}); err != nil {
		return nil, false, err
	}
	if len(changed) > maxRereadUsers {
		s.log.Info("platform sync: many roles changed, listing everything", "users", len(changed))
		return s.list(ctx, true, time.Time{})
	}
	for user := range changed {
		u, ok := parseUID(user)
		if !ok {
			continue
		}
		grants, err := c.UserRoles(ctx, user)
		if err != nil {
			return nil, false, fmt.Errorf("re-read the roles of user %s: %w", user, err)
		}
		l.reread[u] = true
		for _, g := range grants {
			l.addRole(g)
			p.listed("roles")
		}
	}
	return l, false, nil
}
