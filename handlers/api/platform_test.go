package api_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"matrixas/db"
	"matrixas/internal/fakewaldur"
	"matrixas/internal/testserver"
)

const eventsSecret = "a-long-random-events-secret-1234"

// platformServer is a test server mirroring a fake platform with one customer, project
// and user, after its first full run.
func platformServer(t *testing.T) (*testserver.Server, *fakewaldur.Server, fakewaldur.Customer, fakewaldur.Project, fakewaldur.User) {
	t.Helper()
	f := fakewaldur.New(t)
	c := f.AddCustomer(fakewaldur.Customer{Name: "Acme", Abbreviation: "ACME"})
	p := f.AddProject(fakewaldur.Project{Name: "Apollo", CustomerUUID: c.UUID})
	u := f.AddUser(fakewaldur.User{Username: "olga", FirstName: "Olga", Active: true})
	f.Grant(fakewaldur.Permission{UserUUID: u.UUID, Role: "CUSTOMER.OWNER", ScopeType: "customer", ScopeUUID: c.UUID})
	s := testserver.New(t, testserver.Options{Env: testserver.PlatformEnv(f, eventsSecret)})
	s.WaitSynced(t, 0)
	return s, f, c, p, u
}

type syncStatus struct {
	Configured       bool    `json:"configured"`
	Running          bool    `json:"running"`
	RunningKind      *string `json:"running_kind"`
	LastStartedAt    *string `json:"last_started_at"`
	LastFinishedAt   *string `json:"last_finished_at"`
	LastOK           *bool   `json:"last_ok"`
	LastError        *string `json:"last_error"`
	EventsReceived   int64   `json:"events_received"`
	LastEventAt      *string `json:"last_event_at"`
	TokenFingerprint *string `json:"token_fingerprint"`
	Counts           map[string]struct {
		Created, Updated, Removed int
	} `json:"counts"`
}

// TestPlatformSyncStatusWithoutAPlatform: configured false and nothing else; starting a
// run is 400; the event receiver does not exist (404).
func TestPlatformSyncStatusWithoutAPlatform(t *testing.T) {
	s := testserver.New(t)
	var st syncStatus
	if code := s.JSON(t, http.MethodGet, "/api/admin/platform-sync/", s.StaffToken, nil, &st); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if st.Configured || st.Running || st.LastStartedAt != nil || st.LastOK != nil {
		t.Errorf("status %+v", st)
	}
	resp, body := s.Request(t, http.MethodPost, "/api/admin/platform-sync/", s.StaffToken, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "WALDUR_URL") {
		t.Errorf("start: %d %s", resp.StatusCode, body)
	}
	resp, _ = s.Request(t, http.MethodPost, "/api/waldur/events/anything-at-all-here/", "", `{"event_type": "role_granted"}`)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("receiver without a platform: %d", resp.StatusCode)
	}
}

// TestPlatformSyncStatusAndStart: the status after the first run, a run started on
// demand (202), a second one refused while it runs (409), and its result.
func TestPlatformSyncStatusAndStart(t *testing.T) {
	s, f, _, _, _ := platformServer(t)
	var st syncStatus
	s.JSON(t, http.MethodGet, "/api/admin/platform-sync/", s.StaffToken, nil, &st)
	if !st.Configured || st.LastOK == nil || !*st.LastOK || st.LastError != nil || st.LastFinishedAt == nil {
		t.Errorf("status after the first run: %+v", st)
	}
	if c := st.Counts["customers"]; c.Created != 1 {
		t.Errorf("counts %+v", st.Counts)
	}
	if st.TokenFingerprint == nil || !strings.HasPrefix(*st.TokenFingerprint, "sha256:") || strings.Contains(*st.TokenFingerprint, f.Token) {
		t.Errorf("fingerprint %v", st.TokenFingerprint)
	}
	if resp, _ := s.Request(t, http.MethodGet, "/api/admin/platform-sync/", s.UserToken, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("non-staff: %d", resp.StatusCode)
	}
	first := s.WaitSynced(t, 0)
	release := make(chan struct{})
	f.Inject(fakewaldur.Fault{Path: "/api/customers/", Before: func() { <-release }})
	if code := s.JSON(t, http.MethodPost, "/api/admin/platform-sync/", s.StaffToken, nil, &st); code != http.StatusAccepted {
		t.Fatalf("start: %d", code)
	}
	if !st.Running || st.RunningKind == nil || *st.RunningKind != "full" {
		t.Errorf("answer %+v", st)
	}
	resp, body := s.Request(t, http.MethodPost, "/api/admin/platform-sync/", s.StaffToken, nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "already running") {
		t.Errorf("second start: %d %s", resp.StatusCode, body)
	}
	close(release)
	run := s.WaitSynced(t, first.ID)
	if !run.OK || run.Kind != db.SyncFull {
		t.Errorf("run %+v", run)
	}
}

