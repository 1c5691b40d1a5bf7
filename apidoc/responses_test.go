package apidoc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"matrixas/db"
	"matrixas/internal/fakesynapse"
	"matrixas/internal/fakewaldur"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

// call is one request of the conformance run.
type call struct {
	method  string
	pattern string // the documented path, e.g. /api/users/{uuid}/
	path    string // the concrete path and query sent
	token   string
	body    any // JSON-encoded; url.Values is sent as a form; a string is sent as is
	want    int // the status the request must get
	// badInput marks a request that breaks the documented request rules on purpose (to
	// get a 400): its response is validated, its request is not.
	badInput bool
}

// conformance sends requests to a real test server and checks each request and response
// against the OpenAPI document with kin-openapi.
type conformance struct {
	t    *testing.T
	ts   *testserver.Server
	doc  *openapi3.T
	seen map[string]map[int]bool // "METHOD pattern" -> validated statuses
}

func (c *conformance) do(cl call) []byte {
	c.t.Helper()
	var raw []byte
	ct := ""
	switch b := cl.body.(type) {
	case nil:
	case url.Values:
		raw, ct = []byte(b.Encode()), "application/x-www-form-urlencoded"
	case string:
		raw, ct = []byte(b), "application/json"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		raw, ct = j, "application/json"
	}
	newReq := func() *http.Request {
		var rd io.Reader
		if raw != nil {
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequest(cl.method, c.ts.URL+cl.path, rd)
		if err != nil {
			c.t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if cl.token != "" {
			req.Header.Set("Authorization", "Token "+cl.token)
		}
		return req
	}
	resp, err := http.DefaultClient.Do(newReq())
	if err != nil {
		c.t.Fatalf("%s %s: %v", cl.method, cl.path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	name := cl.method + " " + cl.path
	if resp.StatusCode != cl.want {
		c.t.Errorf("%s: status %d, want %d: %s", name, resp.StatusCode, cl.want, body)
		return body
	}

	item := c.doc.Paths.Value(cl.pattern)
	if item == nil || item.GetOperation(cl.method) == nil {
		c.t.Fatalf("%s: the document has no operation %s %s", name, cl.method, cl.pattern)
	}
	req := newReq()
	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: pathParams(cl.pattern, req.URL.Path),
		Route:      &routers.Route{Spec: c.doc, Path: cl.pattern, PathItem: item, Method: cl.method, Operation: item.GetOperation(cl.method)},
		Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	ctx := context.Background()
	if !cl.badInput {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			c.t.Errorf("%s: the request does not match the document (the handler accepted it): %v", name, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		c.t.Errorf("%s: the %d response does not match the document: %v\nbody: %s", name, resp.StatusCode, err, truncate(body))
	}
	key := cl.method + " " + cl.pattern
	if c.seen[key] == nil {
		c.seen[key] = map[int]bool{}
	}
	c.seen[key][resp.StatusCode] = true
	return body
}

// pathParams matches a concrete path against a pattern's {name} segments.
func pathParams(pattern, path string) map[string]string {
	out := map[string]string{}
	ps, qs := strings.Split(pattern, "/"), strings.Split(path, "/")
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && i < len(qs) {
			v, _ := url.PathUnescape(qs[i])
			out[strings.Trim(p, "{}")] = v
		}
	}
	return out
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func field(t *testing.T, body []byte, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not a JSON object: %s", body)
	}
	s, _ := m[name].(string)
	if s == "" {
		t.Fatalf("no %q in %s", name, body)
	}
	return s
}

// TestResponsesMatchDocument runs every /api/ operation against a real server (a
// homeserver that refuses connections stands in for Matrix) and validates each request
// and response with kin-openapi. It fails when an operation was never exercised with a
// success, so a new endpoint needs a call here too.
func TestResponsesMatchDocument(t *testing.T) {
	rio := &gatedRoom{}
	// A platform with one customer, project and user, which the sync owns once mirrored.
	fake := fakewaldur.New(t)
	wc := fake.AddCustomer(fakewaldur.Customer{Name: "Mirrored", Abbreviation: "MIR"})
	wp := fake.AddProject(fakewaldur.Project{Name: "Mirrored project", CustomerUUID: wc.UUID})
	wu := fake.AddUser(fakewaldur.User{Username: "mirrored", Active: true})
	fake.Grant(fakewaldur.Permission{UserUUID: wu.UUID, Role: "PROJECT.ADMIN", ScopeType: "project", ScopeUUID: wp.UUID})
	const secret = "conformance-events-secret"
	env := testserver.PlatformEnv(fake, secret)
	env["MAX_BODY_BYTES"] = "4096"
	env["MATRIX_EXPORT_MEDIA"] = "true"
	ts := testserver.New(t, testserver.Options{Env: env, Configure: withRoomIO(rio)})
	firstRun := ts.WaitSynced(t, 0)
	c := &conformance{t: t, ts: ts, doc: loadDoc(t), seen: map[string]map[int]bool{}}
	staff, user := ts.StaffToken, ts.UserToken
	missing := db.NewUUID()
	ctx := context.Background()

	// The document itself.
	c.do(call{method: http.MethodGet, pattern: "/api/schema/", path: "/api/schema/", want: 200})
	c.do(call{method: http.MethodGet, pattern: "/api/schema/", path: "/api/schema/?format=yaml", want: 200})
	c.do(call{method: http.MethodGet, pattern: "/api/schema/", path: "/api/schema/?format=xml", want: 400, badInput: true})
	c.do(call{method: http.MethodGet, pattern: "/api/schema/", path: "/api/schema/", token: "wrong", want: 401})

	// Before setup: status, auth failures, and what needs setup first.
	const status = "/api/admin/matrix-appservice/status/"
	c.do(call{method: http.MethodGet, pattern: status, path: status, token: staff, want: 200})
	c.do(call{method: http.MethodGet, pattern: status, path: status, want: 401})
	c.do(call{method: http.MethodGet, pattern: status, path: status, token: user, want: 403})
	const regFile = "/api/admin/matrix-appservice/registration.yaml"
	c.do(call{method: http.MethodGet, pattern: regFile, path: regFile, token: staff, want: 404})
	const bot = "/api/admin/matrix-appservice/provision-bot/"
	c.do(call{method: http.MethodPost, pattern: bot, path: bot, token: staff, want: 400})
	const repro = "/api/admin/matrix/reprovision/"
	c.do(call{method: http.MethodPost, pattern: repro, path: repro, token: staff, want: 400})
	c.do(call{method: http.MethodGet, pattern: repro, path: repro, token: staff, want: 200})

	// Users.
	const users, userPath = "/api/users/", "/api/users/{uuid}/"
	bob := c.do(call{method: http.MethodPost, pattern: users, path: users, token: staff, want: 201,
		body: map[string]any{"username": "bob", "email": "bob@example.org", "full_name": "Bob Builder", "is_active": true}})
	bobUUID := field(t, bob, "uuid")
	c.do(call{method: http.MethodPost, pattern: users, path: users, token: staff, want: 200,
		body: map[string]any{"uuid": bobUUID, "username": "bob", "full_name": "Robert Builder"}})
	c.do(call{method: http.MethodPost, pattern: users, path: users, token: staff, want: 201,
		body: url.Values{"username": {"carol"}, "email": {"carol@example.org"}}})
	c.do(call{method: http.MethodPost, pattern: users, path: users, token: staff, want: 400, badInput: true, body: map[string]any{}})
	c.do(call{method: http.MethodPost, pattern: users, path: users, token: user, want: 403, body: map[string]any{"username": "eve"}})
	c.do(call{method: http.MethodPost, pattern: users, path: users, token: staff, want: 413, badInput: true,
		body: map[string]any{"username": "big", "full_name": strings.Repeat("x", 5000)}})
	c.do(call{method: http.MethodGet, pattern: users, path: users, token: user, want: 200})
	c.do(call{method: http.MethodGet, pattern: users, path: users + "?search=bob&is_active=true&page_size=1", token: staff, want: 200})
	c.do(call{method: http.MethodGet, pattern: users, path: users + "?is_active=maybe", token: staff, want: 400, badInput: true})
	c.do(call{method: http.MethodGet, pattern: users, path: users + "?page=99", token: staff, want: 404})
	c.do(call{method: http.MethodGet, pattern: userPath, path: users + bobUUID + "/", token: user, want: 200})
	c.do(call{method: http.MethodGet, pattern: userPath, path: users + missing + "/", token: staff, want: 404})
	c.do(call{method: http.MethodPut, pattern: userPath, path: users + bobUUID + "/", token: staff, want: 200,
		body: map[string]any{"username": "bob", "email": "bob@example.org", "full_name": "Bob", "is_active": true}})
	c.do(call{method: http.MethodPatch, pattern: userPath, path: users + bobUUID + "/", token: staff, want: 200,
		body: map[string]any{"full_name": "Bob B."}})
	c.do(call{method: http.MethodPatch, pattern: userPath, path: users + bobUUID + "/", token: staff, want: 400,
		body: map[string]any{"email": "not an address"}})
	const deactivate = "/api/users/{uuid}/deactivate/"
	c.do(call{method: http.MethodPost, pattern: deactivate, path: users + bobUUID + "/deactivate/", token: staff, want: 200})
	c.do(call{method: http.MethodPost, pattern: deactivate, path: users + bobUUID + "/deactivate/", token: user, want: 403})

	// Projects and members.
	const projects, projectPath = "/api/projects/", "/api/projects/{uuid}/"
	apollo := c.do(call{method: http.MethodPost, pattern: projects, path: projects, token: staff, want: 201,
		body: map[string]any{"name": "Apollo", "description": "To the moon"}})
	apolloUUID := field(t, apollo, "uuid")
	c.do(call{method: http.MethodPost, pattern: projects, path: projects, token: staff, want: 200,
		body: map[string]any{"uuid": apolloUUID, "name": "Apollo 11"}})
	c.do(call{method: http.MethodPost, pattern: projects, path: projects, token: staff, want: 400, badInput: true, body: map[string]any{"description": "no name"}})
	c.do(call{method: http.MethodGet, pattern: projects, path: projects + "?search=apollo", token: user, want: 200})
	c.do(call{method: http.MethodGet, pattern: projectPath, path: projects + apolloUUID + "/", token: user, want: 200})
	c.do(call{method: http.MethodPut, pattern: projectPath, path: projects + apolloUUID + "/", token: staff, want: 200,
		body: map[string]any{"name": "Apollo", "description": "Moon"}})
	c.do(call{method: http.MethodPatch, pattern: projectPath, path: projects + apolloUUID + "/", token: staff, want: 200,
		body: map[string]any{"description": "The Moon"}})
	const members, member = "/api/projects/{uuid}/members/", "/api/projects/{uuid}/members/{user}/"
	mpath := projects + apolloUUID + "/members/"
	c.do(call{method: http.MethodPost, pattern: members, path: mpath, token: staff, want: 201,
		body: map[string]any{"user": ts.User.UUID, "role": "member"}})
	c.do(call{method: http.MethodPost, pattern: members, path: mpath, token: staff, want: 200,
		body: map[string]any{"user": ts.User.UUID, "role": "manager"}})
	c.do(call{method: http.MethodPost, pattern: members, path: mpath, token: staff, want: 400, badInput: true,
		body: map[string]any{"user": ts.User.UUID, "role": "owner"}})
	c.do(call{method: http.MethodPut, pattern: members, path: mpath, token: staff, want: 200,
		body: []map[string]any{{"user": ts.User.UUID, "role": "admin"}, {"user": bobUUID, "role": "member"}}})
	c.do(call{method: http.MethodGet, pattern: members, path: mpath, token: user, want: 200})
	c.do(call{method: http.MethodDelete, pattern: member, path: mpath + bobUUID + "/", token: staff, want: 204})
	c.do(call{method: http.MethodDelete, pattern: member, path: mpath + bobUUID + "/", token: staff, want: 404})

	// Customers and their owners.
	const customers, customerPath = "/api/customers/", "/api/customers/{uuid}/"
	const owners, owner = "/api/customers/{uuid}/owners/", "/api/customers/{uuid}/owners/{user}/"
	acme := c.do(call{method: http.MethodPost, pattern: customers, path: customers, token: staff, want: 201,
		body: map[string]any{"name": "Acme", "abbreviation": "ACME"}})
	acmeUUID := field(t, acme, "uuid")
	c.do(call{method: http.MethodPost, pattern: customers, path: customers, token: staff, want: 200,
		body: url.Values{"uuid": {acmeUUID}, "name": {"Acme Inc."}}})
	c.do(call{method: http.MethodPost, pattern: customers, path: customers, token: staff, want: 400, badInput: true,
		body: map[string]any{"abbreviation": "MUCHTOOLONGABBR"}})
	c.do(call{method: http.MethodGet, pattern: customers, path: customers + "?search=acme", token: user, want: 200})
	c.do(call{method: http.MethodGet, pattern: customerPath, path: customers + acmeUUID + "/", token: user, want: 200})
	c.do(call{method: http.MethodPut, pattern: customerPath, path: customers + acmeUUID + "/", token: staff, want: 200,
		body: map[string]any{"name": "Acme", "abbreviation": "AC"}})
	c.do(call{method: http.MethodPatch, pattern: customerPath, path: customers + acmeUUID + "/", token: staff, want: 200,
		body: map[string]any{"abbreviation": "ACM"}})
	opath := customers + acmeUUID + "/owners/"
	c.do(call{method: http.MethodPost, pattern: owners, path: opath, token: staff, want: 201, body: map[string]any{"user": bobUUID}})
	c.do(call{method: http.MethodPut, pattern: owners, path: opath, token: staff, want: 200,
		body: []map[string]any{{"user": ts.User.UUID, "role": "CUSTOMER.OWNER"}, {"user": bobUUID}}})
	c.do(call{method: http.MethodPost, pattern: owners, path: opath, token: staff, want: 400, badInput: true,
		body: map[string]any{"user": bobUUID, "role": "PROJECT.ADMIN"}})
	c.do(call{method: http.MethodGet, pattern: owners, path: opath, token: user, want: 200})
	c.do(call{method: http.MethodDelete, pattern: owner, path: opath + bobUUID + "/", token: staff, want: 204})
	c.do(call{method: http.MethodPatch, pattern: projectPath, path: projects + apolloUUID + "/", token: staff, want: 200,
		body: map[string]any{"customer": acmeUUID}})
	c.do(call{method: http.MethodPatch, pattern: projectPath, path: projects + apolloUUID + "/", token: staff, want: 400, badInput: true,
		body: map[string]any{"customer": missing}})
	zeta := c.do(call{method: http.MethodPost, pattern: customers, path: customers, token: staff, want: 201, body: map[string]any{"name": "Zeta"}})
	c.do(call{method: http.MethodDelete, pattern: customerPath, path: customers + field(t, zeta, "uuid") + "/", token: staff, want: 204})

	// What the platform sync mirrored is its own: writes here are 409.
	c.do(call{method: http.MethodPatch, pattern: projectPath, path: projects + wp.UUID + "/", token: staff, want: 409,
		body: map[string]any{"name": "Renamed here"}})
	c.do(call{method: http.MethodPost, pattern: members, path: projects + wp.UUID + "/members/", token: staff, want: 409,
		body: map[string]any{"user": bobUUID, "role": "member"}})
	c.do(call{method: http.MethodPatch, pattern: userPath, path: users + wu.UUID + "/", token: staff, want: 409,
		body: map[string]any{"full_name": "Renamed"}})
	c.do(call{method: http.MethodDelete, pattern: customerPath, path: customers + wc.UUID + "/", token: staff, want: 409})

	// The platform sync: its status, a run on demand, a run already running.
	const psync = "/api/admin/platform-sync/"
	c.do(call{method: http.MethodGet, pattern: psync, path: psync, token: staff, want: 200})
	c.do(call{method: http.MethodGet, pattern: psync, path: psync, token: user, want: 403})
	c.do(call{method: http.MethodPost, pattern: psync, path: psync, token: staff, want: 400, badInput: true, body: map[string]any{"mode": "sideways"}})
	release := make(chan struct{})
	fake.Inject(fakewaldur.Fault{Path: "/api/customers/", Before: func() { <-release }})
	c.do(call{method: http.MethodPost, pattern: psync, path: psync, token: staff, want: 202})
	c.do(call{method: http.MethodPost, pattern: psync, path: psync, token: staff, want: 409, body: map[string]any{"mode": "incremental"}})
	close(release)
	ts.WaitSynced(t, firstRun.ID)

	// The event receiver: JSON and form bodies; a wrong secret; a body that is no event.
	const events = "/api/waldur/events/{secret}/"
	evBody := map[string]any{"event_type": "role_granted", "message": "m", "created": "2026-01-02T03:04:05+00:00",
		"context": map[string]any{"scope_type": "project", "scope_uuid": wp.UUID, "affected_user_uuid": wu.UUID, "role_name": "PROJECT.ADMIN"}}
	c.do(call{method: http.MethodPost, pattern: events, path: "/api/waldur/events/" + secret + "/", want: 202, body: evBody})
	c.do(call{method: http.MethodPost, pattern: events, path: "/api/waldur/events/" + secret + "/", want: 202,
		body: url.Values{"event_type": {"user_update_succeeded"}, "context": {`{"affected_user_uuid": "` + wu.UUID + `"}`}}})
	c.do(call{method: http.MethodPost, pattern: events, path: "/api/waldur/events/not-the-secret/", want: 404, body: evBody})
	c.do(call{method: http.MethodPost, pattern: events, path: "/api/waldur/events/" + secret + "/", want: 400, badInput: true,
		body: map[string]any{"message": "no event type"}})

	// Rooms, walked through their states by hand (the worker is idle until setup).
	const roomsPath, room = "/api/matrix-rooms/", "/api/matrix-rooms/{uuid}/"
	r := c.do(call{method: http.MethodPost, pattern: roomsPath, path: roomsPath, token: staff, want: 201, body: map[string]any{"project": apolloUUID}})
	roomUUID := field(t, r, "uuid")
	c.do(call{method: http.MethodPost, pattern: roomsPath, path: roomsPath, token: staff, want: 400, body: map[string]any{"project": apolloUUID}})
	c.do(call{method: http.MethodGet, pattern: roomsPath, path: roomsPath + "?state=creating&project=" + apolloUUID, token: user, want: 200})
	c.do(call{method: http.MethodGet, pattern: roomsPath, path: roomsPath + "?state=bogus", token: user, want: 400, badInput: true})
	c.do(call{method: http.MethodGet, pattern: room, path: roomsPath + roomUUID + "/", token: user, want: 200})
	c.do(call{method: http.MethodGet, pattern: room, path: roomsPath + missing + "/", token: user, want: 404})
	action := func(name string, want int) {
		t.Helper()
		c.do(call{method: http.MethodPost, pattern: "/api/matrix-rooms/{uuid}/" + name + "/", path: roomsPath + roomUUID + "/" + name + "/", token: staff, want: want})
	}
	dbRoom, err := ts.Store.RoomByUUID(ctx, roomUUID)
	if err != nil {
		t.Fatal(err)
	}
	action("retry", 202)        // creating: worked on again at once
	action("sync_members", 202) // creating
	action("reactivate", 409)   // creating
	if _, err := ts.Store.FailRoom(ctx, dbRoom.ID, "test failure", 1, nil); err != nil {
		t.Fatal(err)
	}
	action("sync_members", 409) // error
	action("retry", 202)        // error -> creating
	if err := ts.Store.SetRoomHomeserverID(ctx, dbRoom.ID, "!room:localhost", "#waldur-x:localhost", ""); err != nil {
		t.Fatal(err)
	}
	if err := ts.Store.FinishRoomSync(ctx, dbRoom.ID, "Apollo"); err != nil {
		t.Fatal(err)
	}
	action("reactivate", 409) // active
	action("join", 400)       // no homeserver domain yet: no Matrix account for staff
	const messages = "/api/matrix-rooms/{uuid}/messages/"
	c.do(call{method: http.MethodPost, pattern: messages, path: roomsPath + roomUUID + "/messages/", token: staff, want: 202, body: map[string]any{"body": "Hello **all**"}})
	c.do(call{method: http.MethodPost, pattern: messages, path: roomsPath + roomUUID + "/messages/", token: staff, want: 400, badInput: true, body: map[string]any{"body": " "}})
	c.do(call{method: http.MethodPost, pattern: messages, path: roomsPath + missing + "/messages/", token: staff, want: 404, body: map[string]any{"body": "x"}})
	const roomMembers, open, eligible = "/api/matrix-rooms/{uuid}/members/", "/api/matrix-rooms/{uuid}/open/", "/api/matrix-rooms/eligible_projects/"
	c.do(call{method: http.MethodGet, pattern: roomsPath, path: roomsPath + "?member=true", token: user, want: 200})
	c.do(call{method: http.MethodGet, pattern: roomsPath, path: roomsPath + "?member=perhaps", token: user, want: 400, badInput: true})
	c.do(call{method: http.MethodGet, pattern: roomMembers, path: roomsPath + roomUUID + "/members/?page_size=1", token: user, want: 200})
	c.do(call{method: http.MethodGet, pattern: roomMembers, path: roomsPath + missing + "/members/", token: user, want: 404})
	c.do(call{method: http.MethodGet, pattern: eligible, path: eligible, token: staff, want: 200})
	c.do(call{method: http.MethodPost, pattern: open, path: roomsPath + roomUUID + "/open/", token: user, want: 200}) // an admin of Apollo
	c.do(call{method: http.MethodPost, pattern: open, path: roomsPath + roomUUID + "/open/", token: staff, want: 403})
	c.do(call{method: http.MethodPost, pattern: open, path: roomsPath + roomUUID + "/open/", want: 401})
	c.do(call{method: http.MethodPost, pattern: "/api/matrix-rooms/{uuid}/disable/", path: roomsPath + roomUUID + "/disable/", token: staff, want: 400,
		badInput: true, body: map[string]any{"delete_history": "perhaps"}})
	c.do(call{method: http.MethodPost, pattern: "/api/matrix-rooms/{uuid}/disable/", path: roomsPath + roomUUID + "/disable/", token: staff, want: 202,
		body: map[string]any{"delete_history": false}}) // active -> disabling
	c.do(call{method: http.MethodPost, pattern: open, path: roomsPath + roomUUID + "/open/", token: user, want: 409})
	c.do(call{method: http.MethodPost, pattern: messages, path: roomsPath + roomUUID + "/messages/", token: staff, want: 409, body: map[string]any{"body": "too late"}})
	c.do(call{method: http.MethodDelete, pattern: room, path: roomsPath + roomUUID + "/", token: staff, want: 409})
	if _, err := ts.Store.FinishRoomDisable(ctx, dbRoom.ID); err != nil {
		t.Fatal(err)
	}
	action("reactivate", 202) // archived -> active
	c.do(call{method: http.MethodPost, pattern: "/api/matrix-rooms/{uuid}/disable/", path: roomsPath + roomUUID + "/disable/", token: user, want: 403})

	// A project whose room is live is deleted through the disable path.
	luna := c.do(call{method: http.MethodPost, pattern: projects, path: projects, token: staff, want: 201, body: map[string]any{"name": "Luna"}})
	lunaRoom := c.do(call{method: http.MethodPost, pattern: roomsPath, path: roomsPath, token: staff, want: 201, body: map[string]any{"project": field(t, luna, "uuid")}})
	lr, err := ts.Store.RoomByUUID(ctx, field(t, lunaRoom, "uuid"))
	if err != nil {
		t.Fatal(err)
	}
	ts.Store.SetRoomHomeserverID(ctx, lr.ID, "!luna:localhost", "", "")
	if err := ts.Store.FinishRoomSync(ctx, lr.ID, "Luna"); err != nil {
		t.Fatal(err)
	}
	c.do(call{method: http.MethodDelete, pattern: projectPath, path: projects + field(t, luna, "uuid") + "/", token: staff, want: 202})

	// A project without a room can go.
	gemini := c.do(call{method: http.MethodPost, pattern: projects, path: projects, token: staff, want: 201, body: map[string]any{"name": "Gemini"}})
	c.do(call{method: http.MethodDelete, pattern: projectPath, path: projects + field(t, gemini, "uuid") + "/", token: staff, want: 204})

	// Setup, against a homeserver address that refuses connections: the bot step fails,
	// the setup itself succeeds.
	const setup = "/api/admin/matrix-appservice/setup/"
	c.do(call{method: http.MethodPost, pattern: setup, path: setup, token: staff, want: 400, body: map[string]any{}})
	c.do(call{method: http.MethodPost, pattern: setup, path: setup, token: staff, want: 400, badInput: true,
		body: map[string]any{"sender_localpart": ".*", "homeserver_url": "ftp://x"}})
	c.do(call{method: http.MethodPost, pattern: setup, path: setup, token: staff, want: 200, body: map[string]any{
		"url": "http://127.0.0.1:9", "homeserver_url": "http://127.0.0.1:1", "homeserver_domain": "localhost",
		"user_registration_secret": "registration-secret", "sender_localpart": "waldur-bot",
	}})
	c.do(call{method: http.MethodPost, pattern: setup, path: setup, token: staff, want: 200,
		body: url.Values{"sender_localpart": {"waldur-bot"}}})
	c.do(call{method: http.MethodGet, pattern: regFile, path: regFile, token: staff, want: 200})
	c.do(call{method: http.MethodPost, pattern: bot, path: bot, token: staff, want: 200})
	const diag = "/api/admin/matrix/diagnostics/"
	c.do(call{method: http.MethodGet, pattern: diag, path: diag, token: staff, want: 200})
	c.do(call{method: http.MethodGet, pattern: diag, path: diag, token: user, want: 403})
	c.do(call{method: http.MethodGet, pattern: status, path: status, token: staff, want: 200})

	// History exports, now that the appservice is set up (exports wait until it is).
	bare := c.do(call{method: http.MethodPost, pattern: projects, path: projects, token: staff, want: 201, body: map[string]any{"name": "Mercury"}})
	bareRoom := c.do(call{method: http.MethodPost, pattern: roomsPath, path: roomsPath, token: staff, want: 201, body: map[string]any{"project": field(t, bare, "uuid")}})
	c.exercise(t, rio, roomUUID, field(t, bareRoom, "uuid"))

	// Staff join and leave once the homeserver's domain is known; then the room goes.
	action("join", 202)
	action("leave", 202)
	action("leave", 409) // not joined any more
	action("disable", 202)
	if _, err := ts.Store.FinishRoomDisable(ctx, dbRoom.ID); err != nil {
		t.Fatal(err)
	}
	action("join", 409) // archived
	c.do(call{method: http.MethodDelete, pattern: room, path: roomsPath + roomUUID + "/", token: staff, want: 204})
	c.do(call{method: http.MethodDelete, pattern: room, path: roomsPath + roomUUID + "/", token: staff, want: 404})

	// Profiles exist once the appservice knows its domain: a user created now gets one.
	const profiles = "/api/matrix-user-profiles/"
	c.do(call{method: http.MethodPost, pattern: users, path: users, token: staff, want: 201, body: map[string]any{"username": "dave"}})
	list := c.do(call{method: http.MethodGet, pattern: profiles, path: profiles + "?provisioned=false&search=dave", token: user, want: 200})
	var items []any
	if json.Unmarshal(list, &items) != nil || len(items) == 0 {
		t.Errorf("no profile for dave, so the item schema went unchecked: %s", list)
	}
	c.do(call{method: http.MethodGet, pattern: profiles, path: profiles + "?provisioned=perhaps", token: user, want: 400, badInput: true})

	// The caller's Matrix account, and linking one, against a stand-in homeserver that
	// answers like Synapse with the bot a server admin (the shapes; the behaviour is
	// tested on Dendrite in handlers/api).
	hs := fakesynapse.New(t, fakesynapse.Options{BotIsAdmin: true, Admins: []string{"@root:localhost"}})
	if err := ts.Web.Settings().Set(ctx, map[string]string{settings.HomeserverURL.Key: hs.URL}); err != nil {
		t.Fatal(err)
	}
	const creds, session = "/api/matrix/credentials/", "/api/matrix/session/"
	c.do(call{method: http.MethodGet, pattern: creds, path: creds, token: user, want: 200})
	c.do(call{method: http.MethodGet, pattern: creds, path: creds, want: 401})
	c.do(call{method: http.MethodPost, pattern: session, path: session, token: user, want: 200})
	c.do(call{method: http.MethodPost, pattern: session, path: session, want: 401})
	const link = "/api/users/{uuid}/link_matrix_account/"
	linkPath := users + bobUUID + "/link_matrix_account/"
	c.do(call{method: http.MethodPost, pattern: link, path: linkPath, token: staff, want: 200, body: map[string]any{"matrix_user_id": "@bob-old:localhost"}})
	c.do(call{method: http.MethodPost, pattern: link, path: linkPath, token: staff, want: 400, body: map[string]any{"matrix_user_id": "@root:localhost"}})
	c.do(call{method: http.MethodPost, pattern: link, path: linkPath, token: staff, want: 400, body: url.Values{"matrix_user_id": {"@bob:elsewhere.org"}}})
	c.do(call{method: http.MethodPost, pattern: link, path: users + ts.User.UUID + "/link_matrix_account/", token: staff, want: 409,
		body: map[string]any{"matrix_user_id": "@bob-old:localhost"}})
	c.do(call{method: http.MethodPost, pattern: link, path: users + missing + "/link_matrix_account/", token: staff, want: 404})
	c.do(call{method: http.MethodPost, pattern: link, path: linkPath, token: user, want: 403})

	// Reprovision: a dry run, the real one, its progress.
	c.do(call{method: http.MethodPost, pattern: repro, path: repro + "?dry_run=true", token: staff, want: 200})
	c.do(call{method: http.MethodPost, pattern: repro, path: repro + "?dry_run=maybe", token: staff, want: 400, badInput: true})
	c.do(call{method: http.MethodPost, pattern: repro, path: repro, token: staff, want: 202})
	c.do(call{method: http.MethodGet, pattern: repro, path: repro, token: staff, want: 200})
	c.do(call{method: http.MethodPost, pattern: repro, path: repro, token: user, want: 403})

	// Every operation was exercised with a success, and every documented error shape
	// was seen at least once.
	var never []string
	errorsSeen := map[int]bool{}
	for _, op := range documented(c.doc) {
		ok := false
		for status := range c.seen[op] {
			if status < 300 {
				ok = true
			} else {
				errorsSeen[status] = true
			}
		}
		if !ok {
			never = append(never, op)
		}
	}
	sort.Strings(never)
	for _, op := range never {
		t.Errorf("%s was never called with a successful answer in this test: add a call, so its responses are checked against the document", op)
	}
	for _, status := range []int{400, 401, 403, 404, 409, 413, 429} {
		if !errorsSeen[status] {
			t.Errorf("no %d response was validated", status)
		}
	}
	if t.Failed() {
		fmt.Println("calls validated:", len(c.seen))
	}
}
