package platform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"matrixas/db"
)

type sCustomer struct{ name, abbr, source string }

type sUser struct {
	username, email, fullName, source string
	active, staff                     bool
}

type sProject struct {
	name, desc, source string
	customer           uid
}

// snapshot is the directory as the store has it, compact like a listing. A partial
// snapshot (incremental runs) holds only the rows the listing names.
type snapshot struct {
	customers map[uid]sCustomer
	users     map[uid]sUser
	usernames map[string]uid
	projects  map[uid]sProject
	roles     map[pair]string
	owners    map[pair]struct{}
}

func newSnapshot() *snapshot {
	return &snapshot{
		customers: map[uid]sCustomer{},
		users:     map[uid]sUser{},
		usernames: map[string]uid{},
		projects:  map[uid]sProject{},
		roles:     map[pair]string{},
		owners:    map[pair]struct{}{},
	}
}

func (sn *snapshot) addUser(u *db.User) {
	id, ok := parseUID(u.UUID)
	if !ok {
		return
	}
	sn.users[id] = sUser{username: u.Username, email: u.Email, fullName: u.FullName, source: u.Source, active: u.IsActive, staff: u.IsStaff}
	sn.usernames[u.Username] = id
}

// readSnapshot reads what the comparison with l needs: the whole directory for a full
// listing; for an incremental one, every customer (few) and only the users, projects
// and role sets the listing names.
func (s *Syncer) readSnapshot(ctx context.Context, l *listing) (*snapshot, error) {
	sn := newSnapshot()
	r := db.DirectoryReader{
		Customer: func(uuid, name, abbr, source string) error {
			if u, ok := parseUID(uuid); ok {
				sn.customers[u] = sCustomer{name: name, abbr: abbr, source: source}
			}
			return nil
		},
	}
	if l.complete {
		r.User = func(u *db.User) error { sn.addUser(u); return nil }
		r.Project = func(uuid, name, desc, customer, source string) error {
			if u, ok := parseUID(uuid); ok {
				c, _ := parseUID(customer)
				sn.projects[u] = sProject{name: name, desc: desc, source: source, customer: c}
			}
			return nil
		}
		r.ProjectRole = func(project, user, role string) error {
			p, ok1 := parseUID(project)
			u, ok2 := parseUID(user)
			if ok1 && ok2 {
				sn.roles[pair{p, u}] = internRole(role)
			}
			return nil
		}
		r.CustomerOwner = func(customer, user string) error {
			c, ok1 := parseUID(customer)
			u, ok2 := parseUID(user)
			if ok1 && ok2 {
				sn.owners[pair{c, u}] = struct{}{}
			}
			return nil
		}
	}
	if err := s.store.ReadDirectory(ctx, r); err != nil {
		return nil, err
	}
	if l.complete {
		return sn, nil
	}
	for id, pu := range l.users {
		u, err := s.store.UserByUUID(ctx, id.String())
		switch {
		case err == nil:
			sn.addUser(u)
		case !errors.Is(err, db.ErrNotFound):
			return nil, err
		}
		if _, ok := sn.usernames[pu.username]; !ok {
			switch u, err := s.store.UserByUsername(ctx, pu.username); {
			case err == nil:
				sn.addUser(u)
			case !errors.Is(err, db.ErrNotFound):
				return nil, err
			}
		}
	}
	project := func(id uid) error {
		if _, ok := sn.projects[id]; ok {
			return nil
		}
		p, err := s.store.ProjectByUUID(ctx, id.String())
		if errors.Is(err, db.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		c, _ := parseUID(p.CustomerUUID)
		sn.projects[id] = sProject{name: p.Name, desc: p.Description, source: p.Source, customer: c}
		return nil
	}
	for id := range l.projects {
		if err := project(id); err != nil {
			return nil, err
		}
	}
	for user := range l.reread {
		if _, ok := sn.users[user]; !ok {
			switch u, err := s.store.UserByUUID(ctx, user.String()); {
			case err == nil:
				sn.addUser(u)
			case !errors.Is(err, db.ErrNotFound):
				return nil, err
			}
		}
		projects, customers, err := s.store.RolesOfUser(ctx, user.String())
		if err != nil {
			return nil, err
		}
		for p, role := range projects {
			if id, ok := parseUID(p); ok {
				sn.roles[pair{id, user}] = internRole(role)
				if err := project(id); err != nil {
					return nil, err
				}
			}
		}
		for _, c := range customers {
			if id, ok := parseUID(c); ok {
				sn.owners[pair{id, user}] = struct{}{}
			}
		}
	}
	for k := range l.roles {
		if err := project(k.scope); err != nil {
			return nil, err
		}
	}
	return sn, nil
}

// roleDiff is one role change with the role held before ("" = none), for the counts
// and the printed differences.
type roleDiff struct {
	db.RoleChange
	Old string
}

// Diff is what a run found different between the platform and the directory, in the
// order it is applied.
type Diff struct {
	NewCustomers, ChangedCustomers []db.DirectoryCustomer
	NewUsers, ChangedUsers         []db.DirectoryUser
	NewProjects, ChangedProjects   []db.DirectoryProject
	Roles                          []roleDiff
	RemovedProjects                []string
	RemovedCustomers               []string
	RemovedUsers                   []string // deactivated: gone from the platform
	// SkippedUsers could not be mirrored (a staff account's uuid or username).
	SkippedUsers []db.SkippedUser

	names map[uid]string // names of everything above, for Lines
}

// Counts are the differences counted the way a run counts what it applied.
func (d *Diff) Counts() db.SyncCounts {
	c := db.SyncCounts{
		Customers: db.SyncCount{Created: len(d.NewCustomers), Updated: len(d.ChangedCustomers), Removed: len(d.RemovedCustomers)},
		Users:     db.SyncCount{Created: len(d.NewUsers), Updated: len(d.ChangedUsers), Removed: len(d.RemovedUsers)},
		Projects:  db.SyncCount{Created: len(d.NewProjects), Updated: len(d.ChangedProjects), Removed: len(d.RemovedProjects)},
	}
	for _, r := range d.Roles {
		switch {
		case r.Role == "":
			c.Roles.Removed++
		case r.Old == "":
			c.Roles.Created++
		default:
			c.Roles.Updated++
		}
	}
	return c
}

// Empty reports a diff with nothing to apply.
func (d *Diff) Empty() bool { return d.Counts().Total() == 0 }

func (d *Diff) name(s string) string {
	if id, ok := parseUID(s); ok {
		if n, ok := d.names[id]; ok && n != "" {
			return fmt.Sprintf("%q (%s)", n, s)
		}
	}
	return s
}

// Lines writes the differences one per line, in the order they are applied, for
// people (matrixas sync prints them).
func (d *Diff) Lines(fn func(string)) {
	for _, c := range d.NewCustomers {
		fn(fmt.Sprintf("customer  create  %s %q (%s)", c.UUID, c.Name, c.Abbreviation))
	}
	for _, c := range d.ChangedCustomers {
		fn(fmt.Sprintf("customer  update  %s %q (%s)", c.UUID, c.Name, c.Abbreviation))
	}
	for _, u := range d.NewUsers {
		fn(fmt.Sprintf("user      create  %s %s %q active=%v", u.UUID, u.Username, u.FullName, u.IsActive))
	}
	for _, u := range d.ChangedUsers {
		fn(fmt.Sprintf("user      update  %s %s %q active=%v", u.UUID, u.Username, u.FullName, u.IsActive))
	}
	for _, u := range d.SkippedUsers {
		fn(fmt.Sprintf("user      skip    %s %s: %s", u.UUID, u.Username, u.Reason))
	}
	for _, p := range d.NewProjects {
		fn(fmt.Sprintf("project   create  %s %q customer %s", p.UUID, p.Name, orNone(d.name(p.CustomerUUID))))
	}
	for _, p := range d.ChangedProjects {
		fn(fmt.Sprintf("project   update  %s %q customer %s", p.UUID, p.Name, orNone(d.name(p.CustomerUUID))))
	}
	for _, r := range d.Roles {
		scope := "project " + d.name(r.ProjectUUID)
		if r.CustomerUUID != "" {
			scope = "customer " + d.name(r.CustomerUUID)
		}
		switch {
		case r.Role == "":
			fn(fmt.Sprintf("role      revoke  %s from %s in %s", r.Old, d.name(r.UserUUID), scope))
		case r.Old == "":
			fn(fmt.Sprintf("role      grant   %s to %s in %s", r.Role, d.name(r.UserUUID), scope))
		default:
			fn(fmt.Sprintf("role      change  %s -> %s of %s in %s", r.Old, r.Role, d.name(r.UserUUID), scope))
		}
	}
	for _, p := range d.RemovedProjects {
		fn("project   remove  " + d.name(p) + " (its room is disabled: project terminated)")
	}
	for _, c := range d.RemovedCustomers {
		fn("customer  remove  " + d.name(c))
	}
	for _, u := range d.RemovedUsers {
		fn("user      remove  " + d.name(u) + " (deactivated: gone from the platform)")
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// compare computes the differences between a listing and the store.
func compare(l *listing, sn *snapshot) *Diff {
	d := &Diff{names: map[uid]string{}}
	sorted := func(m map[uid]bool) []uid {
		out := make([]uid, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		slices.SortFunc(out, func(a, b uid) int { return strings.Compare(string(a[:]), string(b[:])) })
		return out
	}

	// Customers: the listing always has them all.
	for id, c := range l.customers {
		d.names[id] = c.Name
		in := db.DirectoryCustomer{UUID: id.String(), Name: c.Name, Abbreviation: c.Abbreviation}
		old, ok := sn.customers[id]
		switch {
		case !ok:
			d.NewCustomers = append(d.NewCustomers, in)
		case old.name != c.Name || old.abbr != c.Abbreviation || old.source != db.SourceWaldur:
			d.ChangedCustomers = append(d.ChangedCustomers, in)
		}
	}
	gone := map[uid]bool{}
	for id, c := range sn.customers {
		if _, ok := l.customers[id]; !ok && c.source == db.SourceWaldur {
			gone[id] = true
			d.names[id] = c.name
		}
	}
	for _, id := range sorted(gone) {
		d.RemovedCustomers = append(d.RemovedCustomers, id.String())
	}
	customerOf := func(c uid) string {
		if c.isZero() {
			return ""
		}
		if _, ok := l.customers[c]; ok {
			return c.String()
		}
		if _, ok := sn.customers[c]; ok {
			return c.String()
		}
		return ""
	}

	// Users.
	skipped := map[uid]bool{}
	for id, u := range l.users {
		d.names[id] = u.username
		old, ok := sn.users[id]
		if ok && old.staff {
			skipped[id] = true
			d.SkippedUsers = append(d.SkippedUsers, db.SkippedUser{UUID: id.String(), Username: u.username, Reason: "the uuid is a staff account's"})
			continue
		}
		if other, taken := sn.usernames[u.username]; taken && other != id && sn.users[other].staff {
			skipped[id] = true
			d.SkippedUsers = append(d.SkippedUsers, db.SkippedUser{UUID: id.String(), Username: u.username, Reason: "the username is a staff account's"})
			continue
		}
		in := db.DirectoryUser{UUID: id.String(), Username: u.username, Email: u.email, FullName: u.fullName, IsActive: u.active}
		switch {
		case !ok:
			d.NewUsers = append(d.NewUsers, in)
		case old.username != u.username || old.email != u.email || old.fullName != u.fullName || old.active != u.active || old.source != db.SourceWaldur:
			d.ChangedUsers = append(d.ChangedUsers, in)
		}
	}
	if l.complete {
		gone := map[uid]bool{}
		for id, u := range sn.users {
			if _, ok := l.users[id]; !ok && u.source == db.SourceWaldur && u.active && !u.staff {
				gone[id] = true
				d.names[id] = u.username
			}
		}
		for _, id := range sorted(gone) {
			d.RemovedUsers = append(d.RemovedUsers, id.String())
		}
	}
	userKnown := func(u uid) bool {
		if skipped[u] {
			return false
		}
		if _, ok := l.users[u]; ok {
			return true
		}
		su, ok := sn.users[u]
		return ok && !su.staff
	}

	// Projects.
	live := map[uid]bool{} // the sync's projects after this run
	removed := map[uid]bool{}
	for id, p := range l.projects {
		d.names[id] = p.name
		old, ok := sn.projects[id]
		if p.removed {
			if ok && old.source == db.SourceWaldur {
				removed[id] = true
			}
			continue
		}
		live[id] = true
		in := db.DirectoryProject{UUID: id.String(), Name: p.name, CustomerUUID: customerOf(p.customer), Description: old.desc}
		switch {
		case !ok:
			d.NewProjects = append(d.NewProjects, in)
		case old.name != p.name || old.customer.String() != orZero(in.CustomerUUID) || old.source != db.SourceWaldur:
			d.ChangedProjects = append(d.ChangedProjects, in)
		}
	}
	if l.complete {
		for id, p := range sn.projects {
			if _, ok := l.projects[id]; !ok && p.source == db.SourceWaldur {
				removed[id] = true
				d.names[id] = p.name
			}
		}
	}
	for _, id := range sorted(removed) {
		d.RemovedProjects = append(d.RemovedProjects, id.String())
	}
	for id, p := range sn.projects {
		if !live[id] && !removed[id] && p.source == db.SourceWaldur {
			live[id] = true // an incremental run: the sync's projects it did not list
		}
	}

	// Roles. A full run compares every role of the platform's projects and customers; an
	// incremental one the whole role set of the users it re-read.
	projectInScope := func(p uid, u uid) bool {
		if !live[p] {
			return false
		}
		if l.complete {
			_, listed := l.projects[p]
			return listed
		}
		return l.reread[u]
	}
	customerInScope := func(c uid, u uid) bool {
		if _, ok := l.customers[c]; !ok {
			return false
		}
		return l.complete || l.reread[u]
	}
	var roles []roleDiff
	for k, role := range l.roles {
		if !projectInScope(k.scope, k.user) || !userKnown(k.user) {
			continue
		}
		if old := sn.roles[k]; old != role {
			roles = append(roles, roleDiff{RoleChange: db.RoleChange{ProjectUUID: k.scope.String(), UserUUID: k.user.String(), Role: role}, Old: old})
		}
	}
	for k, old := range sn.roles {
		if _, ok := l.roles[k]; ok || !projectInScope(k.scope, k.user) {
			continue
		}
		if _, ok := l.roles[k]; !ok {
			roles = append(roles, roleDiff{RoleChange: db.RoleChange{ProjectUUID: k.scope.String(), UserUUID: k.user.String()}, Old: old})
		}
	}
	for k := range l.owners {
		if !customerInScope(k.scope, k.user) || !userKnown(k.user) {
			continue
		}
		if _, ok := sn.owners[k]; !ok {
			roles = append(roles, roleDiff{RoleChange: db.RoleChange{CustomerUUID: k.scope.String(), UserUUID: k.user.String(), Role: db.RoleCustomerOwner}})
		}
	}
	for k := range sn.owners {
		if _, ok := l.owners[k]; ok || !customerInScope(k.scope, k.user) {
			continue
		}
		roles = append(roles, roleDiff{RoleChange: db.RoleChange{CustomerUUID: k.scope.String(), UserUUID: k.user.String()}, Old: db.RoleCustomerOwner})
	}
	// A stable order: the printed differences and the notifications read in order.
	slices.SortFunc(roles, func(a, b roleDiff) int {
		return strings.Compare(a.CustomerUUID+a.ProjectUUID+a.UserUUID, b.CustomerUUID+b.ProjectUUID+b.UserUUID)
	})
	d.Roles = roles
	for id, u := range sn.users {
		if _, ok := d.names[id]; !ok {
			d.names[id] = u.username
		}
	}
	for id, p := range sn.projects {
		if _, ok := d.names[id]; !ok {
			d.names[id] = p.name
		}
	}
	for id, c := range sn.customers {
		if _, ok := d.names[id]; !ok {
			d.names[id] = c.name
		}
	}
	return d
}

// orZero is the uid string of a possibly empty uuid, as sProject.customer prints it.
func orZero(s string) string {
	if s == "" {
		return uid{}.String()
	}
	return s
}
