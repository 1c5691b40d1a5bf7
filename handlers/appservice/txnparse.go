package appservice

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"maunium.net/go/mautrix/id"

	"matrixas/bot"
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
	bodyKey    = []byte(`"body"`)
	escape     = []byte(`\u`) // a word could be spelled with escapes; such events are parsed fully
)

// Txn is what the webhook keeps of a transaction: how many events it holds, the
// membership events, and the bot commands.
type Txn struct {
	Events   int
	Members  []db.MemberEvent
	Commands []db.CommandEvent
}

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
// event count, the membership events and the bot commands in it (messages of msgtype
// m.text whose body bot.IsCommand accepts). Events are read raw and looked into only when
// their bytes can hold a membership event or a command, so a transaction of ordinary
// messages costs no decoding beyond validation. A body that is not JSON is M_NOT_JSON;
// one that is not an object, or whose events is missing or not a list of objects, is
// M_BAD_JSON. Inside an event it is lenient: event content is written by users, and
// refusing a transaction for an odd field would make the homeserver retry it forever,
// so a field of an unexpected type is read as empty. Invalid UTF-8 and duplicate names
// are tolerated for the same reason.
func ParseTransaction(body []byte) (Txn, error) {
	dec := newDecoder(body)
	defer putDecoder(dec)

	txn, err := parseTxn(dec)
	if err != nil {
		var bad errTxnBody
		if errors.As(err, &bad) {
			return Txn{}, bad
		}
		return Txn{}, errNotJSON
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return Txn{}, errNotJSON // data after the object
	}
	return txn, nil
}

func parseTxn(dec *jsontext.Decoder) (Txn, error) {
	var txn Txn
	if k := dec.PeekKind(); k != '{' {
		if k == 0 {
			_, err := dec.ReadToken()
			return txn, err
		}
		if err := dec.SkipValue(); err != nil {
			return txn, err
		}
		return txn, errNotObject
	}
	if _, err := dec.ReadToken(); err != nil {
		return txn, err
	}
	seen := false
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return txn, err
		}
		if name.String() != "events" {
			if err := dec.SkipValue(); err != nil {
				return txn, err
			}
			continue
		}
		txn = Txn{} // a repeated "events": the last one wins, as in most decoders
		seen = true
		if dec.PeekKind() != '[' {
			if err := dec.SkipValue(); err != nil {
				return txn, err
			}
			return txn, errEventsList
		}
		dec.ReadToken()
		for dec.PeekKind() != ']' {
			if dec.PeekKind() != '{' {
				if err := dec.SkipValue(); err != nil {
					return txn, err
				}
				return txn, errEventObjects
			}
			// Most events are messages: read each one raw (validated, not decoded) and
			// look into it only when it can be a membership event or a command.
			raw, err := dec.ReadValue()
			if err != nil {
				return txn, err
			}
			txn.Events++
			if !mayMatter(raw) {
				continue
			}
			sub := newDecoder(raw)
			ev, err := parseEvent(sub)
			putDecoder(sub)
			if err != nil {
				return txn, err
			}
			if m, ok := ev.member(); ok {
				txn.Members = append(txn.Members, m)
			}
			if c, ok := ev.command(); ok {
				txn.Commands = append(txn.Commands, c)
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return txn, err
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return txn, err
	}
	if !seen {
		return txn, errEventsList
	}
	return txn, nil
}

// mayMatter reports whether a raw event can be a membership event or a command, from its
// bytes alone. An event with \u escapes is looked into, since they can spell any of the
// words looked for; without them, a command has a "body" key whose string starts like
// one (white space, then "!"), which is rare in other messages.
func mayMatter(raw []byte) bool {
	if bytes.Contains(raw, escape) || bytes.Contains(raw, memberType) {
		return true
	}
	for rest := raw; ; {
		i := bytes.Index(rest, bodyKey)
		if i < 0 {
			return false
		}
		rest = rest[i+len(bodyKey):]
		if v, ok := afterColon(rest); ok && startsWithBang(v) {
			return true
		}
	}
}

