package appservice

import "testing"

func TestParseTransaction(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		code     string
		count    int
		nMembers int
	}{
		{"empty events", `{"events":[]}`, "", 0, 0},
		{"with ephemeral", `{"events":[],"ephemeral":[{"type":"m.typing"}]}`, "", 0, 0},
		{"one message", `{"events":[{"type":"m.room.message","event_id":"$1","room_id":"!r:x","content":{"body":"hi"}}]}`, "", 1, 0},
		{"membership", `{"events":[{"type":"m.room.member","event_id":"$2","room_id":"!r:x","sender":"@a:x","state_key":"@a:x","content":{"membership":"leave"}}]}`, "", 1, 1},
		{"member without state key ignored", `{"events":[{"type":"m.room.member","event_id":"$2","room_id":"!r:x","content":{"membership":"join"}}]}`, "", 1, 0},
		{"not json", `{"events":`, "M_NOT_JSON", 0, 0},
		{"not an object", `[1,2]`, "M_BAD_JSON", 0, 0},
		{"events missing", `{}`, "M_BAD_JSON", 0, 0},
		{"events null", `{"events":null}`, "M_BAD_JSON", 0, 0},
		{"events object", `{"events":{"a":1}}`, "M_BAD_JSON", 0, 0},
		{"events string", `{"events":"x"}`, "M_BAD_JSON", 0, 0},
		{"event not object", `{"events":[1]}`, "M_BAD_JSON", 0, 0},
		{"user content with odd types is tolerated", `{"events":[{"type":"m.room.message","event_id":"$3","room_id":"!r:x","content":{"membership":5,"body":{}}},{"type":"m.room.member","event_id":"$4","room_id":"!r:x","state_key":"@b:x","content":{"membership":"join"}}]}`, "", 2, 1},
		{"escaped member type is still seen", `{"events":[{"type":"m.room.\u006dember","event_id":"$6","room_id":"!r:x","state_key":"@c:x","content":{"membership":"leave"}}]}`, "", 1, 1},
		{"odd state key type is tolerated", `{"events":[{"type":"m.room.member","event_id":"$5","room_id":"!r:x","state_key":7,"content":{"membership":"join"}}]}`, "", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, members, err := ParseTransaction([]byte(tt.body))
			if tt.code != "" {
				var bad errTxnBody
				if err == nil || !asTxnErr(err, &bad) || bad.code != tt.code {
					t.Fatalf("err %v, want %s", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.count || len(members) != tt.nMembers {
				t.Errorf("count %d members %d, want %d %d", n, len(members), tt.count, tt.nMembers)
			}
		})
	}
}

func asTxnErr(err error, target *errTxnBody) bool {
	e, ok := err.(errTxnBody)
	if ok {
		*target = e
	}
	return ok
}
