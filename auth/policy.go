package auth

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// PasswordError says why a password is refused, in a sentence fit for a form field and
// for the command line. It never contains the password.
type PasswordError struct {
	Reason string
}

func (e *PasswordError) Error() string { return e.Reason }

var (
	errCommonPassword  = &PasswordError{Reason: "This password is too common: it is on a list of 20,000 passwords that attackers try first. Choose another."}
	errNumericPassword = &PasswordError{Reason: "Use more than digits: a password of digits only is guessed quickly."}
	errUsernameInside  = &PasswordError{Reason: "The password must not contain the username."}
)

// CheckPasswordPolicy returns why password may not be the password of the staff user
// username, or nil. A password must have 10 characters to 72 bytes, not be one of the
// common passwords (compared without regard to case or surrounding spaces, as Django
// does), not be digits only, and not contain the username in any case. Existing
// passwords are not re-checked: the policy applies when a password is set.
func CheckPasswordPolicy(username, password string) error {
	switch {
	case utf8.RuneCountInString(password) < MinPasswordLength:
		return ErrWeakPassword
	case len(password) > maxPasswordBytes:
		return errLongPassword
	case username != "" && strings.Contains(strings.ToLower(password), strings.ToLower(username)):
		return errUsernameInside
	case isDigits(password):
		return errNumericPassword
	case isCommonPassword(password):
		return errCommonPassword
	}
	return nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return s != ""
}

// commonPasswordsGz is Django's list of common passwords; see COMMON-PASSWORDS.md for
// where it comes from and its licence.
//
//go:embed common-passwords.txt.gz
var commonPasswordsGz []byte

// commonPasswords is the list as a set, read once, on the first password set (a few
// milliseconds, about a megabyte).
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	zr, err := gzip.NewReader(bytes.NewReader(commonPasswordsGz))
	if err != nil {
		panic("auth: embedded common-passwords.txt.gz: " + err.Error()) // a broken build, not a runtime condition
	}
	set := make(map[string]struct{}, 20_000)
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" {
			set[w] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		panic("auth: embedded common-passwords.txt.gz: " + err.Error())
	}
	return set
})

func isCommonPassword(password string) bool {
	_, ok := commonPasswords()[strings.ToLower(strings.TrimSpace(password))]
	return ok
}
