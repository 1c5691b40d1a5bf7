// Package matrix is this server's side of the Matrix appservice API: validation of
// homeserver settings, the registration file, and the client calls to the homeserver.
package matrix

//lint:file-ignore ST1005 these errors are field messages shown to users as written

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// ValidHTTPURL reports why s is not an absolute http(s) URL with a host, or nil.
func ValidHTTPURL(s string) error {
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

// ValidDomain reports whether s is a Matrix server name: a hostname (letters, digits,
// dots and dashes) with an optional :port.
func ValidDomain(s string) bool {
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
