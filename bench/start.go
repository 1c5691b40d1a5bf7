package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// memoryAndStart measures the binary size, cold start to /readyz, idle RSS, and reports
// the peak RSS measured during scenario 1.
func memoryAndStart(ctx context.Context, e *env) error {
	st, err := os.Stat(e.server)
	if err != nil {
		return err
	}
	reps := 5
	if e.quick {
		reps = 2
	}
	var starts, restarts, idle []float64
	for i := range reps {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		dir := filepath.Join(e.work, fmt.Sprintf("start-%d", i))
		os.MkdirAll(dir, 0o755)
		pw := filepath.Join(dir, "pw")
		os.WriteFile(pw, []byte("bench-start-password\n"), 0o600)
		cmd := exec.CommandContext(ctx, e.server, "serve")
		cmd.Env = append(os.Environ(), "LISTEN_ADDR="+addr, "DATABASE_PATH="+filepath.Join(dir, "db.sqlite"), "LOG_LEVEL=warn", "BOOTSTRAP_PASSWORD_FILE="+pw)
		t := time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		err = waitReady("http://"+addr+"/readyz", 20*time.Second)
		starts = append(starts, float64(time.Since(t).Microseconds())/1000)
		if err != nil {
			cmd.Process.Kill()
			return err
		}
		time.Sleep(time.Second) // idle means idle: let start-up garbage settle
		kb, err := rssKB(cmd.Process.Pid, "VmRSS")
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if err != nil {
			return err
		}
		idle = append(idle, float64(kb)/1024)
		// The same database again: a restart, without the first run's work.
		cmd = exec.CommandContext(ctx, e.server, "serve")
		cmd.Env = append(os.Environ(), "LISTEN_ADDR="+addr, "DATABASE_PATH="+filepath.Join(dir, "db.sqlite"), "LOG_LEVEL=warn")
		t = time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		err = waitReady("http://"+addr+"/readyz", 20*time.Second)
		restarts = append(restarts, float64(time.Since(t).Microseconds())/1000)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if err != nil {
			return err
		}
	}
	s, m, rs := summarise(starts), summarise(idle), summarise(restarts)
	var b strings.Builder
	b.WriteString("Cold start is from `exec` of the stripped binary on a new database (migrations included; the first-run staff user's password is hashed, bcrypt at cost 12, about 260 ms on this machine, while the server starts, and sign-ins wait for it) to the first `200` from `/readyz`, polled every 2 ms; a restart is the same on the database the cold start left; idle RSS is read from `/proc/<pid>/status` one second after ready.\n\n")
	b.WriteString("| measure | median | min | max |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| cold start to /readyz | %.1f ms | %.1f ms | %.1f ms |\n| restart to /readyz | %.1f ms | %.1f ms | %.1f ms |\n| idle RSS | %.1f MiB | %.1f MiB | %.1f MiB |\n",
		s.med, s.min, s.max, rs.med, rs.min, rs.max, m.med, m.min, m.max)
	fmt.Fprintf(&b, "| binary size (`-trimpath -ldflags '-s -w'`) | %.1f MiB | | |\n", float64(st.Size())/(1<<20))
	if e.peakRSS > 0 {
		fmt.Fprintf(&b, "| peak RSS (VmHWM) during scenario 1 | %.1f MiB | | |\n", e.peakRSS)
		e.rep.target("7. peak RSS during scenario 1", "≤ 64 MiB", fmt.Sprintf("%.1f MiB", e.peakRSS), e.peakRSS <= 64)
	}
	e.rep.section("7. Memory, size and start", b.String())
	e.rep.target("7. idle RSS after start", "≤ 30 MiB", fmt.Sprintf("%.1f MiB", m.med), m.med <= 30)
	e.rep.target("7. cold start to /readyz", "≤ 200 ms", fmt.Sprintf("%.1f ms", s.med), s.med <= 200)
	return nil
}
