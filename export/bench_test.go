package export

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/matrix"
)

// genRoom is a RoomIO whose timeline of n text messages is made up page by page, so that
// the room itself takes no memory and what grows (or not) is the exporter.
type genRoom struct{ n int }

func (g genRoom) Send(context.Context, id.RoomID, string, *event.MessageEventContent) (id.EventID, error) {
	return "", nil
}

func (g genRoom) Download(context.Context, id.ContentURI, int64) (io.ReadCloser, error) {
	return nil, matrix.ErrTooLarge
}

var benchBody = strings.Repeat("a line of a conversation about the project ", 3) // ~130 bytes

func (g genRoom) History(_ context.Context, _ id.RoomID, from string, limit int) (*matrix.HistoryPage, error) {
	start := g.n
	if from != "" {
		start, _ = strconv.Atoi(from)
	}
	end := max(start-limit, 0)
	page := &matrix.HistoryPage{Events: make([]*event.Event, 0, start-end)}
	for i := start - 1; i >= end; i-- {
		page.Events = append(page.Events, &event.Event{
			Type:      event.EventMessage,
			ID:        id.EventID("$" + strconv.Itoa(i) + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"),
			Sender:    id.UserID("@user" + strconv.Itoa(i%7) + ":example.org"),
			Timestamp: 1_760_000_000_000 + int64(i)*1000,
			Content:   event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: benchBody}},
		})
	}
	if end > 0 {
		page.End = strconv.Itoa(end)
	}
	return page, nil
}

// peakHeap samples the live heap every millisecond while fn runs and returns the
// highest value seen above the heap before fn.
func peakHeap(fn func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if v := read(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	fn()
	close(done)
	<-stopped
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// BenchmarkExport exports rooms of 2,000 to 200,000 messages. The numbers to watch:
// peak-heap-KiB stays flat as the room grows (the document is streamed), and msgs/s.
func BenchmarkExport(b *testing.B) {
	mk := testKey(b)
	for _, n := range []int{2_000, 20_000, 200_000} {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			e, err := New(genRoom{n: n}, Config{Dir: filepath.Join(b.TempDir(), "exports"), Key: mk})
			if err != nil {
				b.Fatal(err)
			}
			var peak uint64
			var bytes int64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				p := peakHeap(func() {
					res, err := e.Run(context.Background(), Job{UUID: "bench" + strconv.Itoa(i), RoomID: "!r:example.org", RoomName: "bench"})
					if err != nil {
						b.Fatal(err)
					}
					bytes = res.ExportSize
				})
				peak = max(peak, p)
			}
			b.ReportMetric(float64(peak)/1024, "peak-heap-KiB")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(bytes)/float64(n), "json-B/msg")
		})
	}
}
