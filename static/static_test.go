package static

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
)

// htmxVersion is the vendored htmx release; keep in sync with VENDORED.md.
const htmxVersion = "2.0.11"

const immutable = "public, max-age=31536000, immutable"

// mounted returns the handler the way the router mounts it.
func mounted() http.Handler {
	return http.StripPrefix("/static", Handler())
}

func get(t *testing.T, h http.Handler, method, target string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var testAssets = []struct {
	name        string
	contentType string
	pattern     string // regexp for Path(name)
	contains    string // a string the body must contain
}{
	{"app.css", "text/css; charset=utf-8", `^/static/app\.[0-9a-f]{10}\.css$`, ".btn-primary"},
	{"app.js", "text/javascript; charset=utf-8", `^/static/app\.[0-9a-f]{10}\.js$`, "data-copy-target"},
	{"htmx.min.js", "text/javascript; charset=utf-8", `^/static/htmx\.min\.[0-9a-f]{10}\.js$`, `version:"` + htmxVersion + `"`},
	{"favicon.svg", "image/svg+xml", `^/static/favicon\.[0-9a-f]{10}\.svg$`, "<svg"},
}

func TestPathAndServeHashed(t *testing.T) {
	h := mounted()
	for _, tc := range testAssets {
		t.Run(tc.name, func(t *testing.T) {
			p := Path(tc.name)
			if !regexp.MustCompile(tc.pattern).MatchString(p) {
				t.Fatalf("Path(%q) = %q, want match %s", tc.name, p, tc.pattern)
			}
			disk, err := os.ReadFile(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(disk)
			if want := hex.EncodeToString(sum[:])[:10]; !strings.Contains(p, "."+want+".") {
				t.Errorf("Path(%q) = %q, want hash %s", tc.name, p, want)
			}
			if p2 := Path(tc.name); p2 != p {
				t.Errorf("Path not stable: %q then %q", p, p2)
			}

			rec := get(t, h, http.MethodGet, p, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: status %d", p, rec.Code)
			}
			if got := rec.Header().Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tc.contentType)
			}
			if got := rec.Header().Get("Cache-Control"); got != immutable {
				t.Errorf("Cache-Control = %q, want %q", got, immutable)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
			if rec.Header().Get("ETag") == "" {
				t.Error("missing ETag")
			}
			body, _ := io.ReadAll(rec.Body)
			if string(body) != string(disk) {
				t.Errorf("body differs from %s on disk (%d vs %d bytes)", tc.name, len(body), len(disk))
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("body of %s does not contain %q", tc.name, tc.contains)
			}
		})
	}
}

func TestServePlainName(t *testing.T) {
	h := mounted()
	for _, tc := range testAssets {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, h, http.MethodGet, "/static/"+tc.name, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
			if got := rec.Header().Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tc.contentType)
			}
			if !strings.Contains(rec.Body.String(), tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	h := mounted()
	wrongHash := strings.Replace(Path("app.css"), "app.", "app.0", 1)
	for _, target := range []string{
		"/static/",
		"/static/nope.css",
		"/static/app.0000000000.css",
		wrongHash,
		"/static/static.go",
		"/static/VENDORED.md",
		"/static/htmx.LICENSE",
		"/static/app.css/",
		"/static/../static.go",
		"/static/./app.css",
	} {
		t.Run(target, func(t *testing.T) {
			rec := get(t, h, http.MethodGet, target, nil)
			if rec.Code != http.StatusNotFound {
				t.Errorf("GET %s: status %d, want 404", target, rec.Code)
			}
			if cc := rec.Header().Get("Cache-Control"); strings.Contains(cc, "immutable") {
				t.Errorf("404 must not be cached forever: %q", cc)
			}
		})
	}
}

func TestIfNoneMatch(t *testing.T) {
	h := mounted()
	for _, tc := range testAssets {
		for _, target := range []string{Path(tc.name), "/static/" + tc.name} {
			t.Run(target, func(t *testing.T) {
				first := get(t, h, http.MethodGet, target, nil)
				etag := first.Header().Get("ETag")
				if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 3 {
					t.Fatalf("ETag %q is not a quoted strong tag", etag)
				}
				rec := get(t, h, http.MethodGet, target, map[string]string{"If-None-Match": etag})
				if rec.Code != http.StatusNotModified {
					t.Fatalf("status %d, want 304", rec.Code)
				}
				if rec.Body.Len() != 0 {
					t.Errorf("304 with %d-byte body", rec.Body.Len())
				}
				rec = get(t, h, http.MethodGet, target, map[string]string{"If-None-Match": `"other"`})
				if rec.Code != http.StatusOK {
					t.Errorf("non-matching If-None-Match: status %d, want 200", rec.Code)
				}
			})
		}
	}
	// ETags differ between files.
	seen := map[string]string{}
	for _, tc := range testAssets {
		etag := get(t, h, http.MethodGet, Path(tc.name), nil).Header().Get("ETag")
		if other, ok := seen[etag]; ok {
			t.Errorf("%s and %s share ETag %s", tc.name, other, etag)
		}
		seen[etag] = tc.name
	}
}

func TestMethods(t *testing.T) {
	h := mounted()
	p := Path("app.css")
	rec := get(t, h, http.MethodHead, p, nil)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: status %d, body %d bytes", rec.Code, rec.Body.Len())
	}
	if rec.Header().Get("Cache-Control") != immutable {
		t.Errorf("HEAD: Cache-Control %q", rec.Header().Get("Cache-Control"))
	}
	rec = get(t, h, http.MethodPost, p, nil)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", rec.Code)
	}
	if rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: Allow %q", rec.Header().Get("Allow"))
	}
}

func TestHandlerWithoutStripPrefix(t *testing.T) {
	// Handler itself sees paths with the /static prefix already removed.
	h := Handler()
	rec := get(t, h, http.MethodGet, strings.TrimPrefix(Path("app.js"), "/static"), nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if rec.Header().Get("Cache-Control") != immutable {
		t.Errorf("Cache-Control %q", rec.Header().Get("Cache-Control"))
	}
}

func TestPathUnknownPanics(t *testing.T) {
	for _, name := range []string{"", "nope.css", "static.go", "app.0123456789.css", "/app.css"} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Path(%q) did not panic", name)
				}
			}()
			Path(name)
		})
	}
}

func TestHashedName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"app.css", "app.abc.css"},
		{"htmx.min.js", "htmx.min.abc.js"},
		{"favicon.svg", "favicon.abc.svg"},
		{"LICENSE", "LICENSE.abc"},
	} {
		if got := hashedName(tc.in, "abc"); got != tc.want {
			t.Errorf("hashedName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestVendoredDocs(t *testing.T) {
	doc, err := os.ReadFile("VENDORED.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"htmx.org", htmxVersion, "htmx.min.js", "0BSD", "htmx.LICENSE"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("VENDORED.md does not mention %q", want)
		}
	}
	lic, err := os.ReadFile("htmx.LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(lic), "Zero-Clause BSD") {
		t.Error("htmx.LICENSE is not the 0BSD text")
	}
	// VENDORED.md records the checksum of the vendored file.
	js, err := os.ReadFile("htmx.min.js")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(js)
	if !strings.Contains(string(doc), hex.EncodeToString(sum[:])) {
		t.Error("VENDORED.md does not record the SHA-256 of htmx.min.js")
	}
}

func TestNoExternalURLs(t *testing.T) {
	// No CDN or external fonts in our own assets.
	for _, name := range []string{"app.css", "app.js"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"http://", "https://", "@import", "url("} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}
