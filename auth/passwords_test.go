package auth

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestPasswordCost: new hashes are made at cost 12 in production, and the dummy hash an
// unknown username is checked against costs the same. (No cost-12 hash is made here:
// under the race detector one takes seconds; main's createstaff test makes one.)
func TestPasswordCost(t *testing.T) {
	if PasswordCost != 12 || NewPasswords(0).Cost() != 12 {
		t.Fatalf("PasswordCost %d, NewPasswords(0) cost %d, want 12", PasswordCost, NewPasswords(0).Cost())
	}
	if c, err := bcrypt.Cost([]byte(dummyHash12)); err != nil || c != PasswordCost {
		t.Errorf("dummy hash cost %d (%v), want %d", c, err, PasswordCost)
	}
	p := NewPasswords(bcrypt.MinCost + 1)
	if c, _ := bcrypt.Cost(p.dummy()); c != p.Cost() {
		t.Errorf("dummy hash at cost %d for Passwords of cost %d", c, p.Cost())
	}
}

// TestVerifyUpgradesCheaperHashes: a matching hash made at a lower cost comes back with
// a new hash at the Passwords' cost; a wrong password, or a hash at the same or a higher
// cost, does not.
func TestVerifyUpgradesCheaperHashes(t *testing.T) {
	low, high := NewPasswords(bcrypt.MinCost), NewPasswords(bcrypt.MinCost+1)
	old, err := low.Hash("an old password 1")
	if err != nil {
		t.Fatal(err)
	}
	ok, upgraded := high.Verify(old, "an old password 1")
	if !ok || upgraded == "" {
		t.Fatalf("Verify = %v, %q; want a match and an upgraded hash", ok, upgraded)
	}
	if c, _ := bcrypt.Cost([]byte(upgraded)); c != high.Cost() || !high.Check(upgraded, "an old password 1") {
		t.Errorf("upgraded hash: cost %d, matches %v", c, high.Check(upgraded, "an old password 1"))
	}
	if ok, upgraded := high.Verify(old, "not the password"); ok || upgraded != "" {
		t.Errorf("wrong password: %v, %q", ok, upgraded)
	}
	if ok, upgraded := high.Verify(upgraded, "an old password 1"); !ok || upgraded != "" {
		t.Errorf("hash already at the cost: %v, %q; want no upgrade", ok, upgraded)
	}
	if ok, upgraded := low.Verify(upgraded, "an old password 1"); !ok || upgraded != "" {
		t.Errorf("hash at a higher cost: %v, %q; want no downgrade", ok, upgraded)
	}
	if ok, upgraded := high.Verify("", "an old password 1"); ok || upgraded != "" {
		t.Errorf("no hash: %v, %q", ok, upgraded)
	}
}
