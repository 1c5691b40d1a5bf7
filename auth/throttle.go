package auth

import (
	"sync"
	"time"
)

// Throttle counts failed logins per key (a username, a client address) and refuses a key
// that failed too often within the window, until the window has passed.
type Throttle struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	fails  map[string][]time.Time
}

// NewThrottle allows max failures per key within window.
func NewThrottle(max int, window time.Duration) *Throttle {
	return &Throttle{max: max, window: window, now: time.Now, fails: map[string][]time.Time{}}
}

// Blocked reports whether any of keys is over the limit, and for how long it stays so.
func (t *Throttle) Blocked(keys ...string) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var wait time.Duration
	for _, k := range keys {
		f := t.prune(k, now)
		if len(f) >= t.max {
			wait = max(wait, f[0].Add(t.window).Sub(now))
		}
	}
	return wait > 0, wait
}

// Fail records a failed attempt for each key.
func (t *Throttle) Fail(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for _, k := range keys {
		t.fails[k] = append(t.prune(k, now), now)
	}
	if len(t.fails) > 100_000 { // bound memory under a flood of distinct keys
		for k := range t.fails {
			if len(t.prune(k, now)) == 0 {
				delete(t.fails, k)
			}
		}
	}
}

// Reset forgets the failures of keys (after a successful login).
func (t *Throttle) Reset(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.fails, k)
	}
}

func (t *Throttle) prune(k string, now time.Time) []time.Time {
	f := t.fails[k]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= t.window {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(t.fails, k)
		return nil
	}
	t.fails[k] = f
	return f
}
