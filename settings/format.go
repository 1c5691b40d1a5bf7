package settings

//lint:file-ignore ST1005 these errors are field messages shown to users as written

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Format is the kind of value a setting holds: how a value is cleaned, checked, and
// described when the environment gives a bad one.
type Format struct {
	// Want says what a value must be, for a start-up error: NAME: "x" is not <Want>
	// (for a secret, which is never echoed: NAME: must be <Want>).
	Want string
	// Check reports what is wrong with a cleaned, non-empty value, as a sentence for a
	// form or an API field; nil when it is fine.
	Check func(v string) error
	// Clean normalises a value before it is checked and stored; nil keeps it.
	Clean func(v string) string
}

// rule is a Format that refuses a value ok rejects with msg.
func rule(want, msg string, ok func(string) bool) *Format {
	return &Format{Want: want, Check: func(v string) error {
		if !ok(v) {
			return errors.New(msg)
		}
		return nil
	}}
}

// wants is a rule whose message only says what is wanted ("Enter <want>.").
func wants(want string, ok func(string) bool) *Format { return rule(want, "Enter "+want+".", ok) }

// HTTPURL is an absolute http(s) URL with a host and no credentials, query or fragment;
// a trailing slash is dropped.
var HTTPURL = &Format{
	Want:  "an absolute http(s) URL",
	Check: validHTTPURL,
	Clean: func(v string) string { return strings.TrimRight(v, "/") },
}

// validHTTPURL reports why s is not an absolute http(s) URL with a host, or nil.
func validHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("Enter a valid URL.")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("Enter an absolute http:// or https:// URL.")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("Enter a URL with a host name.")
	}
	if u.User != nil {
		return errors.New("Enter a URL without user name or password.")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("Enter a URL without query or fragment.")
	}
	return nil
}

// ServerName is a Matrix server name: a host name with an optional :port.
var ServerName = rule("a hostname with an optional :port",
	"Enter a host name such as matrix.example.org, optionally with :port.", validServerName)

// validServerName reports whether s is a Matrix server name: a hostname (letters,
// digits, dots and dashes) with an optional :port.
func validServerName(s string) bool {
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 || strings.HasPrefix(port, "+") {
			return false
		}
	}
	if host == "" || len(host) > 253 {
		return false
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// localpartRe is the Matrix user-id grammar, which keeps a regex such as ".*" from
// claiming the whole namespace as the bot's name.
var localpartRe = regexp.MustCompile(`^[a-z0-9._=\-/]+$`)

// Localpart is a Matrix user name (the bot's).
var Localpart = rule("a Matrix user name (lowercase letters, digits and . _ = - /)",
	"Use only lowercase letters, digits and . _ = - / (a Matrix user name, not a pattern).", validLocalpart)

// validLocalpart reports whether s may be the bot's localpart.
func validLocalpart(s string) bool { return len(s) <= 255 && localpartRe.MatchString(s) }

// maxSecretLen bounds a secret typed into a form or an API request.
const maxSecretLen = 1024

// SharedSecret is a secret shared with another system, at most 1024 characters.
var SharedSecret = rule(fmt.Sprintf("at most %d characters", maxSecretLen),
	fmt.Sprintf("Ensure this field has no more than %d characters.", maxSecretLen),
	func(v string) bool { return len(v) <= maxSecretLen })

// MinLength is a secret of at least n bytes (unit says how the limit is worded).
func MinLength(n int, unit string) *Format {
	return wants(fmt.Sprintf("at least %d %s", n, unit), func(v string) bool { return len(v) >= n })
}

// HostPort is a listen address, host:port.
var HostPort = wants("host:port", func(v string) bool {
	_, _, err := net.SplitHostPort(v)
	return err == nil
})

// Duration is a positive Go duration (500ms, 3s, 24h).
var Duration = wants("a positive duration such as 3s or 24h", func(v string) bool {
	d, err := time.ParseDuration(v)
	return err == nil && d > 0
})

// WholeNumber is an integer from min to max; max 0 means no upper bound.
func WholeNumber(min, max int64) *Format {
	want := fmt.Sprintf("a whole number from %d to %d", min, max)
	if max == 0 {
		want = fmt.Sprintf("a whole number of at least %d", min)
	}
	return wants(want, func(v string) bool {
		n, err := strconv.ParseInt(v, 10, 64)
		return err == nil && n >= min && (max == 0 || n <= max)
	})
}

// OneOf is one of the given words.
func OneOf(words ...string) *Format {
	want := strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
	return wants(want, func(v string) bool {
		for _, w := range words {
			if v == w {
				return true
			}
		}
		return false
	})
}

// SlogLevel is a slog level: debug, info, warn or error.
var SlogLevel = wants("debug, info, warn or error", func(v string) bool {
	var l slog.Level
	return l.UnmarshalText([]byte(v)) == nil
})

// Boolean is true or false (also 1/0, yes/no, on/off, in any case).
var Boolean = wants("true or false", func(v string) bool {
	_, ok := ParseBool(v)
	return ok
})

// ParseBool reads a Boolean value; ok is false when v is none of its words.
func ParseBool(v string) (b, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes", "on":
		return true, true
	case "false", "0", "no", "off":
		return false, true
	}
	return false, false
}

// Prefixes is a comma-separated list of IP addresses or CIDRs.
var Prefixes = wants("a comma-separated list of IP addresses or CIDRs", func(v string) bool {
	_, err := ParsePrefixes(v)
	return err == nil
})

// ParsePrefixes reads a Prefixes value; a lone address is a one-address prefix.
func ParsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not an IP address or CIDR", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// AtLeast is a duration of at least min, written as words says ("1m"): a sync period
// that would hammer a platform is refused.
func AtLeast(min time.Duration, words string) *Format {
	return wants("a duration of at least "+words+" such as 15m or 1h", func(v string) bool {
		d, err := time.ParseDuration(v)
		return err == nil && d >= min
	})
}

// APIToken is a token sent in an Authorization header: printable, without spaces.
var APIToken = wants("a token without spaces or control characters", func(v string) bool {
	for _, r := range v {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return v != ""
})
