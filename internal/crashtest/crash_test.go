package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"matrixas/db"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testbin"
)

// proc is the server running as a subprocess.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func env(dbPath, addr string) []string {
	return append(os.Environ(), "DATABASE_PATH="+dbPath, "LISTEN_ADDR="+addr, "LOG_LEVEL=warn")
}

// run runs a one-shot subcommand and returns its standard output.
func run(t *testing.T, bin, dbPath string, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env(dbPath, "127.0.0.1:0")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

func start(t *testing.T, bin, dbPath, addr string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, "serve"), url: "http://" + addr, logs: &bytes.Buffer{}}
	p.cmd.Env = env(dbPath, addr)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not get ready:\n%s", p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) kill() {
	if p.cmd.Process != nil && p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

func put(client *http.Client, url, token, txnID string) (int, error) {
	body := `{"events":[{"type":"m.room.message","event_id":"$` + txnID + `","room_id":"!r:example.org","sender":"@a:example.org","content":{"body":"hi"}}]}`
	req, err := http.NewRequest(http.MethodPut, url+"/_matrix/app/v1/transactions/"+txnID, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestCrashDuringTransactionBurst SIGKILLs the server in the middle of a burst of
// transactions from several goroutines, restarts it, and checks that every transaction
// that got a 200 is stored, that the counter equals the rows, and that re-delivering
// everything (as a homeserver would) adds exactly the missing ones.
func TestCrashDuringTransactionBurst(t *testing.T) {
	dendritetest.Require(t) // runs with the integration suite: it builds and kills real processes
	bin := testbin.Build(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "crash.db")
	os.WriteFile(filepath.Join(dir, "pw"), []byte("crash-test-password\n"), 0o600)
	run(t, bin, dbPath, "", "createstaff", "--password-file", filepath.Join(dir, "pw"), "ops")
	token := run(t, bin, dbPath, "", "createtoken", "ops")

	addr := freeAddr(t)
	p := start(t, bin, dbPath, addr)
	setup, _ := json.Marshal(map[string]string{"url": p.url, "homeserver_url": "http://127.0.0.1:9", "homeserver_domain": "example.org", "user_registration_secret": "x"})
	req, _ := http.NewRequest(http.MethodPost, p.url+"/api/admin/matrix-appservice/setup/", bytes.NewReader(setup))
	req.Header.Set("Authorization", "Token "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("setup: %v %v", resp, err)
	}
	var res struct {
		HSToken string `json:"hs_token"`
	}
	json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()

	const workers = 8
	var mu sync.Mutex
	var sent, acked []string
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	killAt := time.Now().Add(400 * time.Millisecond)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				mu.Lock()
				sent = append(sent, id)
				mu.Unlock()
				code, err := put(client, p.url, res.HSToken, id)
				if err != nil {
					return // the server is gone
				}
				if code == 200 {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}()
	}
	for time.Now().Before(killAt) {
		time.Sleep(10 * time.Millisecond)
	}
	p.kill()
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d transactions acknowledged before the kill: the burst was too small to mean anything", len(acked))
	}

	p = start(t, bin, dbPath, addr)
	ctx := context.Background()
	store, err := db.OpenNoMigrate(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, id := range acked {
		if ok, err := store.TransactionSeen(ctx, id); err != nil || !ok {
			t.Fatalf("transaction %s got a 200 but is not stored (%v)", id, err)
		}
	}
	counter, _ := store.Counter(ctx, db.CounterTransactions)
	rows, _ := store.CountTransactionRows(ctx)
	if counter != rows {
		t.Fatalf("counter %d != rows %d after the crash", counter, rows)
	}
	t.Logf("sent %d, acknowledged %d, stored after the crash %d", len(sent), len(acked), rows)

	for _, id := range sent {
		if code, err := put(client, p.url, res.HSToken, id); err != nil || code != 200 {
			t.Fatalf("re-delivering %s: %d %v", id, code, err)
		}
	}
	counter, _ = store.Counter(ctx, db.CounterTransactions)
	rows, _ = store.CountTransactionRows(ctx)
	if counter != int64(len(sent)) || rows != int64(len(sent)) {
		t.Fatalf("after re-delivery: counter %d rows %d, want %d distinct txnIds", counter, rows, len(sent))
	}
}
