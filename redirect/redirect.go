// Package redirect validates redirect targets that come from a request (a login's
// "next", a form's way back), so that no request value can send a browser to another
// site.
//
// The check runs on the target in the form in which it is finally sent: http.Redirect
// cleans a path ("/a/../\evil" becomes "/\evil", which browsers read as //evil), so a
// check of the raw string proves nothing about the Location header. Local computes that
// final form first, checks it, and returns it; handlers pass the result to http.Redirect,
// which leaves it unchanged.
package redirect

import (
	"net/url"
	"path"
	"strings"
	"unicode/utf8"
)

// Local returns target as http.Redirect will send it when that is a path on this site,
// else fallback. A local path has one leading "/", no "//" and no "\" anywhere, no
// scheme or host, and no control characters, also once percent-decoded (up to three
// times, so "%252F" cannot smuggle a slash past a proxy that decodes once more). Both
// the target and its sent form must be local: cleaning may turn "///evil" into the
// harmless "/evil", but a target written like that is refused all the same.
func Local(target, fallback string) string {
	final, ok := sent(target)
	if !ok || !IsLocal(target) || !IsLocal(final) {
		return fallback
	}
	return final
}

// sent is what http.Redirect puts in the Location header for target, for the targets
// it rewrites (no scheme, no host): the path cleaned with its trailing slash kept, then
// the query, as net/http's Redirect does. Relative paths are refused rather than
// resolved: a local target starts with "/".
func sent(target string) (string, bool) {
	if !strings.HasPrefix(target, "/") || !utf8.ValidString(target) {
		return "", false
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "", false
	}
	p, query := target, ""
	if i := strings.Index(target, "?"); i != -1 {
		p, query = target[:i], target[i:]
	}
	trailing := strings.HasSuffix(p, "/")
	p = path.Clean(p)
	if trailing && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p + query, true
}

// IsLocal reports whether a Location value is a path on this site, whatever a browser
// does with it: browsers drop tabs and newlines from URLs, read "\" as "/", and resolve
// percent-encoded dots, so none of those may turn it into "//host".
func IsLocal(loc string) bool {
	if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.Contains(loc, `\`) || hasControl(loc) {
		return false
	}
	for _, r := range loc {
		if r > 0x7e { // http.Redirect would percent-encode it: refuse rather than guess
			return false
		}
	}
	p, _, _ := strings.Cut(loc, "?")
	p, _, _ = strings.Cut(p, "#")
	for range 3 {
		dec, err := url.PathUnescape(p)
		if err != nil || strings.Contains(dec, "//") || strings.Contains(dec, `\`) || hasControl(dec) {
			return false
		}
		if dec == p {
			break
		}
		p = dec
	}
	return true
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}
