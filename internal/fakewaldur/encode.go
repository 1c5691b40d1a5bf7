package fakewaldur

import (
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// objWriter appends JSON objects field by field, leaving out fields a field= selection
// did not ask for. Writing by hand keeps a page of 300 objects cheap to produce.
type objWriter struct {
	b     []byte
	sel   map[string]bool // nil: every field
	first bool
}

func (w *objWriter) begin() {
	w.b = append(w.b, '{')
	w.first = true
}

func (w *objWriter) end() { w.b = append(w.b, '}') }

func (w *objWriter) key(k string) bool {
	if w.sel != nil && !w.sel[k] {
		return false
	}
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = appendString(w.b, k)
	w.b = append(w.b, ':')
	return true
}

func (w *objWriter) str(k, v string) {
	if w.key(k) {
		w.b = appendString(w.b, v)
	}
}

func (w *objWriter) boolean(k string, v bool) {
	if w.key(k) {
		w.b = strconv.AppendBool(w.b, v)
	}
}

func (w *objWriter) null(k string) {
	if w.key(k) {
		w.b = append(w.b, "null"...)
	}
}

// time writes a date-time as the platform does (UTC, microseconds, Z); zero is null.
func (w *objWriter) time(k string, t time.Time) {
	if !w.key(k) {
		return
	}
	if t.IsZero() {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = append(w.b, '"')
	w.b = t.UTC().AppendFormat(w.b, "2006-01-02T15:04:05.000000Z")
	w.b = append(w.b, '"')
}

func (w *objWriter) strings(k string, v []string) {
	if !w.key(k) {
		return
	}
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendString(w.b, s)
	}
	w.b = append(w.b, ']')
}

func appendString(b []byte, s string) []byte {
	out, _ := jsontext.AppendQuote(b, s) // invalid UTF-8 is written with replacements
	return out
}
