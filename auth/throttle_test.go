package auth

import (
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := NewThrottle(3, 10*time.Minute)
	th.now = func() time.Time { return now }

	for i := range 3 {
		if blocked, _ := th.Blocked("user:a", "addr:1"); blocked {
			t.Fatalf("blocked after %d failures, limit is 3", i)
		}
		th.Fail("user:a", "addr:1")
		now = now.Add(time.Minute)
	}
	blocked, wait := th.Blocked("user:a")
	if !blocked || wait != 7*time.Minute {
		t.Fatalf("after 3 failures: blocked %v for %s, want 7m (the first failure's window)", blocked, wait)
	}
	if blocked, _ := th.Blocked("user:b", "addr:1"); !blocked {
		t.Error("the address is over the limit too, whatever the username")
	}
	if blocked, _ := th.Blocked("user:b", "addr:2"); blocked {
		t.Error("another user from another address is blocked")
	}
	now = now.Add(7 * time.Minute) // the first failure leaves the window
	if blocked, _ := th.Blocked("user:a"); blocked {
		t.Error("still blocked once a failure left the window")
	}
	th.Fail("user:a")
	if blocked, _ := th.Blocked("user:a"); !blocked {
		t.Error("three failures within the window again, but not blocked")
	}
	th.Reset("user:a")
	if blocked, _ := th.Blocked("user:a"); blocked {
		t.Error("blocked after a reset (a successful login)")
	}
}

func TestPasswordHashing(t *testing.T) {
	if _, err := HashPassword("short"); err != ErrWeakPassword {
		t.Errorf("short password: %v", err)
	}
	h, err := HashPassword("a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPassword(h, "a long enough password") || CheckPassword(h, "a long enough passworD") || CheckPassword("", "") {
		t.Error("CheckPassword accepts a wrong password or an empty hash")
	}
	tok, prefix, hash := NewAPIToken()
	if len(tok) != 40 || prefix != tok[:6] || hash != HashToken(tok) || hash == tok {
		t.Errorf("token %q prefix %q hash %q", tok, prefix, hash)
	}
}

// TestLoginThrottle: the address and the (username, address) pair are limited; a
// username alone is not, so failures elsewhere never refuse a fresh address.
func TestLoginThrottle(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := NewLoginThrottle(3, 10*time.Minute)
	l.t.now = func() time.Time { return now }

	for range 3 {
		l.Fail("admin", "192.0.2.1")
	}
	if blocked, wait := l.Blocked("admin", "192.0.2.1"); !blocked || wait != 10*time.Minute {
		t.Errorf("the failing address: blocked %v for %s, want 10m", blocked, wait)
	}
	if blocked, _ := l.Blocked("someone", "192.0.2.1"); !blocked {
		t.Error("the failing address is over its limit for any username")
	}
	if blocked, _ := l.Blocked("admin", "192.0.2.2"); blocked {
		t.Error("admin from another address is blocked: a username alone must never be")
	}
	if blocked, _ := l.Blocked("ADMIN", "192.0.2.1"); !blocked {
		t.Error("the username's case gets around the pair's limit")
	}

	// IPv6: one /64 is one address, so hopping through it does not reset the count.
	for i := range 3 {
		l.Fail("admin", "2001:db8:1:2::"+string(rune('a'+i)))
	}
	if blocked, _ := l.Blocked("admin", "2001:db8:1:2:ffff::1"); !blocked {
		t.Error("another address of the same /64 is not blocked")
	}
	if blocked, _ := l.Blocked("admin", "2001:db8:1:3::1"); blocked {
		t.Error("the next /64 is blocked")
	}

	// A success resets the address and this username's count there, not another's.
	l2 := NewLoginThrottle(3, 10*time.Minute)
	l2.Fail("victim", "192.0.2.9")
	l2.Fail("victim", "192.0.2.9")
	l2.Fail("me", "192.0.2.9")
	l2.Succeed("me", "192.0.2.9")
	if blocked, _ := l2.Blocked("me", "192.0.2.9"); blocked {
		t.Error("blocked after a successful login")
	}
	l2.Fail("victim", "192.0.2.9")
	if blocked, _ := l2.Blocked("victim", "192.0.2.9"); !blocked {
		t.Error("victim's count from the address was reset by another user's success")
	}
}
