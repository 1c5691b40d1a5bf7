package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"matrixas/db"
	"matrixas/internal/fakewaldur"
	"matrixas/settings"
)

// benchTB is what the fake platform needs of a test, for a program: failures are
// collected, cleanups run at the end of the scenario.
type benchTB struct {
	errs     []string
	cleanups []func()
}

func (b *benchTB) Helper() {}
func (b *benchTB) Errorf(format string, args ...any) {
	if len(b.errs) < 5 {
		b.errs = append(b.errs, fmt.Sprintf(format, args...))
	}
}
func (b *benchTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (b *benchTB) Cleanup(f func())                  { b.cleanups = append(b.cleanups, f) }
func (b *benchTB) done() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
}

// syncStatus is what the scenario reads of GET /api/admin/platform-sync/.
type syncStatus struct {
	Running        bool    `json:"running"`
	LastFinishedAt *string `json:"last_finished_at"`
	LastStartedAt  *string `json:"last_started_at"`
	LastOK         *bool   `json:"last_ok"`
	LastError      *string `json:"last_error"`
	LastKind       *string `json:"last_kind"`
	Counts         map[string]struct {
		Created, Updated, Removed int
	} `json:"counts"`
}

// platformSync is scenario 10: the platform sync's full reconcile of a large platform
// (10,000 projects, 50,000 users, 150,000 role assignments, served by the fake platform
// in this process) into the real server (a subprocess), then an incremental run of 10
// changes. Wall time from "Sync now" to the run's end, requests per kind, and the
// server's peak RSS.
func platformSync(ctx context.Context, e *env) (err error) {
	sc := fakewaldur.Scale{Customers: 1000, Projects: 10_000, Users: 50_000, Roles: 150_000}
	if e.quick {
		sc = fakewaldur.Scale{Customers: 100, Projects: 1000, Users: 5000, Roles: 15_000}
	}
	tb := &benchTB{}
	defer tb.done()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("fake platform: %v", p)
		}
	}()
	f := fakewaldur.New(tb)
	f.SetValidation(false) // every answer's shape is checked in the tests; here the client is timed
	f.SetDelivery(false)

	dir := filepath.Join(e.work, "platform")
	os.MkdirAll(dir, 0o755)
	sd, err := seed(ctx, filepath.Join(dir, "platform.db"), 0, 0, 0)
	if err != nil {
		return err
	}
	store, err := db.Open(ctx, sd.path)
	if err != nil {
		return err
	}
	// The homeserver's domain is known (users get Matrix ids, as in production); the
	// appservice is not enabled, so the worker stays idle and the sync is what is timed.
	err = db.NewSettings(store, nil).Set(ctx, map[string]string{settings.HomeserverDomain.Key: "bench.example.org"})
	store.Close()
	if err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, e.server, "serve")
	cmd.Env = append(os.Environ(), "LISTEN_ADDR="+addr, "DATABASE_PATH="+sd.path, "LOG_LEVEL=warn",
		"WALDUR_URL="+f.URL, "WALDUR_TOKEN="+f.Token, "WALDUR_SYNC_INTERVAL=24h")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	base := "http://" + addr
	if err := waitReady(base+"/readyz", 30*time.Second); err != nil {
		return err
	}
	api := func(method, body string) (syncStatus, int, error) {
		var st syncStatus
		req, _ := http.NewRequestWithContext(ctx, method, base+"/api/admin/platform-sync/", strings.NewReader(body))
		req.Header.Set("Authorization", "Token "+sd.token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return st, 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &st); err != nil {
			return st, resp.StatusCode, fmt.Errorf("%s: %s", err, b)
		}
		return st, resp.StatusCode, nil
	}
	// wait polls the status every 20 ms until no run is under way and one has finished
	// (the one just started: a POST answers once its run is marked running).
	wait := func() (syncStatus, error) {
		deadline := time.Now().Add(10 * time.Minute)
		for time.Now().Before(deadline) {
			st, _, err := api(http.MethodGet, "")
			if err != nil {
				return st, err
			}
			if !st.Running && st.LastFinishedAt != nil {
				return st, nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		return syncStatus{}, fmt.Errorf("the run did not finish in 10 minutes")
	}
	// The first run at start finds an empty platform.
	_, err = wait()
	if err != nil {
		return err
	}

	// The platform appears, older than the incremental runs' safety margin.
	f.Advance(-time.Hour)
	if err := f.Generate(sc); err != nil {
		return err
	}
	f.Advance(time.Hour)
	f.ResetRequests()
	t0 := time.Now()
	if _, code, err := api(http.MethodPost, ""); err != nil || code != http.StatusAccepted {
		return fmt.Errorf("start the full run: %d %v", code, err)
	}
	full, err := wait()
	fullWall := time.Since(t0)
	if err != nil {
		return err
	}
	if full.LastOK == nil || !*full.LastOK {
		return fmt.Errorf("the full run failed: %v", full.LastError)
	}
	rssKiB, err := rssKB(cmd.Process.Pid, "VmHWM")
	if err != nil {
		return err
	}
	rss := float64(rssKiB) / 1024
	perKind := map[string][2]int{} // requests, ceil(N/300)
	ceil := func(n int) int { return (n + 299) / 300 }
	for path, n := range map[string]int{"/api/customers/": sc.Customers, "/api/projects/": sc.Projects, "/api/users/": sc.Users, "/api/user-permissions/": sc.Roles} {
		perKind[path] = [2]int{f.Requests(path), ceil(n)}
	}
	fullRequests := f.Requests("")

	// Ten changes the incremental run sees: three projects renamed, two users added and
	// two changed, three roles granted.
	genUUID := func(kind byte, i int) string { return fmt.Sprintf("%02x%06x%08x%016x", kind, 0, i, 0) }
	for i := range 3 {
		f.UpdateProject(genUUID(2, i), func(p *fakewaldur.Project) { p.Name += " (renamed)" })
	}
	var added []string
	for i := range 2 {
		added = append(added, f.AddUser(fakewaldur.User{Username: fmt.Sprintf("newcomer%d", i), Active: true}).UUID)
	}
	for i := range 2 {
		f.UpdateUser(genUUID(3, i), func(u *fakewaldur.User) { u.LastName = "Changed" })
	}
	f.Grant(fakewaldur.Permission{UserUUID: added[0], Role: "PROJECT.MEMBER", ScopeType: "project", ScopeUUID: genUUID(2, 5)})
	f.Grant(fakewaldur.Permission{UserUUID: added[1], Role: "PROJECT.ADMIN", ScopeType: "project", ScopeUUID: genUUID(2, 6)})
	f.Grant(fakewaldur.Permission{UserUUID: genUUID(3, 7), Role: "PROJECT.MANAGER", ScopeType: "project", ScopeUUID: genUUID(2, 8)})
	f.ResetRequests()
	t1 := time.Now()
	if _, code, err := api(http.MethodPost, `{"mode": "incremental"}`); err != nil || code != http.StatusAccepted {
		return fmt.Errorf("start the incremental run: %d %v", code, err)
	}
	inc, err := wait()
	incWall := time.Since(t1)
	if err != nil {
		return err
	}
	if inc.LastOK == nil || !*inc.LastOK {
		return fmt.Errorf("the incremental run failed: %v", inc.LastError)
	}
	incChanges := 0
	for _, c := range inc.Counts {
		incChanges += c.Created + c.Updated + c.Removed
	}
	if len(tb.errs) > 0 {
		return fmt.Errorf("fake platform: %s", strings.Join(tb.errs, "; "))
	}

	var b strings.Builder
	fmt.Fprintf(&b, "The fake platform (`internal/fakewaldur`, in the benchmark's process, answers not validated) holds %d customers, %d projects, %d users (every 50th inactive) and %d role assignments (one owner per customer, the rest project roles). "+
		"The server (the stripped binary, a subprocess, on a new database whose homeserver domain is set so every active user gets a Matrix id) is asked for a full run with `POST /api/admin/platform-sync/`; "+
		"wall time is until `GET` says it finished (polled every 20 ms), peak RSS is the server's VmHWM afterwards.\n\n", sc.Customers, sc.Projects, sc.Users, sc.Roles)
	b.WriteString("| measure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| full run wall time | %.1f s |\n", fullWall.Seconds())
	k := full.Counts
	fmt.Fprintf(&b, "| created | %d customers, %d users, %d projects, %d roles |\n", k["customers"].Created, k["users"].Created, k["projects"].Created, k["roles"].Created)
	fmt.Fprintf(&b, "| requests in all | %d |\n", fullRequests)
	okRequests := true
	for _, path := range []string{"/api/customers/", "/api/projects/", "/api/users/", "/api/user-permissions/"} {
		r := perKind[path]
		fmt.Fprintf(&b, "| requests to `%s` | %d (ceil(N/300) = %d) |\n", path, r[0], r[1])
		okRequests = okRequests && r[0] <= r[1]
	}
	fmt.Fprintf(&b, "| server peak RSS | %.1f MiB |\n", rss)
	fmt.Fprintf(&b, "| incremental run of 10 changes: wall time | %.0f ms |\n", float64(incWall.Microseconds())/1000)
	fmt.Fprintf(&b, "| incremental run: rows changed, requests | %d, %d |\n", incChanges, f.Requests(""))
	e.rep.section("10. Platform sync at scale", b.String())
	e.rep.target("10. full platform sync, 10k projects / 50k users / 150k roles", "< 60 s", fmt.Sprintf("%.1f s", fullWall.Seconds()), fullWall < time.Minute)
	e.rep.target("10. incremental platform sync at the same scale", "< 60 s", fmt.Sprintf("%.1f s", incWall.Seconds()), incWall < time.Minute)
	e.rep.target("10. list requests per kind", "≤ ceil(N/300)", fmt.Sprint(fullRequests), okRequests)
	e.rep.target("10. server peak RSS during the full sync", "< 128 MiB", fmt.Sprintf("%.1f MiB", rss), rss < 128)
	fmt.Printf("   full %.1f s, %d requests, peak RSS %.1f MiB; incremental %.0f ms, %d changes, %d requests\n",
		fullWall.Seconds(), fullRequests, rss, float64(incWall.Microseconds())/1000, incChanges, f.Requests(""))
	return nil
}
