package auth

import (
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// PasswordCost is the bcrypt cost of every new password hash: about 250 ms on one core
// of the machines this runs on, which is what the usual frameworks pick today (the
// library's default, 10, is four times cheaper to guess against).
const PasswordCost = 12

// MinPasswordLength is the shortest password accepted for a staff user.
const MinPasswordLength = 10

// maxPasswordBytes is bcrypt's limit: it ignores what comes after.
const maxPasswordBytes = 72

// ErrWeakPassword is returned for a password shorter than MinPasswordLength.
var ErrWeakPassword = &PasswordError{Reason: "Use at least 10 characters."}

// errLongPassword is returned for a password bcrypt would cut short.
var errLongPassword = &PasswordError{Reason: "Use at most 72 bytes (a longer password would be cut short)."}

// dummyHash12 is a hash of a random, forgotten password at PasswordCost: checking an
// unknown username against it costs what checking a real one costs.
const dummyHash12 = "$2a$12$syimpLbwi6kWqHsyQkJjlu5gb7bOLPo49FgJn3mjnSEqGCRMR0OU2"

// Passwords hashes and checks staff passwords at one bcrypt cost. The server uses
// PasswordCost; tests give a lower cost so that a suite that signs in hundreds of times
// under the race detector (where one cost-12 hash takes seconds) stays fast. A hash is
// checked at the cost written in it, whatever the Passwords' own cost.
type Passwords struct {
	cost  int
	dummy func() []byte
}

// NewPasswords returns a Passwords hashing at cost (0 = PasswordCost).
func NewPasswords(cost int) *Passwords {
	if cost == 0 {
		cost = PasswordCost
	}
	p := &Passwords{cost: cost}
	if cost == PasswordCost {
		p.dummy = func() []byte { return []byte(dummyHash12) }
	} else {
		p.dummy = sync.OnceValue(func() []byte {
			h, err := bcrypt.GenerateFromPassword([]byte(RandomHex(16)), cost)
			if err != nil {
				panic(err) // only an out-of-range cost fails, and NewPasswords's callers pass constants
			}
			return h
		})
	}
	return p
}

// Cost is the bcrypt cost of the hashes p makes.
func (p *Passwords) Cost() int { return p.cost }

// Hash returns a bcrypt hash of password. It refuses what bcrypt cannot hash faithfully
// and a password shorter than MinPasswordLength; the rest of the policy (common
// passwords, the username) is CheckPasswordPolicy's, which callers run first.
func (p *Passwords) Hash(password string) (string, error) {
	if len(password) < MinPasswordLength {
		return "", ErrWeakPassword
	}
	return p.hash(password)
}

func (p *Passwords) hash(password string) (string, error) {
	if len(password) > maxPasswordBytes {
		return "", errLongPassword
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), p.cost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// Check reports whether password matches hash. An empty hash (no such user) never
// matches but costs the same time as a real check.
func (p *Passwords) Check(hash, password string) bool {
	if hash == "" {
		bcrypt.CompareHashAndPassword(p.dummy(), []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// Rehash returns a new hash of password at p's cost when hash was made at a lower cost,
// for the caller to store: hashes from before the cost went up are upgraded at the next
// successful sign-in, the one moment the password is known. Call it only once Check has
// accepted password for hash. ok is false when nothing is to change (or the new hash
// could not be made: the old one keeps working, and a later sign-in tries again).
func (p *Passwords) Rehash(hash, password string) (newHash string, ok bool) {
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost >= p.cost {
		return "", false
	}
	h, err := p.hash(password)
	if err != nil {
		return "", false
	}
	return h, true
}

// HashPassword returns a bcrypt hash of password at PasswordCost (see Passwords.Hash).
func HashPassword(password string) (string, error) {
	return NewPasswords(PasswordCost).Hash(password)
}

// CheckPassword reports whether password matches hash; an empty hash never matches but
// costs the same time as a real check at PasswordCost.
func CheckPassword(hash, password string) bool {
	return NewPasswords(PasswordCost).Check(hash, password)
}
