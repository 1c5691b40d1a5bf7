// Package auth owns who is asking: password hashing, API token minting, the request's
// user in the context, and throttling of failed logins.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"

	"matrixas/db"
)

// RandomHex returns n random bytes as lowercase hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// NewAPIToken returns a new token (40 hex digits), its display prefix and its hash.
func NewAPIToken() (token, prefix, hash string) {
	token = RandomHex(20)
	return token, token[:6], HashToken(token)
}

// HashToken is how a token or session id is stored: SHA-256, hex. Lookups are by hash, so
// the secret itself is never compared byte by byte.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

type ctxKey int

const userKey ctxKey = iota

// WithUser returns ctx carrying the authenticated user.
func WithUser(ctx context.Context, u *db.User) context.Context {
	return context.WithValue(ctx, userKey, u)
}

// UserFrom returns the authenticated user, or nil for an anonymous request.
func UserFrom(ctx context.Context) *db.User {
	u, _ := ctx.Value(userKey).(*db.User)
	return u
}

// StaffFrom returns the authenticated user when it is active staff, else nil.
func StaffFrom(ctx context.Context) *db.User {
	if u := UserFrom(ctx); u != nil && u.IsStaff && u.IsActive {
		return u
	}
	return nil
}

// HidesStaffAccounts reports whether the request's caller may not see staff accounts in
// the directory API: everyone but active staff. Staff accounts are this server's
// operators; a platform token has no business listing who they are.
func HidesStaffAccounts(ctx context.Context) bool {
	return StaffFrom(ctx) == nil
}
