package appservice

import (
	"fmt"
	"strings"
	"testing"

	"matrixas/db"
)

func TestParseTransaction(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		code      string
		count     int
		nMembers  int
		nCommands int
	}{
		{"empty events", `{"events":[]}`, "", 0, 0, 0},
		{"with ephemeral", `{"events":[],"ephemeral":[{"type":"m.typing"}]}`, "", 0, 0, 0},
		{"one message", `{"events":[{"type":"m.room.message","event_id":"$1","room_id":"!r:x","content":{"body":"hi"}}]}`, "", 1, 0, 0},
		{"membership", `{"events":[{"type":"m.room.member","event_id":"$2","room_id":"!r:x","sender":"@a:x","state_key":"@a:x","content":{"membership":"leave"}}]}`, "", 1, 1, 0},
		{"member without state key ignored", `{"events":[{"type":"m.room.member","event_id":"$2","room_id":"!r:x","content":{"membership":"join"}}]}`, "", 1, 0, 0},
		{"not json", `{"events":`, "M_NOT_JSON", 0, 0, 0},
		{"not an object", `[1,2]`, "M_BAD_JSON", 0, 0, 0},
		{"events missing", `{}`, "M_BAD_JSON", 0, 0, 0},
		{"events null", `{"events":null}`, "M_BAD_JSON", 0, 0, 0},
		{"events object", `{"events":{"a":1}}`, "M_BAD_JSON", 0, 0, 0},
		{"events string", `{"events":"x"}`, "M_BAD_JSON", 0, 0, 0},
		{"event not object", `{"events":[1]}`, "M_BAD_JSON", 0, 0, 0},
		{"user content with odd types is tolerated", `{"events":[{"type":"m.room.message","event_id":"$3","room_id":"!r:x","content":{"membership":5,"body":{}}},{"type":"m.room.member","event_id":"$4","room_id":"!r:x","state_key":"@b:x","content":{"membership":"join"}}]}`, "", 2, 1, 0},
		{"escaped member type is still seen", `{"events":[{"type":"m.room.\u006dember","event_id":"$6","room_id":"!r:x","state_key":"@c:x","content":{"membership":"leave"}}]}`, "", 1, 1, 0},
		{"a command", `{"events":[{"type":"m.room.message","event_id":"$7","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":"!help"}}]}`, "", 1, 0, 1},
		{"a command after white space, with arguments", `{"events":[{"type":"m.room.message","event_id":"$7","room_id":"!r:x","sender":"@a:x","content":{"body":" \n\t!Status now","msgtype":"m.text"}}]}`, "", 1, 0, 1},
		{"an escaped bang", `{"events":[{"type":"m.room.message","event_id":"$7","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":"\u0021orders"}}]}`, "", 1, 0, 1},
		{"an escaped message type", `{"events":[{"type":"m.room.m\u0065ssage","event_id":"$7","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":"!orders"}}]}`, "", 1, 0, 1},
		{"a bang later in the text", `{"events":[{"type":"m.room.message","event_id":"$7","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":"hello!"}}]}`, "", 1, 0, 0},
		{"a lone bang", `{"events":[{"type":"m.room.message","event_id":"$7","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":"! help"}}]}`, "", 1, 0, 0},
		{"a notice", `{"events":[{"type":"m.room.message","event_id":"$7","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.notice","body":"!help"}}]}`, "", 1, 0, 0},
		{"not a message", `{"events":[{"type":"m.reaction","event_id":"$7","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":"!help"}}]}`, "", 1, 0, 0},
		{"a state event", `{"events":[{"type":"m.room.message","state_key":"","event_id":"$7","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":"!help"}}]}`, "", 1, 0, 0},
		{"no sender", `{"events":[{"type":"m.room.message","event_id":"$7","room_id":"!r:x","content":{"msgtype":"m.text","body":"!help"}}]}`, "", 1, 0, 0},
		{"a body that is no string", `{"events":[{"type":"m.room.message","event_id":"$7","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":["!help"]}}]}`, "", 1, 0, 0},
		{"the last content wins", `{"events":[{"type":"m.room.message","event_id":"$7","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":"!help"},"content":{"body":"!help"}}]}`, "", 1, 0, 0},
		{"odd state key type is tolerated", `{"events":[{"type":"m.room.member","event_id":"$5","room_id":"!r:x","state_key":7,"content":{"membership":"join"}}]}`, "", 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			txn, err := ParseTransaction([]byte(tt.body))
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
			if txn.Events != tt.count || len(txn.Members) != tt.nMembers || len(txn.Commands) != tt.nCommands {
				t.Errorf("count %d members %d commands %d, want %d %d %d", txn.Events, len(txn.Members), len(txn.Commands), tt.count, tt.nMembers, tt.nCommands)
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

// TestParseTransactionCommand: a command comes out with its event's ids and its text as
// sent (escapes decoded, arguments kept), beside a membership event of the same
// transaction.
func TestParseTransactionCommand(t *testing.T) {
	body := `{"events":[
		{"type":"m.room.member","event_id":"$m","room_id":"!r:x","sender":"@a:x","state_key":"@a:x","content":{"membership":"join"}},
		{"type":"m.room.message","event_id":"$c","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":"\u00a0\n!Members \u00e9t\u00e9","format":"org.matrix.custom.html"}},
		{"type":"m.room.message","event_id":"$h","room_id":"!r:x","sender":"@a:x","content":{"msgtype":"m.text","body":"hi!"}}]}`
	txn, err := ParseTransaction([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := db.CommandEvent{EventID: "$c", RoomID: "!r:x", Sender: "@a:x", Body: "\u00a0\n!Members été", MsgType: "m.text"}
	if txn.Events != 3 || len(txn.Members) != 1 || len(txn.Commands) != 1 || txn.Commands[0] != want {
		t.Fatalf("%+v, want one member and the command %+v", txn, want)
	}
}

func TestStartsWithBang(t *testing.T) {
	for _, tt := range []struct {
		quoted string
		want   bool
	}{
		{`"!"`, true},
		{`"  !x"`, true},
		{`"\t\n\r\f!x"`, true},
		{`"\u0020\u2003!x"`, true},
		{"\"\u00a0\u3000!x\"", true},
		{`"\u0021"`, true},
		{`""`, false},
		{`"   "`, false},
		{`"x!"`, false},
		{`"\b!x"`, false},
		{`"\/!x"`, false},
		{`"\"!x"`, false},
		{`"  "!x`, false},
		{`"\ud83d\ude00!x"`, false},
		{"\"\xff!x\"", false},
	} {
		if got := startsWithBang([]byte(tt.quoted)[1:]); got != tt.want {
			t.Errorf("startsWithBang(%s) = %v, want %v", tt.quoted, got, tt.want)
		}
	}
}

// BenchmarkParseTransaction measures the parser alone on ten-message transactions
// (BenchmarkWebhookTransaction's shape): ordinary messages, messages with a "!" in the
// text (looked into, not commands), and ten commands.
func BenchmarkParseTransaction(b *testing.B) {
	for _, c := range []struct {
		name     string
		body     func(i int) string
		commands int
	}{
		{"plain", func(i int) string { return fmt.Sprintf("message %d: hello from the bridge", i) }, 0},
		{"exclaimed", func(i int) string { return fmt.Sprintf("message %d: hello from the bridge!", i) }, 0},
		{"commands", func(i int) string { return "!status" }, 10},
	} {
		var events []string
		for i := 1; i <= 10; i++ {
			events = append(events, fmt.Sprintf(`{"type":"m.room.message","room_id":"!OGEhHVWSdvArJzumhm:bench.example.org","sender":"@user%02d:bench.example.org","event_id":"$1432735824653PhrSn%02dXq:bench.example.org","origin_server_ts":%d,"content":{"msgtype":"m.text","body":%q},"unsigned":{"age":%d}}`, i, i, 1700000000000+i*137, c.body(i), 1000+i))
		}
		body := []byte(`{"events":[` + strings.Join(events, ",") + `]}`)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				txn, err := ParseTransaction(body)
				if err != nil || len(txn.Commands) != c.commands {
					b.Fatalf("%d commands, %v", len(txn.Commands), err)
				}
			}
		})
	}
}
