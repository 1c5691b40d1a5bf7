// Package static holds the dashboard's CSS, JavaScript and images, embedded in the binary.
//
// Files are served under content-hashed names so that they can be cached
// forever: templates link to them with [Path], and the router mounts
// [Handler] under /static/:
//
//	mux.Handle("/static/", http.StripPrefix("/static", static.Handler()))
//
//	<link rel="stylesheet" href={ static.Path("app.css") }>
//	<script src={ static.Path("htmx.min.js") } defer></script>
//	<script src={ static.Path("app.js") } defer></script>
//	<link rel="icon" href={ static.Path("favicon.svg") } type="image/svg+xml">
//
// The available names are app.css, app.js, htmx.min.js (vendored, see
// VENDORED.md) and favicon.svg.
package static

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// prefix is the URL path under which Handler is mounted.
const prefix = "/static/"

// hashLen is the number of hex digits of the SHA-256 used in file names.
const hashLen = 10

//go:embed app.css app.js htmx.min.js favicon.svg
var files embed.FS

// contentTypes maps file extensions to the Content-Type sent for them.
// Extensions missing here are served as application/octet-stream.
var contentTypes = map[string]string{
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".txt":  "text/plain; charset=utf-8",
	".map":  "application/json",
	".webp": "image/webp",
}

// asset is one embedded file with its precomputed metadata.
type asset struct {
	name        string // plain name, e.g. "app.css"
	hashedName  string // e.g. "app.0123456789.css"
	data        []byte
	etag        string // strong ETag, quoted
	contentType string
}

// assetTable indexes the embedded files by plain and hashed name.
type assetTable struct {
	byName   map[string]*asset
	byHashed map[string]*asset
}

// table builds the asset table once, on first use.
var table = sync.OnceValue(func() *assetTable {
	t := &assetTable{
		byName:   make(map[string]*asset),
		byHashed: make(map[string]*asset),
	}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		full := hex.EncodeToString(sum[:])
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			ct = "application/octet-stream"
		}
		a := &asset{
			name:        name,
			hashedName:  hashedName(name, full[:hashLen]),
			data:        data,
			etag:        `"` + full[:32] + `"`,
			contentType: ct,
		}
		t.byName[a.name] = a
		t.byHashed[a.hashedName] = a
		return nil
	})
	if err != nil {
		// The files are embedded at compile time; reading them cannot fail.
		panic("static: reading embedded files: " + err.Error())
	}
	return t
})

// hashedName inserts hash before the last extension: ("app.css", "abc") ->
// "app.abc.css", ("htmx.min.js", "abc") -> "htmx.min.abc.js".
func hashedName(name, hash string) string {
	ext := path.Ext(name)
	return strings.TrimSuffix(name, ext) + "." + hash + ext
}

// Path returns the cache-busting URL for an embedded file:
// Path("app.css") == "/static/app.<first 10 hex of sha256>.css".
// It panics for an unknown name (a programming error caught by tests).
func Path(name string) string {
	a, ok := table().byName[name]
	if !ok {
		panic("static: unknown file " + name)
	}
	return prefix + a.hashedName
}

// Handler serves the embedded files.
//
// It expects the request path with the /static prefix already stripped, so
// mount it as
//
//	http.StripPrefix("/static", static.Handler())
//
// A request for a hashed name (as returned by [Path], e.g. /app.0123456789.css)
// is answered with "Cache-Control: public, max-age=31536000, immutable"; the
// plain name (/app.css) is also served, with "Cache-Control: no-cache". Any
// other path gets 404, and methods other than GET and HEAD get 405.
// Responses carry the right Content-Type, "X-Content-Type-Options: nosniff"
// and a strong ETag; If-None-Match is honoured with 304 Not Modified, and
// Range requests are supported.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

// serve implements Handler.
func serve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	t := table()
	cacheControl := "public, max-age=31536000, immutable"
	a, ok := t.byHashed[name]
	if !ok {
		a, ok = t.byName[name]
		cacheControl = "no-cache"
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if a.contentType == contentTypes[".svg"] {
		// An SVG opened directly must not run scripts in our origin.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	}
	// ServeContent handles If-None-Match (304), HEAD and Range; a zero
	// modification time omits Last-Modified.
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.data))
}
