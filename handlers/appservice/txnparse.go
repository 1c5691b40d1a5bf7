package appservice

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
)

// errTxnBody is a transaction body that is not acceptable, with its Matrix errcode.
type errTxnBody struct{ code, msg string }

func (e errTxnBody) Error() string { return e.msg }

var (
	errNotJSON      = errTxnBody{"M_NOT_JSON", "The body is not valid JSON"}
	errNotObject    = errTxnBody{"M_BAD_JSON", "The transaction must be a JSON object"}
	errEventsList   = errTxnBody{"M_BAD_JSON", "events must be a list"}
	errEventObjects = errTxnBody{"M_BAD_JSON", "events must be a list of event objects"}
)

var (
	memberType = []byte("m.room.member")
	escape     = []byte(`\u`) // a type could be spelled with escapes; such events are parsed fully
)

// decoders are reused across requests: the webhook is the hot path. A decoder reads a
// bytes.Buffer in place (no copy); it is detached from the body before going back.
var decoders = sync.Pool{New: func() any { return jsontext.NewDecoder(noInput) }}

var noInput = bytes.NewReader(nil) // never read: a decoder is Reset before each use

func newDecoder(body []byte) *jsontext.Decoder {
	dec := decoders.Get().(*jsontext.Decoder)
	dec.Reset(bytes.NewBuffer(body), jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
	return dec
}

func putDecoder(dec *jsontext.Decoder) {
	dec.Reset(noInput)
	decoders.Put(dec)
}

// ParseTransaction validates a transaction body in one streaming pass and returns its
// event count and the membership events in it. A body that is not JSON is M_NOT_JSON;
// one that is not an object, or whose events is missing or not a list of objects, is
// M_BAD_JSON. Inside an event it is lenient: event content is written by users, and
// refusing a transaction for an odd field would make the homeserver retry it forever,
// so a field of an unexpected type is read as empty. Invalid UTF-8 and duplicate names
// are tolerated for the same reason.
func ParseTransaction(body []byte) (int, []db.MemberEvent, error) {
	dec := newDecoder(body)
	defer putDecoder(dec)

	count, members, err := parseTxn(dec)
	if err != nil {
		var bad errTxnBody
		if errors.As(err, &bad) {
			return 0, nil, bad
		}
		return 0, nil, errNotJSON
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return 0, nil, errNotJSON // data after the object
	}
	return count, members, nil
}

func parseTxn(dec *jsontext.Decoder) (int, []db.MemberEvent, error) {
	if k := dec.PeekKind(); k != '{' {
		if k == 0 {
			_, err := dec.ReadToken()
			return 0, nil, err
		}
		if err := dec.SkipValue(); err != nil {
			return 0, nil, err
		}
		return 0, nil, errNotObject
	}
	if _, err := dec.ReadToken(); err != nil {
		return 0, nil, err
	}
	count, seen := 0, false
	var members []db.MemberEvent
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return 0, nil, err
		}
		if name.String() != "events" {
			if err := dec.SkipValue(); err != nil {
				return 0, nil, err
			}
			continue
		}
		if seen { // a repeated "events": the last one wins, as in most decoders
			count, members = 0, nil
		}
		seen = true
		if dec.PeekKind() != '[' {
			if err := dec.SkipValue(); err != nil {
				return 0, nil, err
			}
			return 0, nil, errEventsList
		}
		dec.ReadToken()
		for dec.PeekKind() != ']' {
			if dec.PeekKind() != '{' {
				if err := dec.SkipValue(); err != nil {
					return 0, nil, err
				}
				return 0, nil, errEventObjects
			}
			// Most events are messages: read each one raw (validated, not decoded) and
			// look into it only when it can be a membership event.
			raw, err := dec.ReadValue()
			if err != nil {
				return 0, nil, err
			}
			count++
			if !bytes.Contains(raw, memberType) && !bytes.Contains(raw, escape) {
				continue
			}
			sub := newDecoder(raw)
			m, isMember, err := parseEvent(sub)
			putDecoder(sub)
			if err != nil {
				return 0, nil, err
			}
			if isMember {
				members = append(members, m)
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return 0, nil, err
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return 0, nil, err
	}
	if !seen {
		return 0, nil, errEventsList
	}
	return count, members, nil
}

// readString reads the next value: its text when it is a string, "" (skipped)
// otherwise. T is the string's type (an id.EventID, an id.UserID...).
func readString[T ~string](dec *jsontext.Decoder) (T, error) {
	if dec.PeekKind() != '"' {
		return "", dec.SkipValue()
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return "", err
	}
	return T(tok.String()), nil
}

// parseEvent reads one event object and returns it as a membership event when it is one
// that names a member of a room.
func parseEvent(dec *jsontext.Decoder) (db.MemberEvent, bool, error) {
	var m db.MemberEvent
	var typ string
	hasStateKey := false
	if _, err := dec.ReadToken(); err != nil { // {
		return m, false, err
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return m, false, err
		}
		switch name.String() {
		case "type":
			typ, err = readString[string](dec)
		case "event_id":
			m.EventID, err = readString[id.EventID](dec)
		case "room_id":
			m.RoomID, err = readString[id.RoomID](dec)
		case "sender":
			m.Sender, err = readString[id.UserID](dec)
		case "state_key":
			hasStateKey = dec.PeekKind() == '"'
			m.StateKey, err = readString[id.UserID](dec)
		case "content":
			if dec.PeekKind() != '{' {
				err = dec.SkipValue()
				break
			}
			dec.ReadToken()
			for err == nil && dec.PeekKind() != '}' {
				var field jsontext.Token
				if field, err = dec.ReadToken(); err != nil {
					break
				}
				if field.String() == "membership" {
					m.Membership, err = readString[string](dec)
				} else {
					err = dec.SkipValue()
				}
			}
			if err == nil {
				_, err = dec.ReadToken()
			}
		default:
			err = dec.SkipValue()
		}
		if err != nil {
			return m, false, err
		}
	}
	if _, err := dec.ReadToken(); err != nil { // }
		return m, false, err
	}
	ok := typ == "m.room.member" && hasStateKey && m.StateKey != "" && m.RoomID != "" && m.EventID != ""
	return m, ok, nil
}
