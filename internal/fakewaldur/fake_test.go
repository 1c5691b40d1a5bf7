package fakewaldur_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"matrixas/internal/fakewaldur"
)

// recorder stands in for the test so that the fake's complaints can be asserted.
type recorder struct {
	t    *testing.T
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper()          {}
func (r *recorder) Cleanup(f func()) { r.t.Cleanup(f) }
func (r *recorder) Fatalf(format string, args ...any) {
	r.t.Fatalf(format, args...)
}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) complaints() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// get calls the fake as a client would and returns the status, headers and body.
func get(t *testing.T, f *fakewaldur.Server, path string) (int, http.Header, []byte) {
	t.Helper()
	return call(t, f, http.MethodGet, path, "")
}

func call(t *testing.T, f *fakewaldur.Server, method, path, body string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Token "+f.Token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// seed fills a small platform: 2 customers, 3 projects (one removed), 4 users (one
// inactive), grants of every kind, a resource, an order.
func seed(f *fakewaldur.Server) (customer fakewaldur.Customer, project fakewaldur.Project, user fakewaldur.User) {
	c1 := f.AddCustomer(fakewaldur.Customer{Name: "Alpha Org", Abbreviation: "ALPHA"})
	c2 := f.AddCustomer(fakewaldur.Customer{Name: "Beta Org", Abbreviation: "BETA"})
	p1 := f.AddProject(fakewaldur.Project{Name: "Apollo", CustomerUUID: c1.UUID})
	f.AddProject(fakewaldur.Project{Name: "Gemini", CustomerUUID: c2.UUID})
	p3 := f.AddProject(fakewaldur.Project{Name: "Mercury", CustomerUUID: c2.UUID})
	alice := f.AddUser(fakewaldur.User{Username: "alice", Email: "alice@example.org", FirstName: "Alice", LastName: "A", Active: true})
	bob := f.AddUser(fakewaldur.User{Username: "bob", Email: "bob@example.org", Active: true})
	f.AddUser(fakewaldur.User{Username: "carol", Active: false})
	f.Grant(fakewaldur.Permission{UserUUID: alice.UUID, Role: "CUSTOMER.OWNER", ScopeType: "customer", ScopeUUID: c1.UUID})
	f.Grant(fakewaldur.Permission{UserUUID: bob.UUID, Role: "PROJECT.ADMIN", ScopeType: "project", ScopeUUID: p1.UUID,
		Expiration: f.Now().Add(48 * time.Hour)})
	f.Grant(fakewaldur.Permission{UserUUID: bob.UUID, Role: "PROJECT.MEMBER", ScopeType: "project", ScopeUUID: p3.UUID})
	f.RemoveProject(p3.UUID)
	f.AddResource(fakewaldur.Resource{Name: "vm-1", State: "Erred", OfferingName: "VMs", ProjectUUID: p1.UUID})
	f.AddOrder(fakewaldur.Order{State: "pending-consumer", Type: "Create", ResourceName: "vm-1", OfferingName: "VMs",
		ProjectUUID: p1.UUID, CreatedByUsername: "alice", CreatedByFullName: "Alice A"})
	return c1, p1, alice
}

// TestEveryOperationAnswersAsDescribed calls each described operation with the
// filters and selections a client uses; the fake checks each request and answer
// against the description, and any mismatch is a complaint.
func TestEveryOperationAnswersAsDescribed(t *testing.T) {
	rec := &recorder{t: t}
	f := fakewaldur.New(rec)
	c, p, u := seed(f)
	since := url.QueryEscape(f.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano))
	for _, path := range []string{
		"/api/customers/?page_size=300&field=uuid&field=name&field=abbreviation",
		"/api/customers/",
		"/api/customers/" + c.UUID + "/",
		"/api/customers/" + c.UUID + "/list_users/?page_size=300",
		"/api/projects/?page_size=300&o=created&field=uuid&field=name&field=customer_uuid&field=is_removed",
		"/api/projects/?modified=" + since + "&include_terminated=true",
		"/api/projects/" + p.UUID + "/",
		"/api/projects/" + p.UUID + "/list_users/?field=uuid&field=user_uuid&field=role_name&field=expiration_time",
		"/api/users/?page_size=2&modified=" + since,
		"/api/users/?page=2&page_size=2",
		"/api/users/" + u.UUID + "/",
		"/api/user-permissions/?o=created&page_size=300",
		"/api/user-permissions/?user=" + u.UUID,
		"/api/marketplace-resources/?project_uuid=" + p.UUID + "&state=Erred&state=OK&field=uuid&field=name&field=state",
		"/api/marketplace-orders/?project_uuid=" + p.UUID + "&o=-created&page_size=5",
		"/api/events/",
		"/api/hooks-web/",
	} {
		if status, _, body := get(t, f, path); status != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, status, body)
		}
	}
	status, _, body := call(t, f, http.MethodPost, "/api/hooks-web/",
		`{"destination_url": "https://bridge.example.org/api/waldur/events/s3cret/", "event_types": ["role_granted", "role_revoked"], "content_type": "json"}`)
	if status != http.StatusCreated {
		t.Fatalf("POST /api/hooks-web/: %d %s", status, body)
	}
	var hook struct{ UUID string }
	if err := json.Unmarshal(body, &hook); err != nil {
		t.Fatal(err)
	}
	if status, _, body := get(t, f, "/api/hooks-web/"+hook.UUID+"/"); status != http.StatusOK {
		t.Errorf("GET hook: %d %s", status, body)
	}
	if status, _, _ := call(t, f, http.MethodDelete, "/api/hooks-web/"+hook.UUID+"/", ""); status != http.StatusNoContent {
		t.Errorf("DELETE hook: %d", status)
	}
	if got := rec.complaints(); len(got) > 0 {
		t.Errorf("the fake's answers or these requests break the description:\n%s", strings.Join(got, "\n"))
	}
}

