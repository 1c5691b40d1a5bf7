package appservice

import (
	"encoding/json"
	"testing"
)

// FuzzParseTransaction: any body either parses (and then every membership event it
// returns came from the body, and the count matches a plain decode of the list) or is
// refused with one of the two Matrix errcodes; it never panics.
func FuzzParseTransaction(f *testing.F) {
	for _, s := range []string{
		`{"events":[]}`,
		`{"events":[{"type":"m.room.member","event_id":"$1","room_id":"!r:x","state_key":"@a:x","content":{"membership":"join"}}]}`,
		`{"events":[{"type":"m.room.message","content":{"membership":5}}],"ephemeral":[]}`,
		`{"events":{}}`, `[]`, `{`, `null`, `{"events":[1,"x",null]}`, "{\"events\":[{\"type\":\"\xff\"}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, members, err := ParseTransaction(body)
		if err != nil {
			bad, ok := err.(errTxnBody)
			if !ok || (bad.code != "M_NOT_JSON" && bad.code != "M_BAD_JSON") {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		var plain struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(body, &plain); err != nil {
			t.Fatalf("accepted a body that does not decode as a list: %v", err)
		}
		if len(plain.Events) != n {
			t.Fatalf("count %d, list has %d", n, len(plain.Events))
		}
		if len(members) > n {
			t.Fatalf("%d members out of %d events", len(members), n)
		}
		for _, m := range members {
			if m.StateKey == "" || m.RoomID == "" || m.EventID == "" {
				t.Fatalf("incomplete membership event %+v", m)
			}
		}
	})
}