// afterColon returns what follows `: "` (JSON white space allowed around the colon) at
// the start of b: the inside of a string value.
func afterColon(b []byte) ([]byte, bool) {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return nil, false
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	if len(b) == 0 || b[0] != '"' {
		return nil, false
	}
	return b[1:], true
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

// rawEvent is what parseEvent reads of one event.
type rawEvent struct {
	typ         string
	eventID     id.EventID
	roomID      id.RoomID
	sender      id.UserID
	stateKey    id.UserID
	hasStateKey bool
	// From the content (the last "content" object, as decoders read duplicates):
	membership string
	msgType    string
	body       string // only when it starts like a command; "" otherwise
}

// member returns the event as a membership event when it is one that names a member
// of a room.
func (e *rawEvent) member() (db.MemberEvent, bool) {
	ok := e.typ == "m.room.member" && e.hasStateKey && e.stateKey != "" && e.roomID != "" && e.eventID != ""
	return db.MemberEvent{EventID: e.eventID, RoomID: e.roomID, StateKey: e.stateKey, Sender: e.sender, Membership: e.membership}, ok
}

// command returns the event as a bot command when it is a message (not a state event)
// of msgtype m.text whose body is a command, from a sender, in a room.
func (e *rawEvent) command() (db.CommandEvent, bool) {
	ok := e.typ == "m.room.message" && !e.hasStateKey && e.msgType == "m.text" && bot.IsCommand(e.body) &&
		e.eventID != "" && e.roomID != "" && e.sender != ""
	return db.CommandEvent{EventID: e.eventID, RoomID: e.roomID, Sender: e.sender, Body: e.body, MsgType: e.msgType}, ok
}

// parseEvent reads one event object: its ids, its type, and from its content the
// membership, the msgtype and (when it starts like a command) the body.
func parseEvent(dec *jsontext.Decoder) (rawEvent, error) {
	var e rawEvent
	if _, err := dec.ReadToken(); err != nil { // {
		return e, err
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return e, err
		}
		switch name.String() {
		case "type":
			e.typ, err = readString[string](dec)
		case "event_id":
			e.eventID, err = readString[id.EventID](dec)
		case "room_id":
			e.roomID, err = readString[id.RoomID](dec)
		case "sender":
			e.sender, err = readString[id.UserID](dec)
		case "state_key":
			e.hasStateKey = dec.PeekKind() == '"'
			e.stateKey, err = readString[id.UserID](dec)
		case "content":
			err = e.readContent(dec)
		default:
			err = dec.SkipValue()
		}
		if err != nil {
			return e, err
		}
	}
	_, err := dec.ReadToken() // }
	return e, err
}

// readContent reads an event's content; a content that is not an object has none of
// the fields.
func (e *rawEvent) readContent(dec *jsontext.Decoder) error {
	e.membership, e.msgType, e.body = "", "", ""
	if dec.PeekKind() != '{' {
		return dec.SkipValue()
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != '}' {
		field, err := dec.ReadToken()
		if err != nil {
			return err
		}
		switch field.String() {
		case "membership":
			e.membership, err = readString[string](dec)
		case "msgtype":
			e.msgType, err = readString[string](dec)
		case "body":
			e.body, err = readCommandBody(dec)
		default:
			err = dec.SkipValue()
		}
		if err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// readCommandBody reads a message's body and returns its text only when it starts like
// a command (white space, then "!"): the body of any other message is validated, not
// decoded.
func readCommandBody(dec *jsontext.Decoder) (string, error) {
	if dec.PeekKind() != '"' {
		return "", dec.SkipValue()
	}
	raw, err := dec.ReadValue() // valid until the next read
	if err != nil || !startsWithBang(raw[1:]) {
		return "", err
	}
	// Invalid UTF-8 comes out as U+FFFD, with an error that says so: the text is kept.
	text, _ := jsontext.AppendUnquote(nil, raw)
	return string(text), nil
}

// startsWithBang reports whether a JSON string, read from just after its opening quote,
// holds a "!" after leading white space (unicode.IsSpace, as bot.Parse trims it), the
// "!" and the spaces written as they are or escaped.
func startsWithBang(s []byte) bool {
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s) // invalid UTF-8 is U+FFFD, as the decoder reads it
		if r == '\\' {
			r, size = unescape(s)
		}
		if r == '!' {
			return true
		}
		if r == '"' || !unicode.IsSpace(r) {
			return false // the end of the string, or its first word does not start with "!"
		}
		s = s[size:]
	}
	return false
}

// unescape reads the escape sequence s starts with and returns its rune and length. A
// surrogate half comes out as itself: neither white space nor "!", which is all that
// matters here. A sequence cut short is no space either.
func unescape(s []byte) (rune, int) {
	if len(s) < 2 {
		return utf8.RuneError, len(s)
	}
	switch s[1] {
	case 't':
		return '\t', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 'f':
		return '\f', 2
	case 'u':
		if len(s) < 6 {
			return utf8.RuneError, len(s)
		}
		return hexRune(s[2:6]), 6
	}
	return utf8.RuneError, 2 // \b \" \\ \/: none is white space or "!"
}

// hexRune decodes 4 hex digits (the decoder validated them); a surrogate half is no
// space and no "!", which is all that matters here.
func hexRune(h []byte) rune {
	var r rune
	for _, c := range h {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
