package bot_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/bot"
	"matrixas/db"
	"matrixas/internal/dendritetest"
	"matrixas/matrix"
)

// timedIO is the real RoomIO noting when each send leaves.
type timedIO struct {
	matrix.RoomIO
	left chan time.Time
}

func (t *timedIO) Send(ctx context.Context, roomID id.RoomID, txnID string, content *event.MessageEventContent) (id.EventID, error) {
	t.left <- time.Now()
	return t.RoomIO.Send(ctx, roomID, txnID, content)
}

// BenchmarkOutboxOnDendrite measures the outbox against a real Dendrite:
//   - serial: a plain loop of sends, one after the other (the baseline);
//   - outbox: as many messages queued at once, across the rooms, and sent by the Sender,
//     from the queueing to the last one recorded as sent;
//   - reply: from a command's transaction recorded to its reply's send leaving this
//     server (composition included), one command at a time.
func BenchmarkOutboxOnDendrite(b *testing.B) {
	dendritetest.Require(b)
	d := setUpDendrite(b)
	ctx := context.Background()
	const messages = 100
	rooms := []*db.Room{d.room}
	for i := range 3 {
		rooms = append(rooms, d.addRoom(b, fmt.Sprintf("Bench %d", i)))
	}
	io := d.roomIO()
	run := 0

	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			run++
			for i := range messages {
				r := rooms[i%len(rooms)]
				if _, err := io.Send(ctx, id.RoomID(r.RoomID), fmt.Sprintf("serial-%d-%d", run, i), bot.Render(fmt.Sprintf("serial %d", i))); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(messages*b.N)/b.Elapsed().Seconds(), "msgs/s")
	})

	for _, inFlight := range []int{1, 4} {
		b.Run(fmt.Sprintf("outbox/in-flight=%d", inFlight), func(b *testing.B) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			s := bot.NewSender(d.store, io, bot.New(bot.Config{Directory: d.store}), bot.SenderOptions{MaxInFlight: inFlight})
			done := make(chan struct{})
			go func() { s.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			for b.Loop() {
				for i := range messages {
					if _, err := d.store.QueueNotification(ctx, rooms[i%len(rooms)].ID, fmt.Sprintf("outbox %d", i)); err != nil {
						b.Fatal(err)
					}
				}
				s.Wake()
				waitUntil(b, "the outbox drained", func() bool { return d.pending(b) == 0 })
			}
			b.ReportMetric(float64(messages*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}

	// The rate rule allows 10 replies per room per minute: enough rooms for a second
	// of commands one after the other.
	for i := range 12 - len(rooms) {
		rooms = append(rooms, d.addRoom(b, fmt.Sprintf("Bench reply %d", i)))
	}
	b.Run("reply", func(b *testing.B) {
		tio := &timedIO{RoomIO: io, left: make(chan time.Time, 1)}
		s := d.senderWith(b, tio, bot.SenderOptions{})
		var lat []time.Duration
		n := 0
		for b.Loop() {
			n++
			cmd := db.CommandEvent{EventID: id.EventID(fmt.Sprintf("$bench-%d", n)), RoomID: id.RoomID(rooms[n%len(rooms)].RoomID),
				Sender: d.alice.UserID, Body: "!help", MsgType: "m.text"}
			start := time.Now()
			if res := d.deliver(b, cmd); res.Commands != 1 {
				b.Fatalf("command %d not queued: %+v", n, res)
			}
			s.Wake()
			lat = append(lat, (<-tio.left).Sub(start))
			waitUntil(b, "the reply recorded", func() bool { return d.pending(b) == 0 })
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	})
}
