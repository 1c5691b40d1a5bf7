package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestCheckPasswordPolicy(t *testing.T) {
	tests := []struct {
		username, password string
		want               error
	}{
		{"alice", "correct-horse-battery-9", nil},
		{"alice", "Tr0ub4dor & three", nil},
		{"", "a long enough password", nil},
		{"alice", "short", ErrWeakPassword},
		{"alice", "ñññññññññ", ErrWeakPassword}, // 9 characters, 18 bytes
		{"alice", strings.Repeat("x", 73), errLongPassword},
		{"bob", "1234567890", errNumericPassword}, // digits only, and common: the first rule says it
		{"alice", "password1234", errCommonPassword},
		{"alice", "PASSWORD1234", errCommonPassword},
		{"alice", "  password1234  ", errCommonPassword},
		{"alice", "qwertyuiop", errCommonPassword},
		{"alice", "12345678901234", errNumericPassword},
		{"alice", "١٢٣٤٥٦٧٨٩٠١", errNumericPassword}, // Arabic-Indic digits are digits too
		{"alice", "alice-in-wonderland", errUsernameInside},
		{"alice", "I am ALICE, hello", errUsernameInside},
		{"Alice", "wonderalice2024", errUsernameInside},
	}
	for _, tt := range tests {
		err := CheckPasswordPolicy(tt.username, tt.password)
		if !errors.Is(err, tt.want) {
			t.Errorf("CheckPasswordPolicy(%q, %q) = %v, want %v", tt.username, tt.password, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), tt.password) {
			t.Errorf("the message repeats the password: %v", err)
		}
	}
}

// TestCommonPasswordList checks the embedded list is the one COMMON-PASSWORDS.md
// describes: at least the 10,000 most common passwords, lowercased.
func TestCommonPasswordList(t *testing.T) {
	sum := sha256.Sum256(commonPasswordsGz)
	if got := hex.EncodeToString(sum[:]); got != "a73d3d14f1e9ee570a18232dc1edfd129dc9c0da4315da2b69ad6d92914a6fe6" {
		t.Errorf("common-passwords.txt.gz SHA-256 %s: not the file COMMON-PASSWORDS.md records (update both)", got)
	}
	set := commonPasswords()
	if len(set) < 10_000 {
		t.Errorf("%d common passwords, want at least 10,000", len(set))
	}
	for _, pw := range []string{"123456", "password", "iloveyou", "qwerty"} {
		if !isCommonPassword(pw) {
			t.Errorf("%q is not in the list", pw)
		}
	}
	for w := range set {
		if w != strings.ToLower(w) {
			t.Fatalf("%q is not lowercased: the comparison lowercases the password", w)
		}
	}
}
