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
