package handlers

import (
	"errors"
	"net/http"
	"unicode/utf8"
)

// errInvalidUTF8 refuses text that is not UTF-8. Stored, it would come back as mojibake
// on the dashboard and be rewritten to U+FFFD by the JSON encoder, so it is refused at
// the edge instead, with a 400 that says why.
var errInvalidUTF8 = errBadBody{"The request contains text that is not valid UTF-8."}

// parseForm is r.ParseForm answering in the handlers' errors: errBodyTooLarge past the
// body limit, errBadBody for a form that does not parse, errInvalidUTF8 for a name or
// value that is not UTF-8.
func parseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errBodyTooLarge
		}
		return errBadBody{"The form could not be read."}
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
