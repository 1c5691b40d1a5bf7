package export

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/matrix"
)

// Defaults of Config (the reference's limits).
const (
	DefaultPageSize        = 100
	DefaultMaxFileBytes    = 50 << 20
	DefaultMaxMediaBytes   = 200 << 20
	DefaultDownloadTimeout = 120 * time.Second
	DefaultAttempts        = 8
	DefaultBackoff         = time.Second
	DefaultMaxBackoff      = 60 * time.Second
)

// Config tunes an Exporter. Zero fields take the defaults above; Dir and Key are
// required.
type Config struct {
	// Dir is the export folder (EXPORT_DIR; DefaultDir beside the database).
	Dir string
	// Key wraps each file's key.
	Key *MasterKey
	// Media also archives attachments into a ZIP (MATRIX_EXPORT_MEDIA).
	Media bool
	// MaxFileBytes is the largest attachment archived; MaxMediaBytes the most media
	// bytes in one export; DownloadTimeout bounds each attachment's download (retries
	// included). The RoomIO's HTTP client must not cut a download sooner: give it no
	// overall Timeout shorter than this one.
	MaxFileBytes    int64
	MaxMediaBytes   int64
	DownloadTimeout time.Duration
	// PageSize is the events asked for per history page.
	PageSize int
	// Attempts is how many times one homeserver call is tried when it answers 429 or
	// 5xx or cannot be reached; the wait starts at Backoff and doubles up to MaxBackoff
	// (longer when the homeserver asks for longer with retry_after_ms or Retry-After).
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Sleep waits between attempts; tests inject one that does not wait.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now stamps exported_at.
	Now func() time.Time
	// ChunkSize is the container's chunk size (tests make it small).
	ChunkSize int
	Logger    *slog.Logger
}

// Exporter writes a room's history, read through matrix.RoomIO, into encrypted files.
// It is safe for concurrent use by several exports (of different rooms).
type Exporter struct {
	io  matrix.RoomIO
	cfg Config
}

// New returns an Exporter reading through rio.
func New(rio matrix.RoomIO, cfg Config) (*Exporter, error) {
	if cfg.Dir == "" || cfg.Key == nil {
		return nil, errors.New("export: an export folder and a master key are required")
	}
	orDefault(&cfg.MaxFileBytes, DefaultMaxFileBytes)
	orDefault(&cfg.MaxMediaBytes, DefaultMaxMediaBytes)
	orDefault(&cfg.DownloadTimeout, DefaultDownloadTimeout)
	orDefault(&cfg.PageSize, DefaultPageSize)
	orDefault(&cfg.Attempts, DefaultAttempts)
	orDefault(&cfg.Backoff, DefaultBackoff)
	orDefault(&cfg.MaxBackoff, DefaultMaxBackoff)
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Exporter{io: rio, cfg: cfg}, nil
}

// orDefault sets *v to d unless it is positive.
func orDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Job is one export to run: the record's uuid (it names the files) and the room.
type Job struct {
	UUID     string
	RoomID   id.RoomID
	RoomName string
	// Progress, when set, is told the counts so far after each history page, so that the
	// caller can show an export moving; it runs on the export's goroutine.
	Progress func(messages, media int)
}

// Result is what a finished export reports for its record. Sizes are plaintext bytes
// (what a download delivers); the files on disk are larger by the header and 16 bytes
// per 64 KiB chunk.
type Result struct {
	MessageCount int
	MediaCount   int
	ExportFile   string // file name in the export folder
	ExportSize   int64
	MediaFile    string // "" when no attachment was archived (or media is off)
	MediaSize    int64
	KeyID        string // the master key that wrapped the files' keys
}

