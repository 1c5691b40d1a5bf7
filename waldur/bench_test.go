package waldur_test

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"matrixas/internal/fakewaldur"
	"matrixas/waldur"
)

// benchScale is the benchmark platform.
var benchScale = fakewaldur.Scale{Customers: 500, Projects: 10_000, Users: 50_000, Roles: 150_000}

// benchPlatform starts the fake with the benchmark platform. Its answers are not
// checked against the description here (TestGeneratedPlatformAnswersAsDescribed checks
// the same generator's answers): the checker would be timed as the client.
func benchPlatform(b *testing.B) (*fakewaldur.Server, *waldur.Client) {
	b.Helper()
	f := fakewaldur.New(b)
	if err := f.Generate(benchScale); err != nil {
		b.Fatal(err)
	}
	f.SetValidation(false)
	c, err := waldur.New(waldur.Config{URL: f.URL, Token: f.Token})
	if err != nil {
		b.Fatal(err)
	}
	return f, c
}

// directory is what a sync engine collects from a full listing: names and the role set.
type directory struct {
	customers map[string]string
	projects  map[string]waldur.Project
	users     map[string]waldur.User
	roles     map[[2]string]waldur.Role
}

func collect(ctx context.Context, c *waldur.Client, opts waldur.ListOptions) (*directory, error) {
	d := &directory{customers: map[string]string{}, projects: map[string]waldur.Project{},
		users: map[string]waldur.User{}, roles: map[[2]string]waldur.Role{}}
	if err := c.Customers(ctx, func(x waldur.Customer) error { d.customers[x.UUID] = x.Name; return nil }); err != nil {
		return nil, err
	}
	if err := c.Projects(ctx, opts, func(x waldur.Project) error { d.projects[x.UUID] = x; return nil }); err != nil {
		return nil, err
	}
	if err := c.Users(ctx, opts, func(x waldur.User) error { d.users[x.UUID] = x; return nil }); err != nil {
		return nil, err
	}
	err := c.RoleAssignments(ctx, opts, func(x waldur.RoleAssignment) error {
		d.roles[[2]string{x.ScopeUUID, x.UserUUID}] = x.Role
		return nil
	})
	return d, err
}

// BenchmarkFullListing lists the benchmark platform (10,000 projects, 50,000 users,
// 150,000 grants) as a full reconcile does, collecting it into maps. The fake serves
// in the same process, so ns/op and B/op include it: BenchmarkFullListingBaseline
// fetches the same pages without decoding them, for the difference. retained-MiB is
// the heap the collected directory holds once listed (what a run keeps until it has
// applied the differences); the pages themselves are garbage as soon as read.
func BenchmarkFullListing(b *testing.B) {
	f, c := benchPlatform(b)
	ctx := context.Background()
	b.ReportAllocs()
	f.ResetRequests()
	var d *directory
	for b.Loop() {
		var err error
		if d, err = collect(ctx, c, waldur.ListOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if len(d.projects) != benchScale.Projects || len(d.users) != benchScale.Users || len(d.roles) != benchScale.Roles {
		b.Fatalf("collected %d projects, %d users, %d roles", len(d.projects), len(d.users), len(d.roles))
	}
	b.ReportMetric(float64(f.Requests(""))/float64(b.N), "requests/op")
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	runtime.KeepAlive(d)
	d = nil
	runtime.GC()
	runtime.ReadMemStats(&without)
	b.ReportMetric(float64(int64(with.HeapAlloc)-int64(without.HeapAlloc))/(1<<20), "retained-MiB")
}

// BenchmarkFullListingBaseline walks the same pages through their Link headers and
// discards the bodies: the fake's and HTTP's share of BenchmarkFullListing.
func BenchmarkFullListingBaseline(b *testing.B) {
	f, _ := benchPlatform(b)
	hc := &http.Client{}
	b.ReportAllocs()
	f.ResetRequests()
	for b.Loop() {
		for _, first := range []string{
			"/api/customers/?field=uuid&field=name&field=abbreviation&page_size=300",
			"/api/projects/?field=uuid&field=name&field=customer_uuid&field=is_removed&o=created&page_size=300",
			"/api/users/?field=uuid&field=username&field=email&field=full_name&field=is_active&page_size=300",
			"/api/user-permissions/?o=created&page_size=300",
		} {
			next := f.URL + first
			for next != "" {
				req, _ := http.NewRequest(http.MethodGet, next, nil)
				req.Header.Set("Authorization", "Token "+f.Token)
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				next = ""
				for _, l := range strings.Split(resp.Header.Get("Link"), ", ") {
					if strings.HasSuffix(l, `rel="next"`) {
						next = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
					}
				}
			}
		}
	}
	b.ReportMetric(float64(f.Requests(""))/float64(b.N), "requests/op")
}

// BenchmarkIncrementalListing changes 10 things on the benchmark platform (a project
// renamed, one removed, a user deactivated, grants added and changed...) and lists
// what changed since just before, as an incremental run does.
func BenchmarkIncrementalListing(b *testing.B) {
	f, c := benchPlatform(b)
	ctx := context.Background()
	var projects, users []string
	if err := c.Projects(ctx, waldur.ListOptions{}, func(p waldur.Project) error {
		if len(projects) < 5 {
			projects = append(projects, p.UUID)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if err := c.Users(ctx, waldur.ListOptions{}, func(u waldur.User) error {
		if len(users) < 5 {
			users = append(users, u.UUID)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	f.Advance(time.Second)
	since := f.Now()
	f.UpdateProject(projects[0], func(p *fakewaldur.Project) { p.Name = "Renamed" })
	f.RemoveProject(projects[1])
	f.UpdateUser(users[0], func(u *fakewaldur.User) { u.Active = false })
	f.UpdateUser(users[1], func(u *fakewaldur.User) { u.Email = "new@example.org" })
	for i := range 4 {
		f.Grant(fakewaldur.Permission{UserUUID: users[2+i%3], Role: "PROJECT.ADMIN", ScopeType: "project", ScopeUUID: projects[(2+i)%5]})
	}
	f.SetExpiration(users[2], "PROJECT.ADMIN", projects[2], since.Add(time.Hour))
	f.AddUser(fakewaldur.User{Username: "newcomer", Active: true})
	b.ReportAllocs()
	f.ResetRequests()
	var d *directory
	for b.Loop() {
		var err error
		if d, err = collect(ctx, c, waldur.ListOptions{ModifiedSince: since}); err != nil {
			b.Fatal(err)
		}
	}
	if len(d.projects) != 2 || len(d.users) != 3 || len(d.roles) != 4 {
		b.Fatalf("incremental: %d projects, %d users, %d roles; want 2, 3, 4", len(d.projects), len(d.users), len(d.roles))
	}
	b.ReportMetric(float64(f.Requests(""))/float64(b.N), "requests/op")
}