// TestTheCheckerCatchesMismatches shows that the checks can fail: an answer outside
// the schema, an undescribed parameter, a bad value, an undescribed path.
func TestTheCheckerCatchesMismatches(t *testing.T) {
	cases := []struct {
		name, method, path, body string
		setup                    func(f *fakewaldur.Server)
		want                     string
	}{
		{name: "username outside the schema's pattern", method: http.MethodGet, path: "/api/users/",
			setup: func(f *fakewaldur.Server) { f.AddUser(fakewaldur.User{Username: "Not Valid!", Active: true}) },
			want:  "answer does not match"},
		{name: "email that is not an address", method: http.MethodGet, path: "/api/users/",
			setup: func(f *fakewaldur.Server) { f.AddUser(fakewaldur.User{Username: "x", Email: "nope", Active: true}) },
			want:  "answer does not match"},
		{name: "undescribed query parameter", method: http.MethodGet, path: "/api/projects/?search=x", want: `"search" is not described`},
		{name: "page_size not an integer", method: http.MethodGet, path: "/api/projects/?page_size=lots", want: "request does not match"},
		{name: "field outside the enum", method: http.MethodGet, path: "/api/users/?field=password", want: "request does not match"},
		{name: "modified not a date-time", method: http.MethodGet, path: "/api/users/?modified=yesterday", want: "request does not match"},
		{name: "event type the platform does not have", method: http.MethodPost, path: "/api/hooks-web/",
			body: `{"destination_url": "https://x.example/", "event_types": ["room_created"]}`, want: "request does not match"},
		{name: "undescribed path", method: http.MethodGet, path: "/api/rooms/", want: "no such path"},
		{name: "undescribed method", method: http.MethodDelete, path: "/api/users/", want: "no such operation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{t: t}
			f := fakewaldur.New(rec)
			if tc.setup != nil {
				tc.setup(f)
			}
			call(t, f, tc.method, tc.path, tc.body)
			got := rec.complaints()
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Errorf("complaints = %q, want one containing %q", got, tc.want)
			}
		})
	}
}