// Run exports job's room: every message, newest first, into the encrypted JSON file
// and, when media is on, its attachments into the encrypted ZIP. The files get their
// final names only once complete and synced; on any error nothing is left under them
// (an earlier attempt's complete files with the same names are replaced only by a
// complete new one).
func (e *Exporter) Run(ctx context.Context, job Job) (*Result, error) {
	if !validName(job.UUID) || job.RoomID == "" {
		return nil, fmt.Errorf("export: job needs a uuid and a room id (got %q, %q)", job.UUID, job.RoomID)
	}
	res := &Result{ExportFile: FileName(job.UUID, KindJSON), KeyID: e.cfg.Key.ID()}
	out, err := createSealed(e.cfg.Dir, res.ExportFile, e.cfg.Key, binding(job.UUID, KindJSON), e.cfg.ChunkSize)
	if err != nil {
		return nil, err
	}
	var media *mediaArchive
	if e.cfg.Media {
		media = &mediaArchive{e: e, job: job}
	}
	fail := func(err error) (*Result, error) {
		out.abort()
		media.abort()
		return nil, err
	}

	w := bufio.NewWriterSize(out, 32<<10)
	if err := writeHead(w, job, e.cfg.Now()); err != nil {
		return fail(err)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // formatted bodies are HTML: keep them readable
	from := ""
	for {
		page, err := e.history(ctx, job.RoomID, from)
		if err != nil {
			return fail(fmt.Errorf("export: read history of %s: %w", job.RoomID, err))
		}
		for _, evt := range page.Events {
			m, content := toMessage(evt)
			if m == nil {
				continue
			}
			if media != nil && isAttachment(evt, content) {
				if err := media.add(ctx, m, content); err != nil {
					return fail(err)
				}
			}
			if res.MessageCount > 0 {
				if err := w.WriteByte(','); err != nil {
					return fail(err)
				}
			}
			if err := enc.Encode(m); err != nil { // Encode ends each message with a newline
				return fail(fmt.Errorf("export: write message %s: %w", m.EventID, err))
			}
			res.MessageCount++
		}
		if job.Progress != nil {
			job.Progress(res.MessageCount, media.archived())
		}
		if page.End == "" {
			break
		}
		from = page.End
	}
	if media != nil {
		res.MediaCount = media.count
	}
	// The counts are known only now: they follow the array (JSON objects are unordered).
	if _, err := fmt.Fprintf(w, "],\"message_count\":%d,\"media_count\":%d}\n", res.MessageCount, res.MediaCount); err != nil {
		return fail(err)
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if media != nil && media.count > 0 {
		if res.MediaSize, err = media.commit(); err != nil {
			return fail(err)
		}
		res.MediaFile = media.name
	} else {
		media.abort()
	}
	res.ExportSize = out.cw.Size()
	if err := out.commit(); err != nil {
		return nil, err
	}
	e.cfg.Logger.InfoContext(ctx, "history exported", "export", job.UUID, "room_id", string(job.RoomID),
		"messages", res.MessageCount, "media", res.MediaCount, "bytes", res.ExportSize+res.MediaSize)
	return res, nil
}

// writeHead writes the document's opening up to the messages array.
func writeHead(w io.Writer, job Job, at time.Time) error {
	roomID, err := json.Marshal(job.RoomID)
	if err != nil {
		return err
	}
	name, err := json.Marshal(job.RoomName)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "{\"room_id\":%s,\"room_name\":%s,\"exported_at\":%q,\"messages\":[\n",
		roomID, name, at.UTC().Format(timeFormat))
	return err
}

// timeFormat is RFC 3339 in UTC with milliseconds, the precision of Matrix timestamps.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// history reads one page, retrying what the homeserver says is worth retrying.
func (e *Exporter) history(ctx context.Context, roomID id.RoomID, from string) (*matrix.HistoryPage, error) {
	var page *matrix.HistoryPage
	err := e.retry(ctx, func(ctx context.Context) error {
		var err error
		page, err = e.io.History(ctx, roomID, from, e.cfg.PageSize)
		return err
	})
	return page, err
}

// retry calls fn until it succeeds, fails for good, or Attempts are spent.
func (e *Exporter) retry(ctx context.Context, fn func(ctx context.Context) error) error {
	delay := e.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		asked, ok := retryable(err)
		if !ok || attempt >= e.cfg.Attempts || ctx.Err() != nil {
			return err
		}
		wait := min(max(delay, asked), e.cfg.MaxBackoff)
		e.cfg.Logger.DebugContext(ctx, "homeserver busy, retrying", "attempt", attempt, "wait", wait, "reason", matrix.Reason(err))
		if err := e.cfg.Sleep(ctx, wait); err != nil {
			return err
		}
		delay = min(2*delay, e.cfg.MaxBackoff)
	}
}

