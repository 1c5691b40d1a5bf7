package auth

import (
	"net/netip"
	"strings"
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

// LoginThrottle limits failed sign-ins per client address and per (username, client
// address) pair. There is deliberately no limit per username alone: it would let anyone
// lock the owner of a known username out from wherever they are (issue 13). A correct
// password from an address that has not failed is therefore never refused; an address
// that guesses is held to max failures per window, whatever usernames it tries.
type LoginThrottle struct {
	t *Throttle
}

// NewLoginThrottle allows max failed sign-ins per address, and per username from one
// address, within window.
func NewLoginThrottle(max int, window time.Duration) *LoginThrottle {
	return &LoginThrottle{t: NewThrottle(max, window)}
}

// Blocked reports whether a sign-in as username from addr is refused for now, and for
// how long.
func (l *LoginThrottle) Blocked(username, addr string) (bool, time.Duration) {
	return l.t.Blocked(l.keys(username, addr)...)
}

// Fail records a failed sign-in.
func (l *LoginThrottle) Fail(username, addr string) {
	l.t.Fail(l.keys(username, addr)...)
}

// Succeed records a successful sign-in: the address has shown it is not guessing, so
// its count starts again (people behind one NAT are not held to each other's typos),
// and so does this username's from there. Other usernames' counts from the address
// stay: someone who signs in to their own account between guesses at another gains
// nothing.
func (l *LoginThrottle) Succeed(username, addr string) {
	l.t.Reset(l.keys(username, addr)...)
}

// keys are the counters a sign-in touches: the address (an IPv6 address by its /64, the
// block one subscriber usually holds, so that rotating through it does not reset the
// count) and the (username, address) pair.
func (l *LoginThrottle) keys(username, addr string) []string {
	a := "addr:" + addressBlock(addr)
	return []string{a, "user:" + strings.ToLower(username) + "\x00" + a}
}

func addressBlock(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Unmap().Is6() {
		return addr
	}
	p, err := ip.Unmap().Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}
