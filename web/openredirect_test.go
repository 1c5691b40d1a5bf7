package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"matrixas/internal/testserver"
)

// hostileNext are redirect targets a request may carry that must never leave the site,
// as the raw value of the form or query field (the test encodes them). Each is refused
// as a whole: the handler falls back to its own default.
var hostileNext = []string{
	// Reported: http.Redirect cleans the path after the check, into "/\evil.example",
	// which browsers read as //evil.example.
	`/a/../\evil.example`,
	`/./\evil.example`,
	`/../\evil.example`,
	`/a/b/../../\evil.example`,
	`/a/..//\evil.example`,
	// Scheme-relative and absolute.
	"//evil.example",
	"///evil.example",
	"//evil.example/path",
	"https://evil.example",
	"http:evil.example",
	"https:/\\evil.example",
	"javascript:alert(1)",
	"evil.example",
	"%2F%2Fevil.example",
	// Backslashes, raw and encoded.
	`/\evil.example`,
	`\\evil.example`,
	`/\/evil.example`,
	"/%5Cevil.example",
	"/%5C%5Cevil.example",
	`/x/..\..\evil.example`,
	// Encoded and doubly encoded slashes.
	"/%2F%2Fevil.example",
	"/%2f/evil.example",
	"/%252F%252Fevil.example",
	// Control characters, which browsers strip from URLs ("/\t/evil" is //evil to them).
	"/\t/evil.example",
	"/\n/evil.example",
	"/\r\n/evil.example",
	"/%09/evil.example",
	"/%0A/evil.example",
	"/\x00/evil.example",
	"/\x7f/evil.example",
	// Leading space, and tab between the slashes.
	" //evil.example",
	"/\t\t/evil.example",
}

// localNext are targets that are paths on this site, with what the redirect sends.
var localNext = []struct{ next, want string }{
	{"/rooms?state=error", "/rooms?state=error"},
	{"/transactions", "/transactions"},
	{"/a/../rooms", "/rooms"},
	{"/rooms/?x=//evil.example", "/rooms/?x=//evil.example"}, // a query is not a host
}

