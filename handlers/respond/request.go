package respond

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"matrixas/db"
)

// errBodyTooLarge is returned by the body readers when the body is over the limit.
var errBodyTooLarge = errors.New("request body too large")

// BadBodyError is a body that does not parse; its text says why, for a 400.
type BadBodyError struct{ msg string }

// Error is the message the 400 carries.
func (e BadBodyError) Error() string { return e.msg }

// errUnsupportedMedia is returned by ReadFields for a body in a media type it does not
// parse (415). multipart/form-data is one: the API has no file fields, and the OpenAPI
// document lists only the two types parsed here.
type errUnsupportedMedia struct{ mediaType string }

func (e errUnsupportedMedia) Error() string {
	return fmt.Sprintf("Unsupported media type %q in request: send application/json or application/x-www-form-urlencoded.", e.mediaType)
}

// errInvalidUTF8 refuses text that is not UTF-8. Stored, it would come back as mojibake
// on the dashboard and be rewritten to U+FFFD by the JSON encoder, so it is refused at
// the edge instead, with a 400 that says why.
var errInvalidUTF8 = BadBodyError{"The request contains text that is not valid UTF-8."}

// ParseForm is r.ParseForm answering in this package's errors: too large past the body
// limit, BadBodyError for a form that does not parse or a name or value that is not UTF-8.
func ParseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errBodyTooLarge
		}
		return BadBodyError{"The form could not be read."}
	}
	for k, vs := range r.Form {
		if !utf8.ValidString(k) {
			return errInvalidUTF8
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return errInvalidUTF8
			}
		}
	}
	return nil
}

// ReadFields reads a JSON object or a url-encoded form body into string fields. JSON
// values that are not strings are kept in their JSON text (true, 12) so the caller can
// validate them.
func ReadFields(r *http.Request) (map[string]string, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	out := map[string]string{}
	switch ct {
	case "application/x-www-form-urlencoded":
		if err := ParseForm(r); err != nil {
			return nil, err
		}
		for k, v := range r.PostForm {
			if len(v) > 0 {
				out[k] = v[0]
			}
		}
		return out, nil
	case "application/json", "":
		var raw map[string]json.RawMessage
		if err := DecodeJSON(r, &raw); err != nil {
			return nil, err
		}
		for k, v := range raw {
			var s string
			if json.Unmarshal(v, &s) == nil {
				out[k] = s
			} else if string(v) != "null" {
				out[k] = string(v)
			}
		}
		return out, nil
	default:
		return nil, errUnsupportedMedia{ct}
	}
}

// ReadOptionalFields is ReadFields for a body that may be left out: no body at all (or
// only white space) is no fields, whatever the Content-Type says, as for an action
// whose every field has a default.
func ReadOptionalFields(r *http.Request) (map[string]string, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return map[string]string{}, nil
	}
	body, err := io.ReadAll(r.Body) // bounded by the body limit
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errBodyTooLarge
		}
		return nil, BadBodyError{"The request body could not be read."}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]string{}, nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return ReadFields(r)
}

// DecodeJSON decodes one JSON value from the body into dst, refusing trailing data and
// text that is not UTF-8 (which encoding/json would silently rewrite).
func DecodeJSON(r *http.Request, dst any) error {
	body, err := io.ReadAll(r.Body) // bounded by the body limit
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errBodyTooLarge
		}
		return BadBodyError{"The request body could not be read."}
	}
	if !utf8.Valid(body) {
		return errInvalidUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			return BadBodyError{"The request body is empty: send a JSON object."}
		}
		return BadBodyError{"The request body is not valid JSON: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return BadBodyError{"The request body has data after the JSON value."}
	}
	return nil
}

// BadBody answers an error of the body readers: 413, 415 or 400.
func BadBody(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errBodyTooLarge) {
		Fail(w, r, http.StatusRequestEntityTooLarge, "The request body is too large.")
		return
	}
	var um errUnsupportedMedia
	if errors.As(err, &um) {
		Fail(w, r, http.StatusUnsupportedMediaType, um.Error())
		return
	}
	var bb BadBodyError
	if errors.As(err, &bb) {
		Fail(w, r, http.StatusBadRequest, bb.msg)
		return
	}
	ServerError(w, r, err)
}

// FromPath loads the row named by the {uuid} path parameter with get, answering 404 (an
// unknown or malformed uuid) or 500 itself in the request's shape; ok is false when it
// answered.
func FromPath[T any](w http.ResponseWriter, r *http.Request, get func(ctx context.Context, uuid string) (*T, error)) (*T, bool) {
	id, ok := db.NormalizeUUID(chi.URLParam(r, "uuid"))
	if !ok {
		Fail(w, r, http.StatusNotFound, "Not found.")
		return nil, false
	}
	v, err := get(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		Fail(w, r, http.StatusNotFound, "Not found.")
		return nil, false
	}
	if err != nil {
		ServerError(w, r, err)
		return nil, false
	}
	return v, true
}

// RoomFilter reads a rooms list's ?state=, ?project= and ?search= (the API's list and
// the dashboard's rooms page); errs names a bad value.
func RoomFilter(r *http.Request) (db.RoomFilter, FieldErrors) {
	q := r.URL.Query()
	errs := FieldErrors{}
	f := db.RoomFilter{Search: strings.TrimSpace(q.Get("search"))}
	if s := q.Get("state"); s != "" {
		f.State = db.RoomState(s)
		if !f.State.Valid() {
			errs.Add("state", fmt.Sprintf("Select a valid choice. %s is not one of the available choices.", s))
		}
	}
	if s := q.Get("project"); s != "" {
		u, ok := db.NormalizeUUID(s)
		if !ok {
			errs.Add("project", "Enter a valid UUID.")
		}
		f.ProjectUUID = u
	}
	return f, errs
}
