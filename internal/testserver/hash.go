package testserver

import (
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// staffPasswordHash is StaffPassword hashed once per test binary at bcrypt's lowest cost.
// The server checks it with the same code as a production hash (the cost is read from
// the hash), but each check and each New costs microseconds instead of most of a second
// under the race detector, which keeps login-heavy tests fast on small machines.
var staffPasswordHash = sync.OnceValues(func() (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(StaffPassword), bcrypt.MinCost)
	return string(h), err
})
