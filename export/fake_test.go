package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/matrix"
)

// fakeRoom is a matrix.RoomIO over an in-memory timeline, with faults to inject. The
// exporter's behaviour against a real homeserver is in dendrite_test.go; this one lets
// unit tests hand it every kind of event and every failure cheaply.
type fakeRoom struct {
	mu        sync.Mutex
	events    []*event.Event // oldest first
	faults    []error        // returned by the next History calls, in order
	failAfter int            // History fails for good after this many pages (0 = never)
	pages     int
	media     map[id.ContentURI][]byte
	noLength  map[id.ContentURI]bool // served without a known length: too large is found while reading
	dlErr     map[id.ContentURI]error
}

var _ matrix.RoomIO = (*fakeRoom)(nil)

func (f *fakeRoom) Send(context.Context, id.RoomID, string, *event.MessageEventContent) (id.EventID, error) {
	return "", errors.New("fakeRoom: not sending")
}

func (f *fakeRoom) History(ctx context.Context, roomID id.RoomID, from string, limit int) (*matrix.HistoryPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.faults) > 0 {
		err := f.faults[0]
		f.faults = f.faults[1:]
		return nil, err
	}
	if f.failAfter > 0 && f.pages >= f.failAfter {
		return nil, httpErr(http.StatusForbidden, "M_FORBIDDEN", 0)
	}
	f.pages++
	start := len(f.events)
	if from != "" {
		start, _ = strconv.Atoi(from)
	}
	end := max(start-limit, 0)
	page := &matrix.HistoryPage{}
	for i := start - 1; i >= end; i-- {
		page.Events = append(page.Events, f.events[i])
	}
	if end > 0 {
		page.End = strconv.Itoa(end)
	}
	return page, nil
}

func (f *fakeRoom) Download(ctx context.Context, uri id.ContentURI, maxBytes int64) (io.ReadCloser, error) {
	if err := f.dlErr[uri]; err != nil {
		return nil, err
	}
	data, ok := f.media[uri]
	if !ok {
		return nil, httpErr(http.StatusNotFound, "M_NOT_FOUND", 0)
	}
	if int64(len(data)) > maxBytes && !f.noLength[uri] {
		return nil, fmt.Errorf("%w: %d bytes", matrix.ErrTooLarge, len(data))
	}
	return &cutReader{data: data, max: maxBytes}, nil
}

// cutReader serves data and fails with ErrTooLarge past max bytes, the way
// BotRoomIO's body does when the homeserver sent no Content-Length.
type cutReader struct {
	data []byte
	max  int64
	off  int64
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.off >= int64(len(c.data)) {
		return 0, io.EOF
	}
	if c.off >= c.max {
		return 0, matrix.ErrTooLarge
	}
	n := copy(p, c.data[c.off:min(int64(len(c.data)), c.max)])
	c.off += int64(n)
	return n, nil
}

func (c *cutReader) Close() error { return nil }

// httpErr is the error mautrix returns for an HTTP error answer.
func httpErr(status int, code string, retryAfterMS float64) error {
	re := &mautrix.RespError{ErrCode: code, Err: "fake", StatusCode: status, ExtraData: map[string]any{}}
	if retryAfterMS > 0 {
		re.ExtraData["retry_after_ms"] = retryAfterMS
	}
	return mautrix.HTTPError{
		Response:  &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), Header: http.Header{}},
		RespError: re,
	}
}

// evt builds a parsed event the way BotRoomIO.History returns it.
func evt(t testing.TB, typ, eventID, sender string, ts int64, content map[string]any, extra map[string]any) *event.Event {
	t.Helper()
	raw := map[string]any{"type": typ, "event_id": eventID, "sender": sender, "origin_server_ts": ts, "content": content}
	for k, v := range extra {
		raw[k] = v
	}
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	var e event.Event
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	if err := e.Content.ParseRaw(e.Type); err != nil && !errors.Is(err, event.ErrContentAlreadyParsed) {
		e.Content.Parsed = nil
	}
	return &e
}

// recordSleep is an injected sleeper that records its waits and returns at once.
type recordSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *recordSleep) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits = append(r.waits, d)
	return ctx.Err()
}
