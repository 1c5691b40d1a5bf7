package platform

import (
	"fmt"
	"sync"
	"time"
)

// progress is what the running run is doing, for the Platform page's poll.
type progress struct {
	mu      sync.Mutex
	kind    string
	started time.Time
	step    string
	counts  map[string]int
}

func (p *progress) start(kind string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kind, p.started, p.step, p.counts = kind, at, "starting", map[string]int{}
}

func (p *progress) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kind, p.step, p.counts = "", "", nil
}

func (p *progress) phase(step string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.step = step
}

func (p *progress) listed(kind string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.counts != nil {
		p.counts[kind]++
	}
}

// Progress is a running run's state.
type Progress struct {
	Kind    string // "full" or "incremental"; "" when nothing runs
	Started time.Time
	Step    string // "listing users", "applying roles", ...
	// Listed counts what the listings delivered so far, per kind.
	Listed map[string]int
}

// String words it: "full run, listing users (customers 12, projects 340, users 1,200 listed)".
func (p Progress) String() string {
	if p.Kind == "" {
		return ""
	}
	s := p.Kind + " run, " + p.Step
	var parts string
	for _, k := range []string{"customers", "projects", "users", "roles"} {
		if n, ok := p.Listed[k]; ok {
			if parts != "" {
				parts += ", "
			}
			parts += fmt.Sprintf("%s %d", k, n)
		}
	}
	if parts != "" {
		s += " (" + parts + " listed)"
	}
	return s
}

func (p *progress) snapshot() Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := Progress{Kind: p.kind, Started: p.started, Step: p.step, Listed: map[string]int{}}
	for k, v := range p.counts {
		out.Listed[k] = v
	}
	return out
}