// TestPlatformSyncReportsTokenRejected: an expired token fails the run as "token
// rejected", and nothing mirrored is lost.
func TestPlatformSyncReportsTokenRejected(t *testing.T) {
	s, f, _, p, _ := platformServer(t)
	first := s.WaitSynced(t, 0)
	f.ExpireToken()
	if code := s.JSON(t, http.MethodPost, "/api/admin/platform-sync/", s.StaffToken, nil, nil); code != http.StatusAccepted {
		t.Fatalf("start: %d", code)
	}
	s.WaitSynced(t, first.ID)
	var st syncStatus
	s.JSON(t, http.MethodGet, "/api/admin/platform-sync/", s.StaffToken, nil, &st)
	if st.LastOK == nil || *st.LastOK || st.LastError == nil || !strings.HasPrefix(*st.LastError, "token rejected") {
		t.Errorf("status %+v (error %v)", st, st.LastError)
	}
	if _, err := s.Store.ProjectByUUID(t.Context(), p.UUID); err != nil {
		t.Errorf("the project went: %v", err)
	}
}

// TestEventReceiver: the secret is the credential (a wrong one is 404, the same as no
// receiver), no token or session needed, no cross-site check; JSON and form bodies are
// stored (202) and counted; a body that is no event is 400; the secret never reaches
// the log.
func TestEventReceiver(t *testing.T) {
	s, f, _, p, u := platformServer(t)
	path := "/api/waldur/events/" + eventsSecret + "/"
	f.SetDelivery(false)
	mark := len(f.Events())
	f.Grant(fakewaldur.Permission{UserUUID: u.UUID, Role: "PROJECT.ADMIN", ScopeType: "project", ScopeUUID: p.UUID})
	ev := f.Events()[mark]
	post := func(path, ct string, body []byte, origin string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if origin != "" {
			req.Header.Set("Origin", origin)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	ct, body := ev.Body(fakewaldur.JSON)
	if code, b := post(path, ct, body, "https://elsewhere.example.org"); code != http.StatusAccepted {
		t.Errorf("JSON event: %d %s", code, b)
	}
	ct, body = ev.Body(fakewaldur.Form)
	if code, b := post(path, ct, body, ""); code != http.StatusAccepted {
		t.Errorf("form event: %d %s", code, b)
	}
	for _, wrong := range []string{"/api/waldur/events/" + eventsSecret[:len(eventsSecret)-1] + "/", "/api/waldur/events/" + eventsSecret + "x/"} {
		if code, _ := post(wrong, ct, body, ""); code != http.StatusNotFound {
			t.Errorf("wrong secret %s: %d", wrong, code)
		}
	}
	if code, b := post(path, "application/json", []byte(`{"message": "no type"}`), ""); code != http.StatusBadRequest || !strings.Contains(b, "detail") {
		t.Errorf("not an event: %d %s", code, b)
	}
	if code, _ := post(path, "text/plain", []byte("hello"), ""); code != http.StatusBadRequest {
		t.Errorf("plain text: %d", code)
	}
	var st syncStatus
	s.JSON(t, http.MethodGet, "/api/admin/platform-sync/", s.StaffToken, nil, &st)
	if st.EventsReceived != 2 || st.LastEventAt == nil {
		t.Errorf("events received %d, last %v", st.EventsReceived, st.LastEventAt)
	}
	// The worker applies the JSON event: the grant is mirrored.
	deadline := time.Now().Add(10 * time.Second)
	for {
		roles, err := s.Store.ListRoles(t.Context(), mustProject(t, s, p.UUID).ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(roles) == 1 && roles[0].Role == db.RoleAdmin {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the event was not applied: roles %+v", roles)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if logs := s.Logs.String(); strings.Contains(logs, eventsSecret) || strings.Contains(logs, f.Token) {
		t.Error("a secret reached the log")
	}
}

func mustProject(t *testing.T, s *testserver.Server, uuid string) *db.Project {
	t.Helper()
	p, err := s.Store.ProjectByUUID(t.Context(), uuid)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSyncedRowsRefuseDirectoryWrites: every directory API write to what the sync owns
// is 409 with a detail naming the platform; reads work; rows pushed through the API stay
// writable.
func TestSyncedRowsRefuseDirectoryWrites(t *testing.T) {
	s, _, c, p, u := platformServer(t)
	pushed := db.NewUUID()
	if code := s.JSON(t, http.MethodPost, "/api/users/", s.StaffToken, map[string]any{"uuid": pushed, "username": "pushed"}, nil); code != http.StatusCreated {
		t.Fatalf("push a user: %d", code)
	}
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/api/users/", map[string]any{"uuid": u.UUID, "username": "olga2"}},
		{http.MethodPut, "/api/users/" + u.UUID + "/", map[string]any{"username": "olga2"}},
		{http.MethodPatch, "/api/users/" + u.UUID + "/", map[string]any{"full_name": "X"}},
		{http.MethodPost, "/api/users/" + u.UUID + "/deactivate/", nil},
		{http.MethodPost, "/api/projects/", map[string]any{"uuid": p.UUID, "name": "X"}},
		{http.MethodPut, "/api/projects/" + p.UUID + "/", map[string]any{"name": "X"}},
		{http.MethodPatch, "/api/projects/" + p.UUID + "/", map[string]any{"name": "X"}},
		{http.MethodDelete, "/api/projects/" + p.UUID + "/", nil},
		{http.MethodPut, "/api/projects/" + p.UUID + "/members/", []map[string]any{{"user": pushed, "role": "member"}}},
		{http.MethodPost, "/api/projects/" + p.UUID + "/members/", map[string]any{"user": pushed, "role": "member"}},
		{http.MethodDelete, "/api/projects/" + p.UUID + "/members/" + u.UUID + "/", nil},
		{http.MethodPost, "/api/customers/", url.Values{"uuid": {c.UUID}, "name": {"X"}}},
		{http.MethodPut, "/api/customers/" + c.UUID + "/", map[string]any{"name": "X"}},
		{http.MethodPatch, "/api/customers/" + c.UUID + "/", map[string]any{"name": "X"}},
		{http.MethodDelete, "/api/customers/" + c.UUID + "/", nil},
		{http.MethodPut, "/api/customers/" + c.UUID + "/owners/", []map[string]any{{"user": pushed}}},
		{http.MethodPost, "/api/customers/" + c.UUID + "/owners/", map[string]any{"user": pushed}},
		{http.MethodDelete, "/api/customers/" + c.UUID + "/owners/" + u.UUID + "/", nil},
	} {
		resp, body := s.Request(t, tc.method, tc.path, s.StaffToken, tc.body)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), `"detail":"This `) || !strings.Contains(string(body), "platform (Waldur)") {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	var got struct {
		Source   string  `json:"source"`
		Customer *string `json:"customer"`
	}
	if s.JSON(t, http.MethodGet, "/api/projects/"+p.UUID+"/", s.UserToken, nil, &got); got.Source != "waldur" || got.Customer == nil || *got.Customer != c.UUID {
		t.Errorf("project: %+v", got)
	}
	if code := s.JSON(t, http.MethodPatch, "/api/users/"+pushed+"/", s.StaffToken, map[string]any{"full_name": "Still mine"}, &got); code != http.StatusOK || got.Source != "api" {
		t.Errorf("pushed user: %d %+v", code, got)
	}
}

// TestDiagnosticsIncludeThePlatform: with a platform configured the three platform
// checks come last, in order; without one they are absent.
func TestDiagnosticsIncludeThePlatform(t *testing.T) {
	s, _, _, _, _ := platformServer(t)
	var rep struct {
		Checks []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"checks"`
	}
	if code := s.JSON(t, http.MethodGet, "/api/admin/matrix/diagnostics/", s.StaffToken, nil, &rep); code != http.StatusOK {
		t.Fatalf("diagnostics: %d", code)
	}
	n := len(rep.Checks)
	if n < 3 {
		t.Fatalf("checks %+v", rep.Checks)
	}
	var last []string
	for _, c := range rep.Checks[n-3:] {
		last = append(last, c.Name)
	}
	if strings.Join(last, ",") != "platform_reachable,platform_sync,platform_events" {
		t.Errorf("last checks %v", last)
	}
	if !rep.Checks[n-3].OK || !rep.Checks[n-2].OK {
		t.Errorf("platform checks %+v", rep.Checks[n-3:])
	}
	plain := testserver.New(t)
	plain.JSON(t, http.MethodGet, "/api/admin/matrix/diagnostics/", plain.StaffToken, nil, &rep)
	for _, c := range rep.Checks {
		if strings.HasPrefix(c.Name, "platform_") {
			t.Errorf("check %s without a platform", c.Name)
		}
	}
}
