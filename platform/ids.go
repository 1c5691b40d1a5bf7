package platform

import (
	"encoding/hex"
)

// uid is a uuid as 16 bytes: the comparison holds hundreds of thousands of them as map
// keys, and a 32-character string costs three times the memory.
type uid [16]byte

// parseUID reads 32 hex digits (the form waldur and db use).
func parseUID(s string) (uid, bool) {
	var u uid
	if len(s) != 32 {
		return u, false
	}
	if _, err := hex.Decode(u[:], []byte(s)); err != nil {
		return u, false
	}
	return u, true
}

// String is the 32-lowercase-hex form.
func (u uid) String() string { return hex.EncodeToString(u[:]) }

// isZero reports the zero uid (no customer).
func (u uid) isZero() bool { return u == uid{} }

// pair names a role: a scope (project or customer) and a user.
type pair struct{ scope, user uid }
