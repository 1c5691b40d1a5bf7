package appservice

import (
	"encoding/json"
	"slices"
	"testing"

	"maunium.net/go/mautrix/id"

	"matrixas/bot"
)

// FuzzParseTransaction: any body either parses or is refused with one of the two Matrix
// errcodes; it never panics. A body that parses decodes as a list of events with
// encoding/json, and the parser's findings match a plain decode of it: the count, every
// membership event complete, and exactly the events a plain decode calls commands (type
// m.room.message without a state key, msgtype m.text, a body bot.IsCommand accepts, an
// event id, a room and a sender), each with that body.
func FuzzParseTransaction(f *testing.F) {
	for _, s := range []string{
		`{"events":[]}`,
		`{"events":[{"type":"m.room.member","event_id":"$1","room_id":"!r:x","state_key":"@a:x","content":{"membership":"join"}}]}`,
		`{"events":[{"type":"m.room.message","content":{"membership":5}}],"ephemeral":[]}`,
		`{"events":{}}`, `[]`, `{`, `null`, `{"events":[1,"x",null]}`, "{\"events\":[{\"type\":\"\xff\"}]}",
		`{"events":[{"type":"m.room.message","event_id":"$2","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":"!help"}}]}`,
		`{"events":[{"type":"m.room.message","event_id":"$2","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":" \u2003\n!Status x"}}]}`,
		`{"events":[{"type":"m.room.m\u0065ssage","event_id":"$2","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.te\u0078t","body":"\u0021orders"}}]}`,
		`{"events":[{"type":"m.room.message","event_id":"$2","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":"hi!"},"content":{"body":"!x"}}]}`,
		`{"events":[{"type":"m.room.message","state_key":"","event_id":"$2","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":"!help"}}]}`,
		"{\"events\":[{\"type\":\"m.room.message\",\"event_id\":\"$2\",\"room_id\":\"!r:x\",\"sender\":\"@a:x\",\"content\":{\"msgtype\":\"m.text\",\"body\":\"\xff!x\"}}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		txn, err := ParseTransaction(body)
		if err != nil {
			bad, ok := err.(errTxnBody)
			if !ok || (bad.code != "M_NOT_JSON" && bad.code != "M_BAD_JSON") {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// Into a map, not a struct: encoding/json matches struct fields case-insensitively.
		var top map[string]json.RawMessage
		var events []json.RawMessage
		if err := json.Unmarshal(body, &top); err != nil {
			t.Fatalf("accepted a body that is not an object: %v", err)
		}
		if err := json.Unmarshal(top["events"], &events); err != nil || events == nil {
			t.Fatalf("accepted a body whose events do not decode as a list: %v", err)
		}
		if len(events) != txn.Events {
			t.Fatalf("count %d, list has %d", txn.Events, len(events))
		}
		if len(txn.Members) > txn.Events || len(txn.Commands) > txn.Events {
			t.Fatalf("%d members and %d commands out of %d events", len(txn.Members), len(txn.Commands), txn.Events)
		}
		for _, m := range txn.Members {
			if m.StateKey == "" || m.RoomID == "" || m.EventID == "" {
				t.Fatalf("incomplete membership event %+v", m)
			}
		}
		var want []id.EventID
		for _, raw := range events {
			if e, ok := plainCommand(raw); ok {
				want = append(want, e)
			}
		}
		var got []id.EventID
		for _, c := range txn.Commands {
			if !bot.IsCommand(c.Body) || c.MsgType != "m.text" || c.RoomID == "" || c.Sender == "" {
				t.Fatalf("not a command: %+v", c)
			}
			got = append(got, c.EventID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("commands %q, a plain decode finds %q", got, want)
		}
	})
}

// plainCommand decodes an event with encoding/json (into maps: exact key names, the last
// of duplicates) and says whether it is a bot command, and which event.
func plainCommand(raw json.RawMessage) (id.EventID, bool) {
	var e map[string]any
	if json.Unmarshal(raw, &e) != nil {
		return "", false
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	content, _ := e["content"].(map[string]any)
	_, stateKey := e["state_key"].(string)
	ok := str(e, "type") == "m.room.message" && !stateKey && content != nil && str(content, "msgtype") == "m.text" &&
		bot.IsCommand(str(content, "body")) && str(e, "event_id") != "" && str(e, "room_id") != "" && str(e, "sender") != ""
	return id.EventID(str(e, "event_id")), ok
}
