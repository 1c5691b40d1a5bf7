package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testserver"
	"matrixas/matrix"
	"matrixas/settings"
)

// benchOut is where the results go; without it these scenarios skip, so a plain
// `go test ./...` does not spend minutes here.
func benchOut(t *testing.T) string {
	out := os.Getenv("BENCH_RESULTS")
	if out == "" {
		t.Skip("benchmark scenario: run `make bench` (go run ./bench) to run it")
	}
	dendritetest.Require(t)
	return out
}

// cpuSeconds reads a process's user+system CPU time from /proc/<pid>/stat.
func cpuSeconds(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// setUp returns a server set up as the appservice of a fresh Dendrite; env adds to the
// server's configuration.
func setUp(t *testing.T, env map[string]string) (*testserver.Server, *dendritetest.Server, *db.MatrixSettings) {
	dir, err := os.MkdirTemp("/dev/shm", "matrixas-bench-")
	if err != nil {
		dir = t.TempDir()
	} else {
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	cfg := map[string]string{"LOG_LEVEL": "warn", "PROVISION_INTERVAL": "1s", "PROVISION_BACKOFF": "1s", "PROVISION_MAX_BACKOFF": "2s"}
	for k, v := range env {
		cfg[k] = v
	}
	s := testserver.New(t, testserver.Options{Env: cfg})
	ctx := context.Background()
	if err := s.Web.Settings().Set(ctx, map[string]string{
		settings.HomeserverDomain.Key: "localhost", settings.ASToken.Key: auth.RandomHex(32), settings.HSToken.Key: auth.RandomHex(32),
		settings.SenderLocalpart.Key: "waldur-bot", settings.AppserviceURL.Key: s.URL,
	}); err != nil {
		t.Fatal(err)
	}
	ms, _ := s.Web.Settings().Matrix(ctx)
	reg, _ := matrix.BuildRegistration(ms)
	y, _ := reg.YAML()
	regFile := filepath.Join(dir, "registration.yaml")
	os.WriteFile(regFile, []byte(y), 0o600)
	hs := dendritetest.Start(t, dendritetest.Options{RegistrationFiles: []string{regFile}, DataDir: filepath.Join(dir, "hs")})
	if err := s.Web.Settings().Set(ctx, map[string]string{settings.HomeserverURL.Key: hs.URL, settings.Enabled.Key: "true"}); err != nil {
		t.Fatal(err)
	}
	ms, _ = s.Web.Settings().Matrix(ctx)
	return s, hs, ms
}

func post(t *testing.T, s *testserver.Server, path string, body any) map[string]any {
	var out map[string]any
	if code := s.JSON(t, http.MethodPost, path, s.StaffToken, body, &out); code >= 300 {
		t.Fatalf("POST %s: %d %v", path, code, out)
	}
	return out
}

// workerRun takes projects × members to all active through the JSON API and the
// worker (concurrency jobs at once) on a fresh Dendrite, and returns
// the server (for more scenarios), the wall time and the CPU each side used.
func workerRun(t *testing.T, projects, members, concurrency int) (s *testserver.Server, hs *dendritetest.Server, wallS, hsCPUS, ourCPUS float64) {
	s, hs, _ = setUp(t, map[string]string{"PROVISION_CONCURRENCY": strconv.Itoa(concurrency)})
	ctx := context.Background()
	// Everything goes through the API, as the platform's sync job would.
	hsCPU0, ourCPU0 := cpuSeconds(t, hs.PID()), selfCPU()
	t0 := time.Now()
	for p := range projects {
		var roles []map[string]string
		for m := range members {
			u := post(t, s, "/api/users/", map[string]any{"username": fmt.Sprintf("w%03d-%d", p, m), "email": "u@example.org", "full_name": fmt.Sprintf("User %d %d", p, m), "is_active": true})
			role := []string{"admin", "manager", "member"}[m%3]
			roles = append(roles, map[string]string{"user": u["uuid"].(string), "role": role})
		}
		pr := post(t, s, "/api/projects/", map[string]any{"name": fmt.Sprintf("Worker project %03d", p)})
		if code := s.JSON(t, http.MethodPut, "/api/projects/"+pr["uuid"].(string)+"/members/", s.StaffToken, roles, nil); code != 200 {
			t.Fatalf("set members: %d", code)
		}
		post(t, s, "/api/matrix-rooms/", map[string]string{"project": pr["uuid"].(string)})
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		counts, err := s.Store.RoomStateCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if counts["active"] == projects {
			break
		}
		if counts["error"] > 0 || time.Now().After(deadline) {
			t.Fatalf("rooms: %v", counts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s, hs, time.Since(t0).Seconds(), cpuSeconds(t, hs.PID()) - hsCPU0, selfCPU() - ourCPU0
}

// naiveRun makes the same homeserver calls for projects × members in a serial loop, on
// a fresh Dendrite of its own (so neither run meets the other's rooms), and returns the
// wall time and Dendrite's CPU.
func naiveRun(t *testing.T, projects, members int) (wallS, hsCPUS float64) {
	_, hs, ms := setUp(t, nil)
	defer hs.Stop()
	ctx := context.Background()
	hc := matrix.HTTPClient(3*time.Second, 30*time.Second)
	bot, err := matrix.Client(ms, hc, "")
	if err != nil {
		t.Fatal(err)
	}
	if status := matrix.ProvisionBot(ctx, ms, hc); status != db.BotOK {
		t.Fatalf("bot: %s", status)
	}
	hsCPU0 := cpuSeconds(t, hs.PID())
	t0 := time.Now()
	for p := range projects {
		var users []id.UserID
		levels := map[id.UserID]int{bot.UserID: 100}
		for m := range members {
			uid := id.NewUserID(fmt.Sprintf("n%03d-%d", p, m), "localhost")
			c, _ := matrix.Client(ms, hc, uid)
			if _, err := c.MakeRequest(ctx, http.MethodPost, c.BuildClientURL("v3", "register"), &mautrix.ReqRegister[any]{Username: uid.Localpart(), Type: mautrix.AuthTypeAppservice, InhibitLogin: true}, nil); err != nil {
				t.Fatal(err)
			}
			if err := c.SetDisplayName(ctx, fmt.Sprintf("User %d %d", p, m)); err != nil {
				t.Fatal(err)
			}
			users = append(users, uid)
			levels[uid] = []int{50, 50, 0}[m%3]
		}
		resp, err := bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{
			Visibility: "private", Name: fmt.Sprintf("Naive project %03d", p), RoomAliasName: fmt.Sprintf("waldur-naive%03d", p),
			CreationContent: map[string]any{"m.federate": false},
			InitialState: []*event.Event{
				{Type: event.StateJoinRules, Content: event.Content{Parsed: &event.JoinRulesEventContent{JoinRule: event.JoinRuleInvite}}},
				{Type: event.StateHistoryVisibility, Content: event.Content{Parsed: &event.HistoryVisibilityEventContent{HistoryVisibility: event.HistoryVisibilityShared}}},
			},
			PowerLevelOverride: &event.PowerLevelsEventContent{Users: levels, EventsDefault: 0, StateDefaultPtr: ptr(100), InvitePtr: ptr(100), KickPtr: ptr(100), BanPtr: ptr(100), RedactPtr: ptr(100)},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, uid := range users {
			if _, err := bot.InviteUser(ctx, resp.RoomID, &mautrix.ReqInviteUser{UserID: uid}); err != nil {
				t.Fatal(err)
			}
			c, _ := matrix.Client(ms, hc, uid)
			if _, err := c.JoinRoomByID(ctx, resp.RoomID); err != nil {
				t.Fatal(err)
			}
		}
	}
	return time.Since(t0).Seconds(), cpuSeconds(t, hs.PID()) - hsCPU0
}

// TestBenchProvisioning: projects × members to all active through the worker, versus a
// naive serial loop over the same homeserver calls, each on a fresh Dendrite; then the
// worker at other concurrencies, to show whether our side or the homeserver bounds it.
func TestBenchProvisioning(t *testing.T) {
	out := benchOut(t)
	projects, members := 200, 3
	if os.Getenv("BENCH_QUICK") != "" {
		projects = 30
	}
	res := dendriteResults{Projects: projects, Members: members}
	const main = 2 // the default PROVISION_CONCURRENCY
	s, hs, wall, hsCPU, ourCPU := workerRun(t, projects, members, main)
	res.WorkerWallS, res.WorkerDendriteCPUS, res.WorkerOursCPUS = wall, hsCPU, ourCPU
	res.Sweep = append(res.Sweep, sweepPoint{Concurrency: main, WallS: wall, DendriteCPUS: hsCPU, OursCPUS: ourCPU})
	diagnosticsRun(t, s, &res) // against this Dendrite, loaded with the rooms
	hs.Stop()
	res.NaiveWallS, res.NaiveDendriteCPUS = naiveRun(t, projects, members)
	for _, c := range []int{1, 4, 8} {
		_, hs, wall, hsCPU, ourCPU := workerRun(t, projects, members, c)
		hs.Stop()
		res.Sweep = append(res.Sweep, sweepPoint{Concurrency: c, WallS: wall, DendriteCPUS: hsCPU, OursCPUS: ourCPU})
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// diagnosticsRun times diagnostics against s's healthy Dendrite, then against a black
// hole (which s is pointed at for good).
func diagnosticsRun(t *testing.T, s *testserver.Server, res *dendriteResults) {
	ctx := context.Background()
	// Diagnostics against the healthy Dendrite, then against a black hole.
	for range 5 {
		t0 := time.Now()
		var rep map[string]any
		if code := s.JSON(t, http.MethodGet, "/api/admin/matrix/diagnostics/", s.StaffToken, nil, &rep); code != 200 {
			t.Fatalf("diagnostics: %d", code)
		}
		res.DiagHealthyMS = append(res.DiagHealthyMS, float64(time.Since(t0).Microseconds())/1000)
		if rep["ok"] != true {
			var failed []any
			for _, c := range rep["checks"].([]any) {
				if c := c.(map[string]any); c["ok"] != true {
					failed = append(failed, c["name"])
				}
			}
			t.Logf("diagnostics against a healthy Dendrite: not ok: %v", failed)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and never answer
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	if err := s.Web.Settings().Set(ctx, map[string]string{settings.HomeserverURL.Key: "http://" + ln.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	res.DiagTimeoutS = max(s.Config.DiagnosticsConnectTimeout, s.Config.DiagnosticsRequestTimeout).Seconds()
	for range 3 {
		t0 := time.Now()
		s.JSON(t, http.MethodGet, "/api/admin/matrix/diagnostics/", s.StaffToken, nil, nil)
		res.DiagBlackholeS = append(res.DiagBlackholeS, time.Since(t0).Seconds())
	}
}

func ptr(i int) *int { return &i }
