package apidoc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

// Handler serves GET /api/schema/: the document as JSON, or as YAML with ?format=yaml;
// any other format is 400 in the API's field-error shape. The document is built on the
// first request, not at start (building it allocates some 12 MB, which a server that is
// never asked for it should not hold in its RSS or wait for at start), and carries an
// ETag so clients can revalidate.
func Handler() http.HandlerFunc {
	type variant struct {
		body        []byte
		contentType string
		etag        string
	}
	mk := func(b []byte, ct string) variant {
		sum := sha256.Sum256(b)
		return variant{b, ct, `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	variants := sync.OnceValue(func() map[string]variant {
		return map[string]variant{
			"":     mk(JSON(), "application/json"),
			"json": mk(JSON(), "application/json"),
			"yaml": mk(YAML(), "application/yaml; charset=utf-8"),
		}
	})
	return func(w http.ResponseWriter, r *http.Request) {
		v, ok := variants()[r.URL.Query().Get("format")]
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"format":["Select a valid choice: json or yaml."]}` + "\n"))
			return
		}
		w.Header().Set("Content-Type", v.contentType)
		w.Header().Set("ETag", v.etag)
		w.Header().Set("Cache-Control", "no-cache") // revalidate: the document changes with the version
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(v.body))
	}
}
