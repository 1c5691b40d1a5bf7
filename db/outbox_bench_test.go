package db

import (
	"context"
	"fmt"
	"testing"

	"maunium.net/go/mautrix/id"
)

// BenchmarkRecordWithCommand measures recording a transaction that carries one command
// (its room looked up, the rate counted, the reply queued), one caller at a time, to set
// beside BenchmarkRecord's callers=1 (a transaction without commands, which runs no
// outbox query at all). Rooms rotate so the rate rule never drops a command.
func BenchmarkRecordWithCommand(b *testing.B) {
	s, err := Open(context.Background(), b.TempDir()+"/b.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const rooms = 1000
	for i := range rooms {
		p, _, err := s.PutProject(ctx, DirectoryProject{Name: fmt.Sprintf("P%d", i)}, false)
		if err != nil {
			b.Fatal(err)
		}
		r, err := s.CreateRoom(ctx, p.ID)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.SetRoomHomeserverID(ctx, r.ID, id.RoomID(fmt.Sprintf("!r%d:example.org", i)), "", ""); err != nil {
			b.Fatal(err)
		}
		if err := s.FinishRoomSync(ctx, r.ID, p.Name); err != nil {
			b.Fatal(err)
		}
	}
	rec := s.NewRecorder(256)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { rec.Run(rctx); close(done) }()
	defer func() { cancel(); <-done }()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		if n%(rooms*ReplyRateLimit/2) == 0 {
			// Age the replies so that the rate rule keeps out of the measurement.
			b.StopTimer()
			if _, err := s.w.ExecContext(ctx, `UPDATE bot_outbox SET created_at = created_at - 120`); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		room := id.RoomID(fmt.Sprintf("!r%d:example.org", n%rooms))
		res, err := rec.Record(ctx, TxnRecord{TxnID: fmt.Sprintf("cmd-%d", n), EventCount: 1, BotUserID: "@bot:example.org",
			Commands: []CommandEvent{{EventID: id.EventID(fmt.Sprintf("$e%d", n)), RoomID: room, Sender: "@a:example.org", Body: "!help", MsgType: "m.text"}}})
		if err != nil || res.Commands != 1 {
			b.Fatalf("%+v %v", res, err)
		}
	}
}
