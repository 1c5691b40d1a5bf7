package platform_test

import (
	"context"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"matrixas/bot"
	"matrixas/db"
	"matrixas/internal/fakewaldur"
	"matrixas/platform"
	"matrixas/waldur"
)

var rules = db.ProfileRules{Domain: "example.org", BotLocalpart: "waldur-bot"}

// waits records the client's sleeps instead of sleeping: retries are checked by what
// was asked for, never by timing.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(_ context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return nil
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.d)
}

// env is a store, a fake platform and a syncer between them.
type env struct {
	t      *testing.T
	ctx    context.Context
	store  *db.Store
	fake   *fakewaldur.Server
	client *waldur.Client
	sync   *platform.Syncer
	waits  *waits
	woken  int
}

func newEnv(t *testing.T, opts ...func(*platform.Options)) *env {
	t.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	store.SetRoleNotices(bot.RoleNotices{})
	f := fakewaldur.New(t)
	w := &waits{}
	client, err := waldur.New(waldur.Config{URL: f.URL, Token: f.Token, Sleep: w.sleep, Now: f.Now,
		Backoff: func(retry int) time.Duration { return time.Duration(retry) * time.Second }, RequestTimeout: 2 * time.Second, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, store: store, fake: f, client: client, waits: w}
	o := platform.Options{
		Rules:            func(context.Context) (db.ProfileRules, error) { return rules, nil },
		Wake:             func() { e.woken++ },
		TokenFingerprint: waldur.Fingerprint(f.Token),
	}
	for _, f := range opts {
		f(&o)
	}
	e.sync = platform.New(store, client, o)
	return e
}

// full runs a full reconcile and fails the test on error.
func (e *env) full() *platform.Result {
	e.t.Helper()
	res, err := e.sync.Sync(e.ctx, true, false)
	if err != nil {
		e.t.Fatalf("full sync: %v", err)
	}
	return res
}

func (e *env) incremental() *platform.Result {
	e.t.Helper()
	res, err := e.sync.Sync(e.ctx, false, false)
	if err != nil {
		e.t.Fatalf("incremental sync: %v", err)
	}
	return res
}

// world is the small platform of the end-to-end scenario: 2 customers, 3 projects, 6 users.
type world struct {
	c1, c2         fakewaldur.Customer
	p1, p2, p3     fakewaldur.Project
	u              [6]fakewaldur.User // u[0] owns c1; u[5] is inactive
	supportGrant   fakewaldur.Permission
	expiredGrantOn string
}

func (e *env) seedWorld() *world {
	f := e.fake
	w := &world{}
	w.c1 = f.AddCustomer(fakewaldur.Customer{Name: "Acme", Abbreviation: "ACME"})
	w.c2 = f.AddCustomer(fakewaldur.Customer{Name: "Globex", Abbreviation: "GLX"})
	w.p1 = f.AddProject(fakewaldur.Project{Name: "Apollo", CustomerUUID: w.c1.UUID})
	w.p2 = f.AddProject(fakewaldur.Project{Name: "Borealis", CustomerUUID: w.c1.UUID})
	w.p3 = f.AddProject(fakewaldur.Project{Name: "Cygnus", CustomerUUID: w.c2.UUID})
	names := []string{"olga", "adam", "mia", "max", "nils", "ivy"}
	for i, n := range names {
		w.u[i] = f.AddUser(fakewaldur.User{Username: n, Email: n + "@example.org", FirstName: n, LastName: "Tester", Active: i != 5})
	}
	grant := func(u fakewaldur.User, role, scopeType, scope string) fakewaldur.Permission {
		return f.Grant(fakewaldur.Permission{UserUUID: u.UUID, Role: role, ScopeType: scopeType, ScopeUUID: scope})
	}
	grant(w.u[0], "CUSTOMER.OWNER", "customer", w.c1.UUID)
	grant(w.u[1], "PROJECT.ADMIN", "project", w.p1.UUID)
	grant(w.u[2], "PROJECT.MANAGER", "project", w.p1.UUID)
	grant(w.u[3], "PROJECT.MEMBER", "project", w.p1.UUID)
	grant(w.u[3], "PROJECT.ADMIN", "project", w.p2.UUID)
	grant(w.u[4], "PROJECT.MEMBER", "project", w.p3.UUID)
	grant(w.u[5], "PROJECT.MEMBER", "project", w.p3.UUID)
	grant(w.u[4], "PROJECT.MEMBER", "project", w.p2.UUID)
	// Not mirrored: another customer role, and a grant already expired.
	w.supportGrant = grant(w.u[2], "CUSTOMER.SUPPORT", "customer", w.c2.UUID)
	grant(w.u[1], "PROJECT.MEMBER", "project", w.p3.UUID)
	f.SetExpiration(w.u[1].UUID, "PROJECT.MEMBER", w.p3.UUID, f.Now().Add(-time.Hour))
	w.expiredGrantOn = w.p3.UUID
	return w
}

// roles returns a project's roles as "username:ROLE", sorted.
func (e *env) roles(projectUUID string) []string {
	e.t.Helper()
	p, err := e.store.ProjectByUUID(e.ctx, projectUUID)
	if err != nil {
		e.t.Fatalf("project %s: %v", projectUUID, err)
	}
	rs, err := e.store.ListRoles(e.ctx, p.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.Username+":"+r.Role)
	}
	sort.Strings(out)
	return out
}

// owners returns a customer's owners' usernames, sorted.
func (e *env) owners(customerUUID string) []string {
	e.t.Helper()
	c, err := e.store.CustomerByUUID(e.ctx, customerUUID)
	if err != nil {
		e.t.Fatalf("customer %s: %v", customerUUID, err)
	}
	os, err := e.store.ListCustomerOwners(e.ctx, c.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, o := range os {
		out = append(out, o.Username)
	}
	sort.Strings(out)
	return out
}

// state is the whole directory as one comparable value.
func (e *env) state() string {
	e.t.Helper()
	var rows []string
	err := e.store.ReadDirectory(e.ctx, db.DirectoryReader{
		Customer: func(uuid, name, abbr, source string) error {
			rows = append(rows, "c "+uuid+" "+name+" "+abbr+" "+source)
			return nil
		},
		User: func(u *db.User) error {
			rows = append(rows, "u "+u.UUID+" "+u.Username+" "+u.FullName+" "+u.Source+" "+map[bool]string{true: "active", false: "inactive"}[u.IsActive])
			return nil
		},
		Project: func(uuid, name, desc, customer, source string) error {
			rows = append(rows, "p "+uuid+" "+name+" "+customer+" "+source)
			return nil
		},
		ProjectRole:   func(p, u, role string) error { rows = append(rows, "r "+p+" "+u+" "+role); return nil },
		CustomerOwner: func(c, u string) error { rows = append(rows, "o "+c+" "+u); return nil },
	})
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(rows)
	out := ""
	for _, r := range rows {
		out += r + "\n"
	}
	return out
}
