package web_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"matrixas/internal/testserver"
)

// TestLoginThrottleCannotLockOutTheOwner is issue 13's reproduction: an attacker at one
// address fails the admin's password again and again; the owner at another address
// still signs in with the right password, and the attacker stays throttled.
func TestLoginThrottleCannotLockOutTheOwner(t *testing.T) {
	ts := testserver.New(t)
	attacker, owner := clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.1")
	wrong := url.Values{"username": {"staff"}, "password": {"not the password"}}

	// Well past the limit, as an attacker keeping the account locked would.
	statuses := map[int]int{}
	for range 12 {
		resp, _ := do(t, attacker, loginReq(t, ts, wrong, nil))
		statuses[resp.StatusCode]++
	}
	if statuses[http.StatusUnauthorized] != 5 || statuses[http.StatusTooManyRequests] != 7 {
		t.Errorf("attacker's 12 wrong passwords: %v, want 5 answered 401 and the rest 429", statuses)
	}

	// The owner, from an address that has not failed, gets in: a correct password from
	// there is never refused because of failures elsewhere.
	resp, _ := do(t, owner, loginReq(t, ts, staffForm, nil))
	if resp.StatusCode != http.StatusSeeOther || sessionCookieOf(resp) == nil {
		t.Fatalf("owner from 127.0.0.1 after the attack from 127.0.0.2: %d, want 303 with a session", resp.StatusCode)
	}
	// Even while the attack goes on.
	for range 3 {
		do(t, attacker, loginReq(t, ts, wrong, nil))
	}
	if resp, _ := do(t, owner, loginReq(t, ts, staffForm, nil)); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("owner during the attack: %d, want 303", resp.StatusCode)
	}
	// The attacker's address is throttled whatever it sends, the right password included,
	// so guessing stays limited to 5 tries per window there.
	if resp, _ := do(t, attacker, loginReq(t, ts, staffForm, nil)); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right password from the throttled address: %d, want 429", resp.StatusCode)
	}
}

// TestLoginThrottlePerUsernameAndAddress: below the address limit, failures for one
// username from one address count for that pair. A successful login from the address
// clears the address's count, but not another username's count there (so an insider who
// signs in to their own account between guesses gains nothing).
func TestLoginThrottlePerUsernameAndAddress(t *testing.T) {
	ts := testserver.New(t)
	c := clientFrom(t, "127.0.0.3")
	fail := func(username string) int {
		resp, _ := do(t, c, loginReq(t, ts, url.Values{"username": {username}, "password": {"wrong password"}}, nil))
		return resp.StatusCode
	}
	for i := range 4 {
		if code := fail("victim"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, code)
		}
	}
	// The address's own user signs in: the address count starts again.
	if resp, _ := do(t, c, loginReq(t, ts, staffForm, nil)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("staff login below the limit: %d", resp.StatusCode)
	}
	// One more failure for victim from here reaches the (victim, address) limit.
	if code := fail("victim"); code != http.StatusUnauthorized {
		t.Fatalf("5th failure: %d, want 401", code)
	}
	if code := fail("victim"); code != http.StatusTooManyRequests {
		t.Errorf("6th try for victim from the same address: %d, want 429 (the pair is over the limit)", code)
	}
	// Other usernames from the address are below the address limit (1 failure since the
	// successful login) and are not throttled.
	for i := range 3 {
		if code := fail("other" + strconv.Itoa(i)); code != http.StatusUnauthorized {
			t.Errorf("another username from the address: %d, want 401", code)
		}
	}
}
