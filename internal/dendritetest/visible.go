package dendritetest

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// WaitVisible waits (up to 30 s) until the event is in the room's timeline as
// GET /rooms/{roomId}/messages serves it, read as c. Dendrite acknowledges a send before
// its timeline shows the event, so a test that reads the history right after sending
// must wait for the last event it sent.
func WaitVisible(t testing.TB, c *mautrix.Client, roomID id.RoomID, eventID id.EventID) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Messages(context.Background(), roomID, "", "", mautrix.DirectionBackward, nil, 20)
		if err == nil {
			for _, evt := range resp.Chunk {
				if evt.ID == eventID {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dendritetest: event %s not in the timeline of %s after 30 s (last error: %v)", eventID, roomID, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
