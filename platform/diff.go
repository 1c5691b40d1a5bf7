package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
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
	roles     map[pair]uint8 // roleIndex
	owners    map[pair]struct{}
}

func newSnapshot() *snapshot {
	return &snapshot{
		customers: map[uid]sCustomer{},
		users:     map[uid]sUser{},
		usernames: map[string]uid{},
		projects:  map[uid]sProject{},
		roles:     map[pair]uint8{},
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
				sn.roles[pair{p, u}] = roleIndex(role)
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
				sn.roles[pair{id, user}] = roleIndex(role)
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

// roleDiff is one role change, compact (a full run may hold a hundred thousand): the
// scope, the user, the role to hold and the role held before, as indexes into roleNames
// plus one (0 = none).
type roleDiff struct {
	scope, user uid
	customer    bool // the scope is a customer (the role CUSTOMER.OWNER)
	role, old   uint8
}

func roleIndex(role string) uint8 {
	if role == "" {
		return 0
	}
	return uint8(slices.Index(roleNames, role) + 1)
}

func roleOf(i uint8) string {
	if i == 0 {
		return ""
	}
	return roleNames[i-1]
}

// change is the store's form of the difference.
func (r roleDiff) change() db.RoleChange {
	c := db.RoleChange{UserUUID: r.user.String(), Role: roleOf(r.role)}
	if r.customer {
		c.CustomerUUID = r.scope.String()
	} else {
		c.ProjectUUID = r.scope.String()
	}
	return c
}

// RoleChanges yields the role differences in the store's form, one at a time.
func (d *Diff) RoleChanges() iter.Seq[db.RoleChange] {
	return func(yield func(db.RoleChange) bool) {
		for _, r := range d.roles {
			if !yield(r.change()) {
				return
			}
		}
	}
}

// Diff is what a run found different between the platform and the directory, in the
// order it is applied.
type Diff struct {
	NewCustomers, ChangedCustomers []db.DirectoryCustomer
	NewUsers, ChangedUsers         []db.DirectoryUser
	NewProjects, ChangedProjects   []db.DirectoryProject
	roles                          []roleDiff
	RemovedProjects                []string
	RemovedCustomers               []string
	RemovedUsers                   []string // deactivated: gone from the platform
	// SkippedUsers could not be mirrored (a staff account's uuid or username).
	SkippedUsers []db.SkippedUser

	names map[uid]string // names of everything above, for Lines; nil unless asked for
}

// Counts are the differences counted the way a run counts what it applied.
func (d *Diff) Counts() db.SyncCounts {
	c := db.SyncCounts{
		Customers: db.SyncCount{Created: len(d.NewCustomers), Updated: len(d.ChangedCustomers), Removed: len(d.RemovedCustomers)},
		Users:     db.SyncCount{Created: len(d.NewUsers), Updated: len(d.ChangedUsers), Removed: len(d.RemovedUsers)},
		Projects:  db.SyncCount{Created: len(d.NewProjects), Updated: len(d.ChangedProjects), Removed: len(d.RemovedProjects)},
	}
	for _, r := range d.roles {
		switch {
		case r.role == 0:
			c.Roles.Removed++
		case r.old == 0:
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
	if id, ok := parseUID(s); ok && d.names != nil {
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
	for _, rd := range d.roles {
		r, old := rd.change(), roleOf(rd.old)
		scope := "project " + d.name(r.ProjectUUID)
		if r.CustomerUUID != "" {
			scope = "customer " + d.name(r.CustomerUUID)
		}
		switch {
		case r.Role == "":
			fn(fmt.Sprintf("role      revoke  %s from %s in %s", old, d.name(r.UserUUID), scope))
		case old == "":
			fn(fmt.Sprintf("role      grant   %s to %s in %s", r.Role, d.name(r.UserUUID), scope))
		default:
			fn(fmt.Sprintf("role      change  %s -> %s of %s in %s", old, r.Role, d.name(r.UserUUID), scope))
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

// compare computes the differences between a listing and the store; with names, the
// diff keeps the names Lines shows.
func compare(l *listing, sn *snapshot, names bool) *Diff {
	d := &Diff{}
	nm := map[uid]string{}
	if !names {
		nm = nil
	}
	setName := func(id uid, name string) {
		if nm != nil {
			nm[id] = name
		}
	}
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
		setName(id, c.Name)
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
			setName(id, c.name)
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
		setName(id, u.username)
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
				setName(id, u.username)
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
		setName(id, p.name)
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
				setName(id, p.name)
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
	owner := roleIndex(db.RoleCustomerOwner)
	for k, role := range l.roles {
		if !projectInScope(k.scope, k.user) || !userKnown(k.user) {
			continue
		}
		if old := sn.roles[k]; old != role {
			roles = append(roles, roleDiff{scope: k.scope, user: k.user, role: role, old: old})
		}
	}
	for k, old := range sn.roles {
		if _, ok := l.roles[k]; ok || !projectInScope(k.scope, k.user) {
			continue
		}
		roles = append(roles, roleDiff{scope: k.scope, user: k.user, old: old})
	}
	for k := range l.owners {
		if !customerInScope(k.scope, k.user) || !userKnown(k.user) {
			continue
		}
		if _, ok := sn.owners[k]; !ok {
			roles = append(roles, roleDiff{scope: k.scope, user: k.user, customer: true, role: owner})
		}
	}
	for k := range sn.owners {
		if _, ok := l.owners[k]; ok || !customerInScope(k.scope, k.user) {
			continue
		}
		roles = append(roles, roleDiff{scope: k.scope, user: k.user, customer: true, old: owner})
	}
	// A stable order (customers first, then by scope and user): the printed differences
	// and the notifications read in order.
	slices.SortFunc(roles, func(a, b roleDiff) int {
		if a.customer != b.customer {
			if a.customer {
				return -1
			}
			return 1
		}
		if c := bytes.Compare(a.scope[:], b.scope[:]); c != 0 {
			return c
		}
		return bytes.Compare(a.user[:], b.user[:])
	})
	d.roles = roles
	if nm != nil {
		for id, u := range sn.users {
			if _, ok := nm[id]; !ok {
				nm[id] = u.username
			}
		}
		for id, p := range sn.projects {
			if _, ok := nm[id]; !ok {
				nm[id] = p.name
			}
		}
		for id, c := range sn.customers {
			if _, ok := nm[id]; !ok {
				nm[id] = c.name
			}
		}
	}
	d.names = nm
	return d
}

// orZero is the uid string of a possibly empty uuid, as sProject.customer prints it.
func orZero(s string) string {
	if s == "" {
		return uid{}.String()
	}
	return s
}
