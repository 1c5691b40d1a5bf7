package main

import (
	"bufio"
	"bytes"
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
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/auth"
	"matrixas/db"
	"matrixas/export"
	"matrixas/internal/dendritetest"
	"matrixas/internal/testbin"
	"matrixas/matrix"
	"matrixas/settings"
)

// The plain pager runs in a process of its own (this test binary, re-run with only
// TestBenchExportPager), so that its peak memory is its own.
const pagerEnv = "BENCH_EXPORT_PAGER"

// pagerJob is what the pager process is told.
type pagerJob struct {
	HomeserverURL string
	ASToken       string
	Domain        string
	RoomID        id.RoomID
	Out           string
}

// TestBenchExportPager is the baseline of scenario 11 when run as its helper process: it
// pages the room backwards, 100 events a page, serially, as the bot, and writes the
// same JSON document the export writes (the messages newest first, then the counts)
// into a plain file. Run otherwise, it skips.
func TestBenchExportPager(t *testing.T) {
	raw := os.Getenv(pagerEnv)
	if raw == "" {
		t.Skip("the plain pager of scenario 11: run by TestBenchExport")
	}
	var job pagerJob
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		t.Fatal(err)
	}
	ms := &db.MatrixSettings{HomeserverURL: job.HomeserverURL, ASToken: job.ASToken, HomeserverDomain: job.Domain, SenderLocalpart: "waldur-bot"}
	c, err := matrix.Client(ms, &http.Client{Timeout: time.Minute}, "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(job.Out)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 32<<10)
	fmt.Fprintf(w, `{"room_id":%q,"room_name":"","exported_at":%q,"messages":[`+"\n", job.RoomID, time.Now().UTC().Format(time.RFC3339))
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	n, from := 0, ""
	for {
		resp, err := c.Messages(context.Background(), job.RoomID, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, evt := range resp.Chunk {
			if evt.Type != event.EventMessage || evt.StateKey != nil {
				continue
			}
			_ = evt.Content.ParseRaw(evt.Type)
			content, _ := evt.Content.Parsed.(*event.MessageEventContent)
			m := export.Message{EventID: evt.ID, Sender: evt.Sender, Type: evt.Type.Type,
				Timestamp: time.UnixMilli(evt.Timestamp).UTC().Format("2006-01-02T15:04:05.000Z07:00")}
			if content != nil {
				m.MsgType, m.Body = string(content.MsgType), content.Body
			}
			if n > 0 {
				w.WriteByte(',')
			}
			if err := enc.Encode(m); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if resp.End == "" || len(resp.Chunk) == 0 || resp.End == from {
			break
		}
		from = resp.End
	}
	fmt.Fprintf(w, "],\"message_count\":%d,\"media_count\":0}\n", n)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestBenchExport is scenario 11: a room of 20,000 messages on a fresh Dendrite,
// exported by the server (a subprocess: POST export_history, until the record says
// completed) and, in the same run, by the plain pager; wall time and peak memory of each.
func TestBenchExport(t *testing.T) {
	out := os.Getenv("BENCH_EXPORT_RESULTS")
	if out == "" {
		t.Skip("benchmark scenario: run `go run ./bench -only 11` to run it")
	}
	dendritetest.Require(t)
	ctx := context.Background()
	messages, reps := 20_000, 3
	if os.Getenv("BENCH_QUICK") != "" {
		messages, reps = 2_000, 1
	}
	bin := os.Getenv("BENCH_SERVER")
	if bin == "" {
		bin = testbin.Build(t)
	}
	dir, err := os.MkdirTemp("/dev/shm", "matrixas-bench-export-")
	if err != nil {
		dir = t.TempDir()
	} else {
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	dbPath := filepath.Join(dir, "bench.db")
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}

	// The server's database: a staff token and the appservice's settings; Dendrite with
	// the registration.
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("scenario-nine-password\n"), 0o600)
	cli := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "DATABASE_PATH="+dbPath, "LOG_LEVEL=warn")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr.String())
		}
		return strings.TrimSpace(string(b))
	}
	cli("createstaff", "--password-file", pw, "bench")
	token := cli("createtoken", "bench")
	store, err := db.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	st := db.NewSettings(store, nil)
	if err := st.Set(ctx, map[string]string{
		settings.HomeserverDomain.Key: "localhost", settings.ASToken.Key: auth.RandomHex(32), settings.HSToken.Key: auth.RandomHex(32),
		settings.SenderLocalpart.Key: "waldur-bot", settings.AppserviceURL.Key: "http://" + addr,
	}); err != nil {
		t.Fatal(err)
	}
	ms, _ := st.Matrix(ctx)
	reg, _ := matrix.BuildRegistration(ms)
	y, _ := reg.YAML()
	regFile := filepath.Join(dir, "registration.yaml")
	os.WriteFile(regFile, []byte(y), 0o600)
	hs := dendritetest.Start(t, dendritetest.Options{RegistrationFiles: []string{regFile}, DataDir: filepath.Join(dir, "hs")})
	if err := st.Set(ctx, map[string]string{settings.HomeserverURL.Key: hs.URL, settings.Enabled.Key: "true"}); err != nil {
		t.Fatal(err)
	}
	ms, _ = st.Matrix(ctx)
	store.Close()

	srv := exec.Command(bin, "serve")
	srv.Env = append(os.Environ(), "DATABASE_PATH="+dbPath, "LISTEN_ADDR="+addr, "LOG_LEVEL=warn", "PROVISION_INTERVAL=1s")
	var logs bytes.Buffer
	srv.Stdout, srv.Stderr = &logs, &logs
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	base := "http://" + addr
	if err := waitReady(base+"/readyz", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	call := func(method, path string, body, out any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Token "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatal(err)
			}
		}
	}

	// A room with two members, made by the worker; the messages posted by both, four
	// senders at once.
	var roles []map[string]string
	for _, u := range []string{"ann", "ben"} {
		var out struct{ UUID string }
		call(http.MethodPost, "/api/users/", map[string]any{"username": u, "email": u + "@example.org", "is_active": true}, &out)
		roles = append(roles, map[string]string{"user": out.UUID, "role": "member"})
	}
	var project, room struct{ UUID string }
	call(http.MethodPost, "/api/projects/", map[string]any{"name": "Export bench"}, &project)
	call(http.MethodPut, "/api/projects/"+project.UUID+"/members/", roles, nil)
	call(http.MethodPost, "/api/matrix-rooms/", map[string]string{"project": project.UUID}, &room)
	var roomID id.RoomID
	deadline := time.Now().Add(2 * time.Minute)
	for roomID == "" {
		var r struct {
			State   string    `json:"state"`
			RoomID  id.RoomID `json:"room_id"`
			Members []struct {
				Membership string `json:"membership"`
			} `json:"members"`
		}
		call(http.MethodGet, "/api/matrix-rooms/"+room.UUID+"/", nil, &r)
		joined := 0
		for _, m := range r.Members {
			if m.Membership == "join" {
				joined++
			}
		}
		if r.State == "active" && joined == 2 {
			roomID = r.RoomID
		} else if time.Now().After(deadline) {
			t.Fatalf("room %+v\n%s", r, logs.String())
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Posted serially, alternating the members: Dendrite takes them in faster than from
	// several senders at once (they contend for the room).
	hc := matrix.HTTPClient(3*time.Second, 30*time.Second)
	var senders []*mautrix.Client
	for _, user := range []string{"ann", "ben"} {
		c, err := matrix.Client(ms, hc, id.NewUserID(user, "localhost"))
		if err != nil {
			t.Fatal(err)
		}
		senders = append(senders, c)
	}
	t0 := time.Now()
	for i := range messages {
		body := fmt.Sprintf("message %05d: a line of a conversation about the project, long enough to be typical", i)
		if _, err := senders[i%2].SendMessageEvent(ctx, roomID, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	res := exportResults{Messages: messages, FillS: time.Since(t0).Seconds()}
	t.Logf("%d messages posted in %.1f s", messages, res.FillS)

	// pager runs the plain pager process once and reports its time, peak memory, and the
	// messages it wrote.
	pager := func(out string) (wall, peakMiB float64, count int) {
		t.Helper()
		job, _ := json.Marshal(pagerJob{HomeserverURL: hs.URL, ASToken: ms.ASToken, Domain: "localhost", RoomID: roomID, Out: out})
		cmd := exec.Command(os.Args[0], "-test.run=^TestBenchExportPager$", "-test.count=1")
		cmd.Env = append(os.Environ(), pagerEnv+"="+string(job))
		t0 := time.Now()
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pager: %v\n%s", err, b)
		}
		wall = time.Since(t0).Seconds()
		var doc struct {
			MessageCount int `json:"message_count"`
		}
		raw, err := os.ReadFile(out)
		if err != nil || json.Unmarshal(raw, &doc) != nil {
			t.Fatalf("pager output: %v", err)
		}
		return wall, float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024, doc.MessageCount
	}
	// Dendrite makes a sent event readable through /messages a moment later: wait until
	// every message is (which also warms its caches for both contenders alike).
	for deadline := time.Now().Add(2 * time.Minute); ; {
		_, _, n := pager(filepath.Join(dir, "warm-up.json"))
		if n >= messages {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d messages readable after 2 minutes", n, messages)
		}
		time.Sleep(time.Second)
	}

	pid := srv.Process.Pid
	for rep := range reps {
		var r exportRep
		// The server's export: its peak resident set is reset first, so it covers the
		// export only.
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			t.Logf("cannot reset the peak RSS (%v): the server's peak covers its whole life", err)
		}
		rss, _ := rssKB(pid, "VmRSS")
		r.ServerRSSMiB = float64(rss) / 1024
		var e struct {
			UUID           string  `json:"uuid"`
			State          string  `json:"state"`
			MessageCount   int     `json:"message_count"`
			ExportFile     *string `json:"export_file"`
			ExportFileSize int64   `json:"export_file_size"`
		}
		t0 := time.Now()
		call(http.MethodPost, "/api/matrix-rooms/"+room.UUID+"/export_history/", nil, &e)
		for e.State != "completed" {
			if e.State == "failed" || time.Since(t0) > 10*time.Minute {
				t.Fatalf("export %+v", e)
			}
			time.Sleep(10 * time.Millisecond)
			call(http.MethodGet, "/api/matrix-exports/"+e.UUID+"/", nil, &e)
		}
		r.ExportS = time.Since(t0).Seconds()
		peak, _ := rssKB(pid, "VmHWM")
		r.ServerPeakMiB = float64(peak) / 1024
		r.ExportMessages = e.MessageCount
		res.JSONBytes = e.ExportFileSize

		// The plain pager, in its own process.
		pagerOut := filepath.Join(dir, fmt.Sprintf("pager-%d.json", rep))
		r.PagerS, r.PagerPeakMiB, _ = pager(pagerOut)
		st, err := os.Stat(pagerOut)
		if err != nil {
			t.Fatal(err)
		}
		r.PagerBytes = st.Size()

		// The same messages in the same order: the export, downloaded, against the pager's.
		r.SameDocument = sameMessages(t, *e.ExportFile, token, pagerOut)
		t.Logf("rep %d: export %.2f s (server %.0f -> peak %.0f MiB), pager %.2f s (peak %.0f MiB), same document %v",
			rep+1, r.ExportS, r.ServerRSSMiB, r.ServerPeakMiB, r.PagerS, r.PagerPeakMiB, r.SameDocument)
		res.Reps = append(res.Reps, r)
	}
	res.Pages = (res.Reps[0].ExportMessages + 99) / 100
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sameMessages compares the event ids of the downloaded export with the pager's file.
func sameMessages(t *testing.T, url, token, pagerOut string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	type doc struct {
		MessageCount int `json:"message_count"`
		Messages     []struct {
			EventID string `json:"event_id"`
			Body    string `json:"body"`
		} `json:"messages"`
	}
	var a, b doc
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("export download: %v", err)
	}
	raw, err := os.ReadFile(pagerOut)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("pager output: %v", err)
	}
	if a.MessageCount != b.MessageCount || len(a.Messages) != len(b.Messages) {
		return false
	}
	for i := range a.Messages {
		if a.Messages[i] != b.Messages[i] {
			return false
		}
	}
	return true
}
