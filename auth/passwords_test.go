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

// TestRehashUpgradesCheaperHashes: a hash made at a lower cost is replaced by a hash of
// the same password at the Passwords' cost; a hash at the same or a higher cost is not.
func TestRehashUpgradesCheaperHashes(t *testing.T) {
	low, high := NewPasswords(bcrypt.MinCost), NewPasswords(bcrypt.MinCost+1)
	old, err := low.Hash("an old password 1")
	if err != nil {
		t.Fatal(err)
	}
	upgraded, ok := high.Rehash(old, "an old password 1")
	if !ok {
		t.Fatal("Rehash of a cheaper hash: no new hash")
	}
	if c, _ := bcrypt.Cost([]byte(upgraded)); c != high.Cost() || !high.Check(upgraded, "an old password 1") {
		t.Errorf("upgraded hash: cost %d, matches %v", c, high.Check(upgraded, "an old password 1"))
	}
	if h, ok := high.Rehash(upgraded, "an old password 1"); ok || h != "" {
		t.Errorf("hash already at the cost: %q, %v; want no upgrade", h, ok)
	}
	if h, ok := low.Rehash(upgraded, "an old password 1"); ok || h != "" {
		t.Errorf("hash at a higher cost: %q, %v; want no downgrade", h, ok)
	}
	if h, ok := high.Rehash("", "an old password 1"); ok || h != "" {
		t.Errorf("no hash: %q, %v", h, ok)
	}
}
