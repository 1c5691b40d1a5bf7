package matrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
)

// RoomIO is the one place through which this server sends into a room and reads a room's
// history. Today it is plain client-server calls made as the bot with the as_token. When
// rooms become encrypted, the bot becomes a crypto device and this is where it encrypts
// (Send) and decrypts (History); no caller changes. Room state changes (create, invite,
// kick, power levels) are not messages and stay with the provisioning worker.
type RoomIO interface {
	// Send posts one m.room.message event as the bot. txnID must be derived from what is
	// being sent (an outbox row), so that a send repeated after a crash is deduplicated
	// by the homeserver instead of posted twice; the event carries it in TxnIDKey.
	Send(ctx context.Context, roomID id.RoomID, txnID string, content *event.MessageEventContent) (id.EventID, error)
	// History reads one page of a room's timeline backwards from the token from ("" =
	// the newest event), at most limit events, with their contents parsed (and, in
	// encrypted rooms, decrypted). The page's End is "" when there is nothing older.
	History(ctx context.Context, roomID id.RoomID, from string, limit int) (*HistoryPage, error)
	// Download streams a media file through the authenticated media API. A file larger
	// than maxBytes (when > 0) is ErrTooLarge, known from Content-Length or found while
	// reading.
	Download(ctx context.Context, uri id.ContentURI, maxBytes int64) (io.ReadCloser, error)
}

// HistoryPage is one page of a room's timeline, newest event first.
type HistoryPage struct {
	Events []*event.Event
	// End is the token for the next (older) page; "" at the start of the room.
	End string
}

// TxnIDKey is the content field in which every message the bot sends carries its
// transaction id. The homeserver deduplicates a repeated transaction id only while it
// remembers it (Dendrite: in memory, 30 to 60 minutes, per access token, lost on a
// restart), so a sender that lost a send's outcome for longer can still find out whether
// it arrived by looking for this field in the room's history (SentTxnID).
const TxnIDKey = "org.matrixas.txn_id"

// SentTxnID returns the transaction id a message of the bot carries in TxnIDKey, "" when
// it carries none.
func SentTxnID(evt *event.Event) string {
	v, _ := evt.Content.Raw[TxnIDKey].(string)
	return v
}

// ErrTooLarge is a media file over the size the caller allowed.
var ErrTooLarge = errors.New("matrix: media file over the size limit")

// BotRoomIO is the RoomIO of an unencrypted deployment: the bot's client, built from the
// settings of the moment, so a rotated as_token or a new homeserver is used at once.
type BotRoomIO struct {
	settings func(ctx context.Context) (*db.MatrixSettings, error)
	http     *http.Client
}

var _ RoomIO = (*BotRoomIO)(nil)

// NewBotRoomIO returns the bot's RoomIO; settings reads the current appservice settings
// (db.Settings.Matrix in production) and hc bounds every call's time.
func NewBotRoomIO(settings func(ctx context.Context) (*db.MatrixSettings, error), hc *http.Client) *BotRoomIO {
	return &BotRoomIO{settings: settings, http: hc}
}

func (b *BotRoomIO) client(ctx context.Context) (*mautrix.Client, error) {
	ms, err := b.settings(ctx)
	if err != nil {
		return nil, err
	}
	return Client(ms, b.http, "")
}

// Send posts content into roomID as the bot with the given transaction id, which the
// message also carries in TxnIDKey.
func (b *BotRoomIO) Send(ctx context.Context, roomID id.RoomID, txnID string, content *event.MessageEventContent) (id.EventID, error) {
	if txnID == "" {
		return "", errors.New("matrix: send without a transaction id")
	}
	c, err := b.client(ctx)
	if err != nil {
		return "", err
	}
	full := &event.Content{Parsed: content, Raw: map[string]any{TxnIDKey: txnID}}
	resp, err := c.SendMessageEvent(ctx, roomID, event.EventMessage, full, mautrix.ReqSendEvent{TransactionID: txnID})
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

// History reads one page of roomID's timeline backwards as the bot.
func (b *BotRoomIO) History(ctx context.Context, roomID id.RoomID, from string, limit int) (*HistoryPage, error) {
	c, err := b.client(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.Messages(ctx, roomID, from, "", mautrix.DirectionBackward, nil, limit)
	if err != nil {
		return nil, err
	}
	for _, evt := range resp.Chunk {
		// A content the parser does not know stays raw (evt.Content.VeryRaw); the caller
		// decides what to keep of it.
		if err := evt.Content.ParseRaw(evt.Type); err != nil && !errors.Is(err, event.ErrContentAlreadyParsed) {
			evt.Content.Parsed = nil
		}
	}
	page := &HistoryPage{Events: resp.Chunk, End: resp.End}
	if len(resp.Chunk) == 0 || resp.End == from {
		page.End = ""
	}
	return page, nil
}

// Download streams uri's file as the bot, refusing one larger than maxBytes.
func (b *BotRoomIO) Download(ctx context.Context, uri id.ContentURI, maxBytes int64) (io.ReadCloser, error) {
	c, err := b.client(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.Download(ctx, uri)
	if err != nil {
		return nil, err
	}
	if maxBytes > 0 && resp.ContentLength > maxBytes {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, resp.ContentLength)
	}
	if maxBytes <= 0 {
		return resp.Body, nil
	}
	return &limitedBody{r: resp.Body, left: maxBytes}, nil
}

// limitedBody reads at most left bytes and fails with ErrTooLarge past them, so a server
// that lies about (or omits) Content-Length cannot make a download unbounded.
type limitedBody struct {
	r    io.ReadCloser
	left int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, ErrTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n - 1, ErrTooLarge
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.r.Close() }