func TestPaging(t *testing.T) {
	f := fakewaldur.New(t)
	if err := f.Generate(fakewaldur.Scale{Customers: 2, Projects: 650, Users: 40, Roles: 100}); err != nil {
		t.Fatal(err)
	}
	status, h, body := get(t, f, "/api/projects/?page_size=1000&field=uuid")
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	var items []map[string]any
	if err := json.Unmarshal(body, &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 300 {
		t.Errorf("page_size=1000 gave %d items, want the cap of 300", len(items))
	}
	if len(items[0]) != 1 {
		t.Errorf("field=uuid gave fields %v", items[0])
	}
	if got := h.Get("X-Result-Count"); got != "650" {
		t.Errorf("X-Result-Count = %q", got)
	}
	link := h.Get("Link")
	for _, want := range []string{`page=1&page_size=1000>; rel="first"`, `page=2&page_size=1000>; rel="next"`, `page=3&page_size=1000>; rel="last"`, "field=uuid"} {
		if !strings.Contains(link, want) {
			t.Errorf("Link %q lacks %q", link, want)
		}
	}
	if strings.Contains(link, `rel="prev"`) {
		t.Errorf("the first page has a prev link: %q", link)
	}
	_, h, _ = get(t, f, "/api/projects/?page=3&page_size=300")
	if link := h.Get("Link"); strings.Contains(link, `rel="next"`) || !strings.Contains(link, `page=2&page_size=300>; rel="prev"`) {
		t.Errorf("last page Link = %q", link)
	}
	if status, _, body := get(t, f, "/api/projects/?page=4&page_size=300"); status != http.StatusNotFound || !strings.Contains(string(body), "Invalid page.") {
		t.Errorf("page past the end: %d %s", status, body)
	}
	if got := f.Requests("/api/projects/"); got != 3 {
		t.Errorf("Requests = %d, want 3", got)
	}
}

func TestTokenAndFaults(t *testing.T) {
	f := fakewaldur.New(t)
	req, _ := http.NewRequest(http.MethodGet, f.URL+"/api/users/", nil)
	req.Header.Set("Authorization", "Token wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	f.ExpireToken()
	if status, _, body := get(t, f, "/api/users/"); status != http.StatusUnauthorized || !strings.Contains(string(body), "Token has expired.") {
		t.Errorf("expired token: %d %s", status, body)
	}
	f.RestoreToken()
	f.Inject(fakewaldur.Fault{Path: "/api/users/", Status: http.StatusTooManyRequests, RetryAfter: "3", Times: 2})
	for range 2 {
		if status, h, _ := get(t, f, "/api/users/"); status != http.StatusTooManyRequests || h.Get("Retry-After") != "3" {
			t.Errorf("fault: %d, Retry-After %q", status, h.Get("Retry-After"))
		}
	}
	if status, _, _ := get(t, f, "/api/users/"); status != http.StatusOK {
		t.Errorf("after the fault's two hits: %d", status)
	}
	f.Inject(fakewaldur.Fault{Path: "/api/users/", Body: `[{"uuid": `})
	if _, _, body := get(t, f, "/api/users/"); string(body) != `[{"uuid": ` {
		t.Errorf("malformed page fault gave %q", body)
	}
}

// TestEventBodies checks the bodies against what the platform's hook sends: Python
// requests' json= and data= encodings of {"created", "message", "context", "event_type"}.
func TestEventBodies(t *testing.T) {
	ev := fakewaldur.Event{Type: "role_revoked", Message: "User bob has lost PROJECT.ADMIN.",
		Created: time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC),
		Context: map[string]any{"affected_user_uuid": "b0b", "role_name": "PROJECT.ADMIN"}}
	ct, body := ev.Body(fakewaldur.JSON)
	wantJSON := `{"created": "2026-03-01T10:00:00.123456+00:00", "message": "User bob has lost PROJECT.ADMIN.", "context": {"affected_user_uuid": "b0b", "role_name": "PROJECT.ADMIN"}, "event_type": "role_revoked"}`
	if ct != "application/json" || string(body) != wantJSON {
		t.Errorf("JSON: %s %s", ct, body)
	}
	ct, body = ev.Body(fakewaldur.Form)
	wantForm := "created=2026-03-01T10%3A00%3A00.123456%2B00%3A00&message=User+bob+has+lost+PROJECT.ADMIN.&context=affected_user_uuid&context=role_name&event_type=role_revoked"
	if ct != "application/x-www-form-urlencoded" || string(body) != wantForm {
		t.Errorf("form: %s %s", ct, body)
	}
	_, body = ev.Body(fakewaldur.FormJSONContext)
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("context") != `{"affected_user_uuid":"b0b","role_name":"PROJECT.ADMIN"}` {
		t.Errorf("form with JSON context: %s", body)
	}
}

// TestChangesPostEventsToHooks registers hooks through the API and checks that
// changes post the platform's events to them, JSON or form as registered.
func TestChangesPostEventsToHooks(t *testing.T) {
	f := fakewaldur.New(t)
	var mu sync.Mutex
	got := map[string][]string{} // path -> content type + body
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[r.URL.Path] = append(got[r.URL.Path], r.Header.Get("Content-Type")+" "+string(b))
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	for _, h := range []string{
		`{"destination_url": "` + recv.URL + `/json/", "event_types": ["role_revoked"]}`,
		`{"destination_url": "` + recv.URL + `/form/", "event_groups": ["users"], "content_type": "form"}`,
	} {
		if status, _, body := call(t, f, http.MethodPost, "/api/hooks-web/", h); status != http.StatusCreated {
			t.Fatalf("register: %d %s", status, body)
		}
	}
	c := f.AddCustomer(fakewaldur.Customer{Name: "Org", Abbreviation: "ORG"})
	p := f.AddProject(fakewaldur.Project{Name: "Apollo", CustomerUUID: c.UUID})
	u := f.AddUser(fakewaldur.User{Username: "bob", Active: true})
	f.Grant(fakewaldur.Permission{UserUUID: u.UUID, Role: "PROJECT.MEMBER", ScopeType: "project", ScopeUUID: p.UUID})
	f.RemoveProject(p.UUID) // revokes bob's role
	f.UpdateUser(u.UUID, func(u *fakewaldur.User) { u.Active = false })

	mu.Lock()
	defer mu.Unlock()
	if len(got["/json/"]) != 1 {
		t.Fatalf("JSON hook got %d posts, want the one role_revoked: %q", len(got["/json/"]), got["/json/"])
	}
	var ev struct {
		EventType string            `json:"event_type"`
		Context   map[string]string `json:"context"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(got["/json/"][0], "application/json ")), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.EventType != "role_revoked" || ev.Context["affected_user_uuid"] != u.UUID || ev.Context["scope_uuid"] != p.UUID ||
		ev.Context["scope_type"] != "project" || ev.Context["customer_uuid"] != c.UUID || ev.Context["role_name"] != "PROJECT.MEMBER" {
		t.Errorf("role_revoked = %+v", ev)
	}
	// The users group: bob's creation, role grant and revocation, deactivation.
	var types []string
	for _, post := range got["/form/"] {
		ct, body, _ := strings.Cut(post, " ")
		form, err := url.ParseQuery(body)
		if ct != "application/x-www-form-urlencoded" || err != nil {
			t.Fatalf("form post %q", post)
		}
		types = append(types, form.Get("event_type"))
		for _, k := range form["context"] {
			if strings.HasPrefix(k, "{") || len(k) == 32 {
				t.Errorf("a form post carries context values, the platform sends only keys: %q", form["context"])
			}
		}
	}
	if want := "user_creation_succeeded role_granted role_revoked user_deactivated"; strings.Join(types, " ") != want {
		t.Errorf("users group got %q, want %q", strings.Join(types, " "), want)
	}
	for _, d := range f.Deliveries() {
		if d.Err != nil || d.Status != http.StatusOK {
			t.Errorf("delivery %+v", d)
		}
	}
}

// TestGeneratedPlatformAnswersAsDescribed pages through every list of a generated
// platform with the checks on: the benchmark serves the same answers with them off.
func TestGeneratedPlatformAnswersAsDescribed(t *testing.T) {
	rec := &recorder{t: t}
	f := fakewaldur.New(rec)
	if err := f.Generate(fakewaldur.Scale{Customers: 5, Projects: 120, Users: 400, Roles: 900}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, list := range []string{"/api/customers/", "/api/projects/", "/api/users/", "/api/user-permissions/"} {
		n := 0
		for page := 1; ; page++ {
			_, h, body := get(t, f, fmt.Sprintf("%s?page=%d&page_size=300", list, page))
			var items []map[string]any
			if err := json.Unmarshal(body, &items); err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				if list == "/api/user-permissions/" {
					key := fmt.Sprint(it["user_uuid"], it["scope_uuid"])
					if seen[key] {
						t.Errorf("two grants for the same user and scope: %s", key)
					}
					seen[key] = true
				}
			}
			n += len(items)
			if !strings.Contains(h.Get("Link"), `rel="next"`) {
				break
			}
		}
		want := map[string]int{"/api/customers/": 5, "/api/projects/": 120, "/api/users/": 400, "/api/user-permissions/": 900}[list]
		if n != want {
			t.Errorf("%s listed %d, want %d", list, n, want)
		}
	}
	if got := rec.complaints(); len(got) > 0 {
		t.Errorf("complaints:\n%s", strings.Join(got, "\n"))
	}
}
