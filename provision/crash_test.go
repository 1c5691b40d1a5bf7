package provision_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testserver"
	"matrixas/settings"
)

// buildServer builds the matrixas binary into a temp folder.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "matrixas")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = ".." // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serverProcess is one run of the real binary.
type serverProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startServer runs `matrixas serve` with env and waits until it answers /readyz.
func startServer(t *testing.T, bin, url, logPath string, env []string) *serverProcess {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	waitFor(t, "server ready", 30*time.Second, func() (bool, string) {
		select {
		case <-p.done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("server exited:\n%s", b)
		default:
		}
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return p
}

// kill sends SIGKILL: no shutdown, no draining, as in a crash or an OOM kill.
func (p *serverProcess) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// TestCrashSafety provisions 50 rooms with a real server process, SIGKILLs it in the
// middle, and restarts it: every room ends active, and the bot is in exactly as many
// rooms as there are, so nothing was created twice.
func TestCrashSafety(t *testing.T) {
	dendritetest.Require(t)
	t.Parallel()
	ctx := context.Background()
	bin := buildServer(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	url := "http://" + addr
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "matrixas.db")

	// The database as setup and a directory sync would leave it: the appservice set up,
	// 50 projects with two members each and their rooms queued.
	store, err := db.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	st := db.NewSettings(store, nil)
	if err := st.Set(ctx, appserviceSettings(url)); err != nil {
		t.Fatal(err)
	}
	ms, err := st.Matrix(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hs := dendritetest.Start(t, dendritetest.Options{RegistrationFiles: []string{writeRegistration(t, ms, dir)}, DataDir: memDir(t)})
	if err := st.Set(ctx, map[string]string{settings.HomeserverURL.Key: hs.URL, settings.Enabled.Key: "true"}); err != nil {
		t.Fatal(err)
	}
	staff := &db.User{Username: "staff", IsStaff: true, IsActive: true}
	if err := store.CreateUser(ctx, staff); err != nil {
		t.Fatal(err)
	}
	token, prefix, hash := auth.NewAPIToken()
	if _, err := store.CreateAPIToken(ctx, staff.ID, "test", prefix, hash); err != nil {
		t.Fatal(err)
	}
	rules := db.ProfileRules{Domain: "localhost", BotLocalpart: "waldur-bot"}
	var users []*db.User
	for i := range 10 {
		u, _, err := store.PutUser(ctx, db.DirectoryUser{Username: fmt.Sprintf("crash%d", i), IsActive: true}, rules)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	const nRooms = 50
	for i := range nRooms {
		p, _, err := store.PutProject(ctx, db.DirectoryProject{Name: fmt.Sprintf("Crash %02d", i)}, true)
		if err != nil {
			t.Fatal(err)
		}
		roles := []db.RoleInput{{UserUUID: users[i%10].UUID, Role: db.RoleAdmin}, {UserUUID: users[(i+3)%10].UUID, Role: db.RoleMember}}
		if err := store.SetRoles(ctx, p.ID, roles, rules); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"DATABASE_PATH=" + dbPath, "LISTEN_ADDR=" + addr, "PUBLIC_URL=" + url, "LOG_LEVEL=debug",
		"PROVISION_CONCURRENCY=4", "PROVISION_BACKOFF=1s", "PROVISION_MAX_BACKOFF=2s", "PROVISION_INTERVAL=1s",
	}
	logPath := filepath.Join(dir, "server.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("server log:\n%s", b)
		}
	})
	api := &testserver.Server{URL: url, StaffToken: token}
	activeCount := func() int {
		resp, _ := api.Request(t, http.MethodGet, "/api/matrix-rooms/?state=active&page_size=1", token, nil)
		n, _ := strconv.Atoi(resp.Header.Get("X-Result-Count"))
		return n
	}

	first := startServer(t, bin, url, logPath, env)
	waitFor(t, "the first rooms active", 60*time.Second, func() (bool, string) {
		n := activeCount()
		return n >= 2, fmt.Sprintf("%d active", n)
	})
	first.kill()
	// What the killed process left: some rooms done, the rest half-way or not started.
	store, err = db.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := store.RoomStateCounts(ctx)
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the kill: %v", counts)
	if counts["active"] >= nRooms {
		t.Fatalf("all %d rooms were done before the kill: the test proves nothing", nRooms)
	}

	startServer(t, bin, url, logPath, env)
	waitFor(t, "every room active after the restart", 90*time.Second, allActive(t, api, nRooms))

	if b, err := os.ReadFile(logPath); err == nil {
		t.Logf("rooms adopted after the crash: %d by alias, %d left without one",
			strings.Count(string(b), "adopted a room by its alias"), strings.Count(string(b), "adopted a room left by an interrupted creation"))
	}
	joinedRooms, err := (&appservice{ms: ms}).bot(t, hs).JoinedRooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(joinedRooms.JoinedRooms) != nRooms {
		t.Errorf("the bot is in %d rooms, want %d (one per project, no duplicates)", len(joinedRooms.JoinedRooms), nRooms)
	}
	for _, r := range rooms(t, api) {
		if !slices.Contains(joinedRooms.JoinedRooms, id.RoomID(r.RoomID)) {
			t.Errorf("room %s of %s: the bot is not in it", r.RoomID, r.UUID)
		}
	}
}