// isLocalLocation is the contract for a Location header built from a request value: a
// path on this site, whatever a browser does with it (strips tabs and newlines, reads
// "\" as "/", decodes once more for its own path handling).
func isLocalLocation(loc string) bool {
	if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.ContainsAny(loc, "\\") {
		return false
	}
	for _, c := range loc {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	path, _, _ := strings.Cut(loc, "?")
	for range 3 {
		dec, err := url.PathUnescape(path)
		if err != nil {
			return false
		}
		if strings.Contains(dec, "//") || strings.Contains(dec, `\`) || strings.ContainsFunc(dec, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			return false
		}
		path = dec
	}
	return true
}

// TestRedirectTargetsStayLocal sends every hostile target to every handler that
// redirects to a value taken from the request, through the real router: each must
// answer 303 to its own default, never to the value.
func TestRedirectTargetsStayLocal(t *testing.T) {
	if len(hostileNext) < 20 {
		t.Fatalf("%d hostile variants, the contract asks for at least 20", len(hostileNext))
	}
	ts := testserver.New(t)
	var project, room struct{ UUID string }
	if code := ts.JSON(t, http.MethodPost, "/api/projects/", ts.StaffToken, map[string]any{"name": "Redirects"}, &project); code != http.StatusCreated {
		t.Fatalf("create project: %d", code)
	}
	if code := ts.JSON(t, http.MethodPost, "/api/matrix-rooms/", ts.StaffToken, map[string]any{"project": project.UUID}, &room); code != http.StatusCreated {
		t.Fatalf("create room: %d", code)
	}
	staff := ts.SessionCookie(t, ts.Staff)

	// Each handler that redirects to a request value, and the default it falls back to.
	type handler struct {
		name     string
		fallback string
		send     func(t *testing.T, next string) *http.Response
	}
	formPost := func(path string, extra url.Values, cookie *http.Cookie) func(t *testing.T, next string) *http.Response {
		return func(t *testing.T, next string) *http.Response {
			form := url.Values{"next": {next}}
			for k, v := range extra {
				form[k] = v
			}
			req := newReq(t, ts, http.MethodPost, path, strings.NewReader(form.Encode()), cookie)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", ts.URL)
			resp, _ := do(t, plainClient, req)
			return resp
		}
	}
	handlers := []handler{
		{"GET /login, signed in", "/", func(t *testing.T, next string) *http.Response {
			resp, _ := do(t, plainClient, newReq(t, ts, http.MethodGet, "/login?next="+url.QueryEscape(next), nil, staff))
			return resp
		}},
		{"POST /login", "/", formPost("/login", url.Values{"username": {"staff"}, "password": {testserver.StaffPassword}}, nil)},
		{"POST /rooms/{uuid}/retry", "/rooms/" + room.UUID, formPost("/rooms/"+room.UUID+"/retry", nil, staff)},
		{"POST /rooms/{uuid}/disable", "/rooms/" + room.UUID, formPost("/rooms/"+room.UUID+"/disable", nil, staff)},
		{"POST /rooms/{uuid}/reactivate", "/rooms/" + room.UUID, formPost("/rooms/"+room.UUID+"/reactivate", nil, staff)},
		{"POST /rooms/{uuid}/sync-members", "/rooms/" + room.UUID, formPost("/rooms/"+room.UUID+"/sync-members", nil, staff)},
		{"POST /rooms/{uuid}/join", "/rooms/" + room.UUID, formPost("/rooms/"+room.UUID+"/join", nil, staff)},
		{"POST /rooms/{uuid}/leave", "/rooms/" + room.UUID, formPost("/rooms/"+room.UUID+"/leave", nil, staff)},
		{"POST /rooms/{uuid}/delete", "/rooms", func(t *testing.T, next string) *http.Response {
			// Each delete needs a room of its own: the first one deletes it.
			var p, r struct{ UUID string }
			ts.JSON(t, http.MethodPost, "/api/projects/", ts.StaffToken, map[string]any{"name": "Deleted"}, &p)
			ts.JSON(t, http.MethodPost, "/api/matrix-rooms/", ts.StaffToken, map[string]any{"project": p.UUID}, &r)
			return formPost("/rooms/"+r.UUID+"/delete", nil, staff)(t, next)
		}},
	}
	for _, h := range handlers {
		t.Run(h.name, func(t *testing.T) {
			for _, next := range hostileNext {
				resp := h.send(t, next)
				loc := resp.Header.Get("Location")
				if resp.StatusCode != http.StatusSeeOther || loc != h.fallback {
					t.Errorf("next=%q: %d to %q, want 303 to %q", next, resp.StatusCode, loc, h.fallback)
				}
				if loc != "" && !isLocalLocation(loc) {
					t.Errorf("next=%q: Location %q leaves the site", next, loc)
				}
			}
			for _, tt := range localNext {
				resp := h.send(t, tt.next)
				if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != tt.want {
					t.Errorf("next=%q: %d to %q, want 303 to %q", tt.next, resp.StatusCode, loc, tt.want)
				}
			}
		})
	}

	// The login form carries next through a hidden field: only a local path gets there.
	for _, next := range hostileNext {
		resp, body := do(t, plainClient, newReq(t, ts, http.MethodGet, "/login?next="+url.QueryEscape(next), nil, nil))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /login: %d", resp.StatusCode)
		}
		if strings.Contains(string(body), "evil.example") {
			t.Errorf("next=%q: the login form carries it", next)
		}
	}
}

// TestLocationContract checks the test's own yardstick, so a lenient isLocalLocation
// cannot hide a hostile Location.
func TestLocationContract(t *testing.T) {
	for _, next := range hostileNext {
		if strings.HasPrefix(next, "/") && !strings.Contains(next, "..") && isLocalLocation(next) {
			t.Errorf("isLocalLocation(%q) = true for a hostile target", next)
		}
	}
	for _, tt := range localNext {
		if !isLocalLocation(tt.want) {
			t.Errorf("isLocalLocation(%q) = false for a local path", tt.want)
		}
	}
}
