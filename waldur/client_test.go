package waldur_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"matrixas/internal/fakewaldur"
	"matrixas/waldur"
)

// waits records the client's sleeps instead of sleeping, so retries are checked by
// what was asked for, never by timing.
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

// newClient returns a client of the fake whose clock is the fake's and whose waits are
// recorded; change adjusts the config.
func newClient(t *testing.T, f *fakewaldur.Server, change func(*waldur.Config)) (*waldur.Client, *waits) {
	t.Helper()
	w := &waits{}
	cfg := waldur.Config{URL: f.URL, Token: f.Token, UserAgent: "matrixas/test", Sleep: w.sleep, Now: f.Now,
		Backoff: func(retry int) time.Duration { return time.Duration(retry) * time.Second }}
	if change != nil {
		change(&cfg)
	}
	c, err := waldur.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// listKind lists one kind fully and returns the uuids (scope|user|role for grants).
func listKind(ctx context.Context, c *waldur.Client, kind string, opts waldur.ListOptions) ([]string, error) {
	var out []string
	var err error
	switch kind {
	case "customers":
		err = c.Customers(ctx, func(x waldur.Customer) error { out = append(out, x.UUID); return nil })
	case "projects":
		err = c.Projects(ctx, opts, func(x waldur.Project) error { out = append(out, x.UUID); return nil })
	case "users":
		err = c.Users(ctx, opts, func(x waldur.User) error { out = append(out, x.UUID); return nil })
	case "roles":
		err = c.RoleAssignments(ctx, opts, func(x waldur.RoleAssignment) error {
			out = append(out, x.ScopeUUID+"|"+x.UserUUID+"|"+string(x.Role))
			return nil
		})
	}
	return out, err
}

var listPath = map[string]string{
	"customers": "/api/customers/",
	"projects":  "/api/projects/",
	"users":     "/api/users/",
	"roles":     "/api/user-permissions/",
}

// TestFullListingPagesThroughLinks lists every kind of a generated platform: each item
// once, and exactly ceil(N/300) requests per kind.
func TestFullListingPagesThroughLinks(t *testing.T) {
	f := fakewaldur.New(t)
	if err := f.Generate(fakewaldur.Scale{Customers: 301, Projects: 901, Users: 650, Roles: 1500}); err != nil {
		t.Fatal(err)
	}
	c, w := newClient(t, f, nil)
	for _, tc := range []struct {
		kind     string
		n, pages int
	}{
		{"customers", 301, 2},
		{"projects", 901, 4},
		{"users", 650, 3},
		{"roles", 1500, 5},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			f.ResetRequests()
			got, err := listKind(context.Background(), c, tc.kind, waldur.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.n {
				t.Errorf("listed %d, want %d", len(got), tc.n)
			}
			if slices.Sort(got); len(slices.Compact(got)) != tc.n {
				t.Errorf("an item came twice")
			}
			if r := f.Requests(listPath[tc.kind]); r != tc.pages {
				t.Errorf("%d requests, want %d", r, tc.pages)
			}
		})
	}
	if len(w.all()) != 0 {
		t.Errorf("waited %v without a fault", w.all())
	}
	if s := c.Stats(); s.Requests != 2+4+3+5 || s.Retries != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestListedFieldsAreTheDirectory checks what each kind carries.
func TestListedFieldsAreTheDirectory(t *testing.T) {
	f := fakewaldur.New(t)
	org := f.AddCustomer(fakewaldur.Customer{Name: "Alpha Org", Abbreviation: "ALPHA"})
	p := f.AddProject(fakewaldur.Project{Name: "Apollo", CustomerUUID: org.UUID})
	gone := f.AddProject(fakewaldur.Project{Name: "Gemini", CustomerUUID: org.UUID})
	f.RemoveProject(gone.UUID)
	alice := f.AddUser(fakewaldur.User{Username: "alice", Email: "alice@example.org", FirstName: "Alice", LastName: "Liddell", Active: true})
	carol := f.AddUser(fakewaldur.User{Username: "carol", Active: false})
	c, _ := newClient(t, f, nil)
	ctx := context.Background()

	var customers []waldur.Customer
	if err := c.Customers(ctx, func(x waldur.Customer) error { customers = append(customers, x); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []waldur.Customer{{UUID: org.UUID, Name: "Alpha Org", Abbreviation: "ALPHA"}}; !slices.Equal(customers, want) {
		t.Errorf("customers = %+v, want %+v", customers, want)
	}
	var projects []waldur.Project
	if err := c.Projects(ctx, waldur.ListOptions{}, func(x waldur.Project) error { projects = append(projects, x); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []waldur.Project{{UUID: p.UUID, Name: "Apollo", CustomerUUID: org.UUID}}; !slices.Equal(projects, want) {
		t.Errorf("projects = %+v, want %+v (a removed project is absent from a full listing)", projects, want)
	}
	var users []waldur.User
	if err := c.Users(ctx, waldur.ListOptions{}, func(x waldur.User) error { users = append(users, x); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []waldur.User{
		{UUID: alice.UUID, Username: "alice", Email: "alice@example.org", FullName: "Alice Liddell", Active: true},
		{UUID: carol.UUID, Username: "carol", Active: false},
	}
	if !slices.Equal(users, want) {
		t.Errorf("users = %+v, want %+v", users, want)
	}
}

// TestRolesKeptAndDropped: only the four mirrored roles on their own scope, only
// active grants, an expired grant is revoked.
func TestRolesKeptAndDropped(t *testing.T) {
	f := fakewaldur.New(t)
	org := f.AddCustomer(fakewaldur.Customer{Name: "Org", Abbreviation: "ORG"})
	p := f.AddProject(fakewaldur.Project{Name: "Apollo", CustomerUUID: org.UUID})
	u := f.AddUser(fakewaldur.User{Username: "u1", Active: true})
	v := f.AddUser(fakewaldur.User{Username: "u2", Active: true})
	now := f.Now()
	grant := func(user, role, scopeType, scope string, exp time.Time) {
		f.Grant(fakewaldur.Permission{UserUUID: user, Role: role, ScopeType: scopeType, ScopeUUID: scope, Expiration: exp})
	}
	later := now.Add(24 * time.Hour).Truncate(time.Microsecond)
	grant(u.UUID, "CUSTOMER.OWNER", "customer", org.UUID, time.Time{})
	grant(u.UUID, "PROJECT.ADMIN", "project", p.UUID, later)
	grant(v.UUID, "PROJECT.MANAGER", "project", p.UUID, time.Time{})
	grant(v.UUID, "CUSTOMER.SUPPORT", "customer", org.UUID, time.Time{})                    // not mirrored
	grant(v.UUID, "CUSTOMER.MANAGER", "customer", org.UUID, time.Time{})                    // not mirrored
	grant(v.UUID, "OFFERING.MANAGER", "offering", newUUID(), time.Time{})                   // not mirrored
	grant(u.UUID, "PROJECT.MEMBER", "project", p.UUID, now.Add(-time.Minute))               // expired, still listed
	grant(v.UUID, "PROJECT.MEMBER", "customer", org.UUID, time.Time{})                      // role on the wrong scope
	grant(v.UUID, "PROJECT.MEMBER", "project", p.UUID, time.Time{})                         // revoked below
	grant(v.UUID, "PROJECT.ADMIN", "project", p.UUID, now.Add(time.Hour).Add(-time.Second)) // expires later
	f.Revoke(v.UUID, "PROJECT.MEMBER", p.UUID)
	f.Advance(time.Hour) // the PROJECT.ADMIN of v has expired now

	c, _ := newClient(t, f, nil)
	var got []waldur.RoleAssignment
	if err := c.RoleAssignments(context.Background(), waldur.ListOptions{}, func(r waldur.RoleAssignment) error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []waldur.RoleAssignment{
		{UserUUID: u.UUID, Role: waldur.RoleCustomerOwner, ScopeType: waldur.ScopeCustomer, ScopeUUID: org.UUID, CustomerUUID: org.UUID},
		{UserUUID: u.UUID, Role: waldur.RoleProjectAdmin, ScopeType: waldur.ScopeProject, ScopeUUID: p.UUID, CustomerUUID: org.UUID, Expiration: later},
		{UserUUID: v.UUID, Role: waldur.RoleProjectManager, ScopeType: waldur.ScopeProject, ScopeUUID: p.UUID, CustomerUUID: org.UUID},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d grants %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i].UserUUID != want[i].UserUUID || got[i].Role != want[i].Role || got[i].ScopeType != want[i].ScopeType ||
			got[i].ScopeUUID != want[i].ScopeUUID || got[i].CustomerUUID != want[i].CustomerUUID || !got[i].Expiration.Equal(want[i].Expiration) {
			t.Errorf("grant %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestIncrementalListings uses the modified filters: changes since a time, removed
// projects marked, revocations not visible (they come from events and full runs).
func TestIncrementalListings(t *testing.T) {
	f := fakewaldur.New(t)
	org := f.AddCustomer(fakewaldur.Customer{Name: "Org", Abbreviation: "ORG"})
	a := f.AddProject(fakewaldur.Project{Name: "A", CustomerUUID: org.UUID})
	b := f.AddProject(fakewaldur.Project{Name: "B", CustomerUUID: org.UUID})
	f.AddProject(fakewaldur.Project{Name: "Untouched", CustomerUUID: org.UUID})
	x := f.AddUser(fakewaldur.User{Username: "x", Active: true})
	y := f.AddUser(fakewaldur.User{Username: "y", Active: true})
	f.Grant(fakewaldur.Permission{UserUUID: y.UUID, Role: "PROJECT.MEMBER", ScopeType: "project", ScopeUUID: a.UUID})
	f.Advance(time.Minute)
	since := f.Now()
	f.Advance(time.Minute)
	f.UpdateProject(a.UUID, func(p *fakewaldur.Project) { p.Name = "A renamed" })
	f.RemoveProject(b.UUID)
	f.UpdateUser(x.UUID, func(u *fakewaldur.User) { u.Active = false })
	f.Grant(fakewaldur.Permission{UserUUID: x.UUID, Role: "PROJECT.ADMIN", ScopeType: "project", ScopeUUID: a.UUID})
	f.Revoke(y.UUID, "PROJECT.MEMBER", a.UUID)

	c, _ := newClient(t, f, nil)
	ctx := context.Background()
	opts := waldur.ListOptions{ModifiedSince: since}
	var projects []waldur.Project
	if err := c.Projects(ctx, opts, func(p waldur.Project) error { projects = append(projects, p); return nil }); err != nil {
		t.Fatal(err)
	}
	wantProjects := []waldur.Project{
		{UUID: a.UUID, Name: "A renamed", CustomerUUID: org.UUID},
		{UUID: b.UUID, Name: "B", CustomerUUID: org.UUID, Removed: true},
	}
	if !slices.Equal(projects, wantProjects) {
		t.Errorf("projects since = %+v, want %+v", projects, wantProjects)
	}
	var users []waldur.User
	if err := c.Users(ctx, opts, func(u waldur.User) error { users = append(users, u); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []waldur.User{{UUID: x.UUID, Username: "x", Active: false}}; !slices.Equal(users, want) {
		t.Errorf("users since = %+v, want %+v", users, want)
	}
	roles, err := listKind(ctx, c, "roles", opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{a.UUID + "|" + x.UUID + "|PROJECT.ADMIN"}; !slices.Equal(roles, want) {
		t.Errorf("roles since = %v, want %v (the revocation is not listed)", roles, want)
	}
}

// TestRetryAfterIsHonoured: a 429 or 5xx in a listing is retried after what
// Retry-After says (seconds or an HTTP date), else after the backoff.
func TestRetryAfterIsHonoured(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter func(now time.Time) string
		want       time.Duration
	}{
		{"429 with seconds", http.StatusTooManyRequests, func(time.Time) string { return "7" }, 7 * time.Second},
		{"429 with a date", http.StatusTooManyRequests, func(now time.Time) string { return now.Add(30 * time.Second).UTC().Format(http.TimeFormat) }, 30 * time.Second},
		{"503 with seconds", http.StatusServiceUnavailable, func(time.Time) string { return "2" }, 2 * time.Second},
		{"500 without, the backoff", http.StatusInternalServerError, func(time.Time) string { return "" }, time.Second},
		{"502 with a date past, the backoff", http.StatusBadGateway, func(now time.Time) string { return now.Add(-time.Hour).UTC().Format(http.TimeFormat) }, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fakewaldur.New(t)
			if err := f.Generate(fakewaldur.Scale{Customers: 1, Projects: 700, Users: 1, Roles: 0}); err != nil {
				t.Fatal(err)
			}
			now := f.Now().Truncate(time.Second)
			c, w := newClient(t, f, func(cfg *waldur.Config) { cfg.Now = func() time.Time { return now } })
			f.Inject(fakewaldur.Fault{Path: "/api/projects/", Page: 2, Status: tc.status, RetryAfter: tc.retryAfter(now)})
			got, err := listKind(context.Background(), c, "projects", waldur.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 700 {
				t.Errorf("listed %d, want 700", len(got))
			}
			if !slices.Equal(w.all(), []time.Duration{tc.want}) {
				t.Errorf("waited %v, want [%v]", w.all(), tc.want)
			}
			if r := f.Requests("/api/projects/"); r != 4 {
				t.Errorf("%d requests, want 3 pages and 1 retry", r)
			}
		})
	}
}

// TestFailingListingReturnsTheError: a 5xx that stays, a Retry-After longer than the
// client may wait, a timeout: the listing ends with the error, after the items of the
// pages before (which the caller must then discard).
func TestFailingListingReturnsTheError(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    fakewaldur.Fault
		config   func(*waldur.Config)
		want     error
		requests int
		waits    int
	}{
		{name: "5xx mid-listing, attempts used up", fault: fakewaldur.Fault{Status: http.StatusBadGateway, Times: 10},
			want: waldur.ErrUnavailable, requests: 1 + 4, waits: 3},
		{name: "Retry-After longer than allowed", fault: fakewaldur.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3600"},
			want: waldur.ErrRateLimited, requests: 1 + 1, waits: 0},
		{name: "timeout", fault: fakewaldur.Fault{Delay: time.Minute, Times: 2},
			// The timeout must be far above what page 1 takes on a loaded machine (-race,
			// other packages' tests beside it), or page 1 times out instead of page 2.
			config: func(c *waldur.Config) { c.RequestTimeout = 2 * time.Second; c.MaxAttempts = 2 },
			want:   context.DeadlineExceeded, requests: 1 + 2, waits: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fakewaldur.New(t)
			if err := f.Generate(fakewaldur.Scale{Customers: 1, Projects: 700, Users: 1, Roles: 0}); err != nil {
				t.Fatal(err)
			}
			c, w := newClient(t, f, tc.config)
			tc.fault.Path, tc.fault.Page = "/api/projects/", 2
			f.Inject(tc.fault)
			got, err := listKind(context.Background(), c, "projects", waldur.ListOptions{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var werr *waldur.Error
			if !errors.As(err, &werr) || werr.Path != "/api/projects/" || werr.Method != http.MethodGet {
				t.Errorf("err = %#v, want a *waldur.Error naming GET /api/projects/", err)
			}
			if len(got) != 300 {
				t.Errorf("%d items before the error, want page 1's 300", len(got))
			}
			if r := f.Requests("/api/projects/"); r != tc.requests {
				t.Errorf("%d requests, want %d", r, tc.requests)
			}
			if n := len(w.all()); n != tc.waits {
				t.Errorf("waited %v, want %d waits", w.all(), tc.waits)
			}
		})
	}
}

// TestTokenRejected: 401 (wrong, expired) and 403 are ErrTokenRejected at once,
// never an empty listing, and the message carries neither the token nor a query.
func TestTokenRejected(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(f *fakewaldur.Server)
		token  string
		detail string
	}{
		{name: "expired", setup: func(f *fakewaldur.Server) { f.ExpireToken() }, detail: "Token has expired."},
		{name: "wrong", token: "0123456789abcdef", detail: "Invalid token."},
		{name: "403", setup: func(f *fakewaldur.Server) { f.Inject(fakewaldur.Fault{Status: http.StatusForbidden}) }, detail: "Forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fakewaldur.New(t)
			f.AddCustomer(fakewaldur.Customer{Name: "Org", Abbreviation: "ORG"})
			if tc.setup != nil {
				tc.setup(f)
			}
			c, w := newClient(t, f, func(cfg *waldur.Config) {
				if tc.token != "" {
					cfg.Token = tc.token
				}
			})
			got, err := listKind(context.Background(), c, "customers", waldur.ListOptions{})
			if !errors.Is(err, waldur.ErrTokenRejected) {
				t.Fatalf("err = %v, want ErrTokenRejected", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "token rejected") || !strings.Contains(msg, tc.detail) {
				t.Errorf("message %q lacks %q or %q", msg, "token rejected", tc.detail)
			}
			if strings.Contains(msg, f.Token) || strings.Contains(msg, "0123456789abcdef") || strings.Contains(msg, "page_size") {
				t.Errorf("message %q leaks the token or the query", msg)
			}
			if len(got) != 0 || f.Requests("/api/customers/") != 1 || len(w.all()) != 0 {
				t.Errorf("items %d, requests %d, waits %v: want none, 1, none", len(got), f.Requests("/api/customers/"), w.all())
			}
		})
	}
}

// TestMalformedPage: an answer that is not a list of valid objects ends the listing
// with ErrMalformed, is not retried, and delivers nothing of that page.
func TestMalformedPage(t *testing.T) {
	customer := newUUID()
	for _, tc := range []struct{ name, kind, body string }{
		{"an object, not a list", "projects", `{"detail": "x"}`},
		{"cut short", "projects", `[{"uuid": "` + customer},
		{"not JSON", "projects", `<html>Bad gateway</html>`},
		{"numbers, not objects", "projects", `[1, 2]`},
		{"data after the list", "projects", `[] []`},
		{"uuid not a uuid", "projects", `[{"uuid": "12", "name": "x", "customer_uuid": "` + customer + `"}]`},
		{"project without its customer", "projects", `[{"uuid": "` + customer + `", "name": "x"}]`},
		{"user without is_active", "users", `[{"uuid": "` + customer + `", "username": "x"}]`},
		{"grant with a bad expiration", "roles", `[{"user_uuid": "` + customer + `", "role_name": "PROJECT.ADMIN", "scope_type": "project", "scope_uuid": "` + customer + `", "expiration_time": "soon"}]`},
		{"a string where a name is", "projects", `[{"uuid": "` + customer + `", "name": 5, "customer_uuid": "` + customer + `"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fakewaldur.New(t)
			if err := f.Generate(fakewaldur.Scale{Customers: 1, Projects: 400, Users: 400, Roles: 400}); err != nil {
				t.Fatal(err)
			}
			c, w := newClient(t, f, nil)
			f.Inject(fakewaldur.Fault{Path: listPath[tc.kind], Page: 2, Body: tc.body})
			got, err := listKind(context.Background(), c, tc.kind, waldur.ListOptions{})
			if !errors.Is(err, waldur.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if len(got) != 300 {
				t.Errorf("%d items, want only page 1's 300", len(got))
			}
			if r := f.Requests(listPath[tc.kind]); r != 2 || len(w.all()) != 0 {
				t.Errorf("%d requests and waits %v, want 2 and none (no retry)", r, w.all())
			}
		})
	}
}

// TestListChangedBetweenPages: a project deleted ahead of the reader slides another
// past it; the listing says so instead of dropping it. A project added meanwhile lands
// at the end (oldest first) and is listed.
func TestListChangedBetweenPages(t *testing.T) {
	f := fakewaldur.New(t)
	if err := f.Generate(fakewaldur.Scale{Customers: 1, Projects: 650, Users: 1, Roles: 0}); err != nil {
		t.Fatal(err)
	}
	c, _ := newClient(t, f, nil)
	var first []string
	customer := ""
	if err := c.Projects(context.Background(), waldur.ListOptions{}, func(p waldur.Project) error {
		first, customer = append(first, p.UUID), p.CustomerUUID
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var added fakewaldur.Project
	f.Inject(fakewaldur.Fault{Path: "/api/projects/", Page: 2, Before: func() {
		added = f.AddProject(fakewaldur.Project{Name: "New", CustomerUUID: customer})
	}})
	got, err := listKind(context.Background(), c, "projects", waldur.ListOptions{})
	if err != nil {
		t.Fatalf("a project added while listing: %v", err)
	}
	if len(got) != 651 || !slices.Contains(got, added.UUID) {
		t.Errorf("listed %d, want 651 with the new one", len(got))
	}

	f.Inject(fakewaldur.Fault{Path: "/api/projects/", Page: 2, Before: func() { f.RemoveProject(first[0]) }})
	_, err = listKind(context.Background(), c, "projects", waldur.ListOptions{})
	if !errors.Is(err, waldur.ErrListChanged) {
		t.Errorf("a project removed ahead of the reader: err = %v, want ErrListChanged", err)
	}
}

// TestLinkHandling runs against a hand-written server: the next link is followed as
// given (a cursor the client could not have built), kept on the configured origin,
// refused when it leaves the API or loops; headers are the client's.
func TestLinkHandling(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	var next string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RequestURI()+" "+r.Header.Get("Authorization")+" "+r.Header.Get("User-Agent"))
		link := next
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("cursor") == "" && link != "" {
			w.Header().Set("Link", link)
		}
		w.Write([]byte(`[{"uuid": "` + newUUID() + `", "name": "x", "abbreviation": "X"}]`))
	}))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name, link string
		wantErr    error
		wantSecond string // the second request's URI
	}{
		{name: "absolute, with a cursor", link: `<` + srv.URL + `/api/customers/?cursor=a%2Cb&page_size=300>; rel="next", <` + srv.URL + `/api/customers/?page=9>; rel="last"`,
			wantSecond: "/api/customers/?cursor=a%2Cb&page_size=300"},
		{name: "rel among others, relative", link: `</api/customers/?cursor=z>; rel="prev next"`, wantSecond: "/api/customers/?cursor=z"},
		{name: "another host keeps ours", link: `<http://internal:8000/api/customers/?cursor=h>; rel="next"`, wantSecond: "/api/customers/?cursor=h"},
		{name: "outside the API", link: `<` + srv.URL + `/admin/?cursor=x>; rel="next"`, wantErr: waldur.ErrMalformed},
		{name: "a loop", link: `<` + srv.URL + `/api/customers/?page_size=300&field=uuid&field=name&field=abbreviation>; rel="next"`, wantErr: waldur.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			seen, next = nil, tc.link
			mu.Unlock()
			c, err := waldur.New(waldur.Config{URL: srv.URL + "/api/", Token: "tok-123", UserAgent: "matrixas/test"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = listKind(context.Background(), c, "customers", waldur.ListOptions{})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			mu.Lock()
			defer mu.Unlock()
			if !strings.HasSuffix(seen[0], " Token tok-123 matrixas/test") {
				t.Errorf("headers of the first request: %q", seen[0])
			}
			if tc.wantSecond != "" && (len(seen) != 2 || !strings.HasPrefix(seen[1], tc.wantSecond+" ")) {
				t.Errorf("requests %q, want the second to be %s", seen, tc.wantSecond)
			}
		})
	}
}

func TestSingleReads(t *testing.T) {
	f := fakewaldur.New(t)
	org := f.AddCustomer(fakewaldur.Customer{Name: "Org", Abbreviation: "ORG"})
	p := f.AddProject(fakewaldur.Project{Name: "Apollo", CustomerUUID: org.UUID})
	gone := f.AddProject(fakewaldur.Project{Name: "Gemini", CustomerUUID: org.UUID})
	f.RemoveProject(gone.UUID)
	u := f.AddUser(fakewaldur.User{Username: "u1", Email: "u1@example.org", Active: true})
	v := f.AddUser(fakewaldur.User{Username: "u2", Active: true})
	f.Grant(fakewaldur.Permission{UserUUID: u.UUID, Role: "CUSTOMER.OWNER", ScopeType: "customer", ScopeUUID: org.UUID})
	f.Grant(fakewaldur.Permission{UserUUID: v.UUID, Role: "CUSTOMER.SUPPORT", ScopeType: "customer", ScopeUUID: org.UUID})
	f.Grant(fakewaldur.Permission{UserUUID: v.UUID, Role: "PROJECT.MEMBER", ScopeType: "project", ScopeUUID: p.UUID})
	f.Grant(fakewaldur.Permission{UserUUID: u.UUID, Role: "PROJECT.ADMIN", ScopeType: "project", ScopeUUID: p.UUID})
	c, _ := newClient(t, f, nil)
	ctx := context.Background()

	if got, err := c.Customer(ctx, strings.ToUpper(org.UUID)); err != nil || got != (waldur.Customer{UUID: org.UUID, Name: "Org", Abbreviation: "ORG"}) {
		t.Errorf("Customer = %+v, %v", got, err)
	}
	if got, err := c.Project(ctx, p.UUID); err != nil || got != (waldur.Project{UUID: p.UUID, Name: "Apollo", CustomerUUID: org.UUID}) {
		t.Errorf("Project = %+v, %v", got, err)
	}
	if got, err := c.Project(ctx, gone.UUID); err != nil || !got.Removed {
		t.Errorf("removed Project = %+v, %v; want Removed", got, err)
	}
	if got, err := c.User(ctx, u.UUID); err != nil || got != (waldur.User{UUID: u.UUID, Username: "u1", Email: "u1@example.org", Active: true}) {
		t.Errorf("User = %+v, %v", got, err)
	}
	for _, read := range []func() error{
		func() error { _, err := c.Project(ctx, newUUID()); return err },
		func() error { _, err := c.User(ctx, newUUID()); return err },
		func() error { _, err := c.Customer(ctx, newUUID()); return err },
	} {
		if err := read(); !errors.Is(err, waldur.ErrNotFound) {
			t.Errorf("missing object: err = %v, want ErrNotFound", err)
		}
	}
	before := f.Requests("")
	if _, err := c.Project(ctx, "../users"); err == nil || f.Requests("") != before {
		t.Errorf("a bad uuid: err %v, %d requests; want an error and no request", err, f.Requests("")-before)
	}

	roles, err := c.ScopeRoles(ctx, waldur.ScopeProject, p.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) != 2 || roles[0].UserUUID != v.UUID || roles[0].Role != waldur.RoleProjectMember ||
		roles[1].UserUUID != u.UUID || roles[1].Role != waldur.RoleProjectAdmin || roles[1].ScopeUUID != p.UUID || roles[1].CustomerUUID != "" {
		t.Errorf("project roles = %+v", roles)
	}
	roles, err = c.ScopeRoles(ctx, waldur.ScopeCustomer, org.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []waldur.RoleAssignment{{UserUUID: u.UUID, Role: waldur.RoleCustomerOwner, ScopeType: waldur.ScopeCustomer, ScopeUUID: org.UUID, CustomerUUID: org.UUID}}; !slices.Equal(roles, want) {
		t.Errorf("customer roles = %+v, want %+v (support is not mirrored)", roles, want)
	}
	roles, err = c.UserRoles(ctx, v.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []waldur.RoleAssignment{{UserUUID: v.UUID, Role: waldur.RoleProjectMember, ScopeType: waldur.ScopeProject, ScopeUUID: p.UUID, CustomerUUID: org.UUID}}; !slices.Equal(roles, want) {
		t.Errorf("user roles = %+v, want %+v", roles, want)
	}
	if _, err := c.ScopeRoles(ctx, waldur.ScopeProject, gone.UUID); !errors.Is(err, waldur.ErrNotFound) {
		t.Errorf("roles of a removed project: %v, want ErrNotFound", err)
	}
}

// TestLiveReads: what !status and !orders read.
func TestLiveReads(t *testing.T) {
	f := fakewaldur.New(t)
	org := f.AddCustomer(fakewaldur.Customer{Name: "Org", Abbreviation: "ORG"})
	p := f.AddProject(fakewaldur.Project{Name: "Apollo", CustomerUUID: org.UUID})
	other := f.AddProject(fakewaldur.Project{Name: "Other", CustomerUUID: org.UUID})
	for i := range 7 {
		f.AddResource(fakewaldur.Resource{Name: "bad-" + string(rune('a'+i)), State: "Erred", OfferingName: "VMs", ProjectUUID: p.UUID})
	}
	f.AddResource(fakewaldur.Resource{Name: "ok", State: "OK", OfferingName: "VMs", ProjectUUID: p.UUID})
	f.AddResource(fakewaldur.Resource{Name: "new", State: "Creating", OfferingName: "VMs", ProjectUUID: p.UUID})
	f.AddResource(fakewaldur.Resource{Name: "elsewhere", State: "Erred", ProjectUUID: other.UUID})
	var orders []fakewaldur.Order
	for i, st := range []string{"done", "pending-consumer", "executing", "rejected", "pending-provider", "erred", "done"} {
		orders = append(orders, f.AddOrder(fakewaldur.Order{State: st, Type: "Create", ResourceName: "r" + string(rune('0'+i)),
			OfferingName: "VMs", ProjectUUID: p.UUID, CreatedByUsername: "alice", CreatedByFullName: "Alice A"}))
	}
	c, _ := newClient(t, f, nil)
	ctx := context.Background()

	erred, err := c.ProjectResources(ctx, p.UUID, []waldur.ResourceState{waldur.ResourceErred}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(erred.Items) != 5 || erred.Total != 7 || erred.Items[0].Name != "bad-a" || erred.Items[0].State != waldur.ResourceErred || erred.Items[0].OfferingName != "VMs" {
		t.Errorf("erred = %+v", erred)
	}
	busy, err := c.ProjectResources(ctx, p.UUID, []waldur.ResourceState{waldur.ResourceCreating, waldur.ResourceUpdating, waldur.ResourceTerminating}, waldur.PageSize)
	if err != nil || busy.Total != 1 || busy.Items[0].Name != "new" {
		t.Errorf("busy = %+v, %v", busy, err)
	}
	last, err := c.ProjectOrders(ctx, p.UUID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(last.Items) != 5 || last.Total != 7 {
		t.Fatalf("last orders = %+v", last)
	}
	for i, o := range last.Items {
		want := orders[len(orders)-1-i]
		if o.UUID != want.UUID || string(o.State) != want.State || o.Type != "Create" || o.ResourceName != want.ResourceName ||
			o.OfferingName != "VMs" || o.CreatedByFullName != "Alice A" || !o.Created.Equal(want.Created) {
			t.Errorf("order %d = %+v, want %+v (newest first)", i, o, want)
		}
	}
	waiting, err := c.ProjectOrders(ctx, p.UUID, waldur.OrdersAwaitingApproval, 5)
	if err != nil {
		t.Fatal(err)
	}
	if waiting.Total != 2 || !waiting.Items[0].AwaitingApproval() || !waiting.Items[1].AwaitingApproval() || last.Items[0].AwaitingApproval() {
		t.Errorf("awaiting approval = %+v", waiting)
	}
	if _, err := c.ProjectOrders(ctx, p.UUID, nil, 301); err == nil {
		t.Errorf("a limit over the page size was accepted")
	}
}

func TestHooks(t *testing.T) {
	f := fakewaldur.New(t)
	c, w := newClient(t, f, nil)
	ctx := context.Background()
	dest := "https://bridge.example.org/api/waldur/events/s3cret-value/"

	h, err := c.RegisterHook(ctx, dest, waldur.HookEventTypes)
	if err != nil {
		t.Fatal(err)
	}
	if h.DestinationURL != dest || !slices.Equal(h.EventTypes, waldur.HookEventTypes) || h.ContentType != "json" || !h.IsActive || h.UUID == "" || h.Created.IsZero() {
		t.Errorf("registered %+v", h)
	}
	if got := f.Hooks(); len(got) != 1 || got[0].UUID != h.UUID || got[0].ContentType != "json" {
		t.Errorf("the platform holds %+v", got)
	}
	if _, err := c.RegisterHook(ctx, "https://elsewhere.example.org/hook/", []string{"role_granted"}); err != nil {
		t.Fatal(err)
	}
	found, err := c.Hooks(ctx, dest)
	if err != nil || len(found) != 1 || found[0].UUID != h.UUID {
		t.Errorf("Hooks(dest) = %+v, %v", found, err)
	}
	all, err := c.Hooks(ctx, "")
	if err != nil || len(all) != 2 {
		t.Errorf("Hooks() = %+v, %v", all, err)
	}
	if err := c.DeleteHook(ctx, h.UUID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteHook(ctx, h.UUID); err != nil {
		t.Errorf("deleting a hook already gone: %v", err)
	}
	if got := f.Hooks(); len(got) != 1 {
		t.Errorf("after delete the platform holds %d hooks", len(got))
	}

	// A POST that failed with a 5xx may have registered the hook: not retried.
	before := f.Requests("/api/hooks-web/")
	f.Inject(fakewaldur.Fault{Path: "/api/hooks-web/", Status: http.StatusInternalServerError})
	if _, err := c.RegisterHook(ctx, dest, waldur.HookEventTypes); !errors.Is(err, waldur.ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
	if got := f.Requests("/api/hooks-web/") - before; got != 1 {
		t.Errorf("a failed registration was sent %d times, want once", got)
	}
	// A 429 did nothing: retried.
	f.Inject(fakewaldur.Fault{Path: "/api/hooks-web/", Status: http.StatusTooManyRequests, RetryAfter: "1"})
	if _, err := c.RegisterHook(ctx, dest, waldur.HookEventTypes); err != nil {
		t.Errorf("after a 429: %v", err)
	}
	// Errors never show the destination (it holds the receiver's secret) nor the token.
	f.Inject(fakewaldur.Fault{Path: "/api/hooks-web/", Status: http.StatusBadGateway, Times: 10})
	_, err = c.Hooks(ctx, dest)
	if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), f.Token) {
		t.Errorf("err = %v", err)
	}
	if len(w.all()) == 0 {
		t.Errorf("no wait recorded for the retries")
	}
}

func TestNewChecksTheConfig(t *testing.T) {
	for _, tc := range []struct {
		name, url, token, wantBase string
		ok                         bool
	}{
		{"plain", "https://waldur.example.org", "t", "https://waldur.example.org", true},
		{"with /api/", "https://waldur.example.org/api/", "t", "https://waldur.example.org", true},
		{"under a prefix", "https://example.org/waldur/", "t", "https://example.org/waldur", true},
		{"relative", "waldur.example.org", "t", "", false},
		{"other scheme", "ftp://waldur.example.org", "t", "", false},
		{"with a query", "https://waldur.example.org/?x=1", "t", "", false},
		{"with credentials", "https://u:p@waldur.example.org", "t", "", false},
		{"no token", "https://waldur.example.org", "", "", false},
		{"token with a newline", "https://waldur.example.org", "a\nb", "", false},
		{"token with a space", "https://waldur.example.org", "a b", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := waldur.New(waldur.Config{URL: tc.url, Token: tc.token})
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if err != nil && strings.Contains(err.Error(), tc.token) && tc.token != "" && tc.token != "t" {
				t.Errorf("the error shows the token: %v", err)
			}
			if tc.ok && c.BaseURL() != tc.wantBase {
				t.Errorf("BaseURL = %q, want %q", c.BaseURL(), tc.wantBase)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	fp := waldur.Fingerprint("a-secret-token")
	// sha256("a-secret-token") starts with these 12 hex digits.
	if fp != "sha256:"+sha256Hex("a-secret-token")[:12] || strings.Contains(fp, "a-secret-token") {
		t.Errorf("Fingerprint = %q", fp)
	}
	if waldur.Fingerprint("another") == fp || waldur.Fingerprint("") != "" {
		t.Errorf("fingerprints do not tell tokens apart")
	}
}

// TestRedirectIsNotFollowed: a redirect would carry the token along; it is an error
// that says where the platform points.
func TestRedirectIsNotFollowed(t *testing.T) {
	var mu sync.Mutex
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		http.Redirect(w, r, "https://waldur.example.org"+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	t.Cleanup(srv.Close)
	c, err := waldur.New(waldur.Config{URL: srv.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Customer(context.Background(), newUUID())
	if !errors.Is(err, waldur.ErrRefused) || !strings.Contains(err.Error(), "redirects to https://waldur.example.org") {
		t.Errorf("err = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 1 {
		t.Errorf("%d requests, want 1", requests)
	}
}