// retryable reports whether err is worth another attempt (429, 5xx, homeserver not
// reachable) and how long the homeserver asked us to wait (0 = no wish).
func retryable(err error) (time.Duration, bool) {
	var httpErr mautrix.HTTPError
	if errors.As(err, &httpErr) && httpErr.Response != nil {
		code := httpErr.Response.StatusCode
		if code != http.StatusTooManyRequests && code < 500 {
			return 0, false
		}
		var asked time.Duration
		if httpErr.RespError != nil {
			if ms, ok := httpErr.RespError.ExtraData["retry_after_ms"].(float64); ok && ms > 0 {
				asked = time.Duration(ms) * time.Millisecond
			}
		}
		if s, err := strconv.Atoi(httpErr.Response.Header.Get("Retry-After")); err == nil && s > 0 {
			asked = max(asked, time.Duration(s)*time.Second)
		}
		return asked, true
	}
	return 0, matrix.Unreachable(err)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Message is one entry of an export's "messages" array. Which events are messages:
//   - m.room.message, every msgtype (text, notice, emote, media, location...), edits
//     included (each edit is its own entry, with relates_to m.replace and new_content);
//   - m.sticker (listed with its url; stickers are not archived as media);
//   - m.room.encrypted that could not be decrypted (listed with encrypted: true and no
//     body, so that the record shows a message was there);
//   - a redacted message keeps its entry with redacted: true and no content.
//
// Not messages: state events (membership, name, topic, power levels...), the
// m.room.redaction events themselves (the redacted message carries the mark), reactions,
// receipts, calls and polls.
type Message struct {
	EventID       id.EventID  `json:"event_id"`
	Sender        id.UserID   `json:"sender"`
	Timestamp     string      `json:"timestamp"` // RFC 3339, UTC, milliseconds
	Type          string      `json:"type"`
	MsgType       string      `json:"msgtype,omitempty"`
	Body          string      `json:"body"`
	Format        string      `json:"format,omitempty"`
	FormattedBody string      `json:"formatted_body,omitempty"`
	RelatesTo     *Relation   `json:"relates_to,omitempty"`
	NewContent    *NewContent `json:"new_content,omitempty"`
	Redacted      bool        `json:"redacted,omitempty"`
	Encrypted     bool        `json:"encrypted,omitempty"`
	// Attachments and stickers.
	URL      string `json:"url,omitempty"`
	FileName string `json:"file_name,omitempty"`
	MimeType string `json:"mimetype,omitempty"`
	Size     int    `json:"size,omitempty"`
	// MediaFile is the attachment's entry in the media ZIP; MediaError says why it is not
	// there (over a limit, download failed). Both are empty when media is off.
	MediaFile  string `json:"media_file,omitempty"`
	MediaError string `json:"media_error,omitempty"`
}

// Relation is a message's m.relates_to in Matrix's own shape: a reply has
// m.in_reply_to, an edit rel_type m.replace and the edited event, a thread message
// rel_type m.thread (and is_falling_back when its m.in_reply_to is only a fallback).
type Relation struct {
	RelType       string     `json:"rel_type,omitempty"`
	EventID       id.EventID `json:"event_id,omitempty"`
	InReplyTo     *InReplyTo `json:"m.in_reply_to,omitempty"`
	IsFallingBack bool       `json:"is_falling_back,omitempty"`
}

// InReplyTo names the event a reply answers.
type InReplyTo struct {
	EventID id.EventID `json:"event_id"`
}

// NewContent is an edit's replacement text (m.new_content).
type NewContent struct {
	MsgType       string `json:"msgtype,omitempty"`
	Body          string `json:"body"`
	Format        string `json:"format,omitempty"`
	FormattedBody string `json:"formatted_body,omitempty"`
}

// toMessage turns an event into its export entry, or nil when the event is not a
// message (see Message). content is the parsed message content, nil when there is none.
func toMessage(evt *event.Event) (*Message, *event.MessageEventContent) {
	if evt.StateKey != nil {
		return nil, nil
	}
	m := &Message{
		EventID:   evt.ID,
		Sender:    evt.Sender,
		Timestamp: time.UnixMilli(evt.Timestamp).UTC().Format(timeFormat),
		Type:      evt.Type.Type,
	}
	switch evt.Type {
	case event.EventMessage, event.EventSticker:
	case event.EventEncrypted:
		m.Encrypted = true
		return m, nil
	default:
		return nil, nil
	}
	if evt.Unsigned.RedactedBecause != nil {
		m.Redacted = true
		return m, nil
	}
	content, _ := evt.Content.Parsed.(*event.MessageEventContent)
	if content == nil {
		// Content the parser refused (malformed): keep what the event says it is.
		return m, nil
	}
	m.MsgType = string(content.MsgType)
	m.Body = content.Body
	if content.FormattedBody != "" {
		m.Format = string(content.Format)
		m.FormattedBody = content.FormattedBody
	}
	if rel := content.RelatesTo; rel != nil && (rel.Type != "" || rel.InReplyTo != nil) {
		m.RelatesTo = &Relation{RelType: string(rel.Type), EventID: rel.EventID, IsFallingBack: rel.IsFallingBack}
		if rel.InReplyTo != nil && rel.InReplyTo.EventID != "" {
			m.RelatesTo.InReplyTo = &InReplyTo{EventID: rel.InReplyTo.EventID}
		}
	}
	if nc := content.NewContent; nc != nil && m.RelatesTo != nil && m.RelatesTo.RelType == string(event.RelReplace) {
		m.NewContent = &NewContent{MsgType: string(nc.MsgType), Body: nc.Body}
		if nc.FormattedBody != "" {
			m.NewContent.Format = string(nc.Format)
			m.NewContent.FormattedBody = nc.FormattedBody
		}
	}
	if content.URL != "" || content.File != nil || evt.Type == event.EventSticker {
		m.URL = string(content.URL)
		if content.File != nil {
			m.URL = string(content.File.URL)
		}
		m.FileName = content.GetFileName()
		if content.Info != nil {
			m.MimeType = content.Info.MimeType
			m.Size = content.Info.Size
		}
	}
	return m, content
}
