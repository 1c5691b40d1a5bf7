package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// report collects each scenario's section of docs/PERFORMANCE.md.
type report struct {
	quick    bool
	sections []string
	targets  []string // "| scenario | target | measured | met |" rows
}

func newReport(quick bool) *report { return &report{quick: quick} }

func (r *report) section(title, body string) {
	r.sections = append(r.sections, "## "+title+"\n\n"+strings.TrimSpace(body)+"\n")
}

func (r *report) target(scenario, target, measured string, met bool) {
	mark := "yes"
	if !met {
		mark = "**no**"
	}
	r.targets = append(r.targets, fmt.Sprintf("| %s | %s | %s | %s |", scenario, target, measured, mark))
}

func (r *report) failed(n, name string, err error) {
	r.section(fmt.Sprintf("%s. %s", n, name), "The scenario failed to run: `"+err.Error()+"`")
	r.target(n+". "+name, "runs", "failed", false)
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	wrk := "wrk not found"
	if out, err := exec.Command("wrk", "-v").CombinedOutput(); err == nil || len(out) > 0 {
		wrk = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return fmt.Sprintf("- CPU: %s × %d (GOMAXPROCS %d)\n- %s\n- load average at the end: %s\n- %s\n- load generator: %s", cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0), mem, load, runtime.Version(), wrk)
}

func (r *report) markdown(goVersion string) string {
	var b strings.Builder
	b.WriteString("# Performance\n\n")
	b.WriteString("Written by `make bench` (`go run ./bench`) on " + time.Now().UTC().Format("2006-01-02 15:04 MST") + ". ")
	b.WriteString("The machine is shared and noisy, so every headline figure is a ratio against a baseline measured in the same run; absolute numbers are for reference.\n")
	if r.quick {
		b.WriteString("\n**Quick run** (`-quick`): one short repetition per scenario, not a measurement to quote.\n")
	}
	b.WriteString("\n## Machine\n\n" + machine() + "\n\n")
	b.WriteString("## Targets\n\n| scenario | target | measured | met |\n|---|---|---|---|\n")
	b.WriteString(strings.Join(r.targets, "\n") + "\n\n")
	b.WriteString(strings.Join(r.sections, "\n"))
	return b.String()
}
