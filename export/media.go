package export

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"matrixas/matrix"
)

// isAttachment reports whether evt carries a file to archive: an m.image, m.file,
// m.video or m.audio message with a url (or an encrypted file), not redacted.
func isAttachment(evt *event.Event, c *event.MessageEventContent) bool {
	if c == nil || evt.Type != event.EventMessage {
		return false
	}
	switch c.MsgType {
	case event.MsgImage, event.MsgFile, event.MsgVideo, event.MsgAudio:
		return c.URL != "" || c.File != nil
	}
	return false
}

// mediaArchive is an export's media ZIP, created on its first attachment. Each
// attachment is first downloaded into an encrypted spool file and enters the ZIP only
// once complete, so a download that fails half-way leaves no half entry; the ZIP entry
// is stored (media is mostly compressed already) with its CRC and sizes in its header.
type mediaArchive struct {
	e     *Exporter
	job   Job
	name  string
	file  *sealedFile
	zw    *zip.Writer
	count int   // entries archived
	total int64 // bytes archived
}

// add archives c's file and records the outcome on m (MediaFile, or MediaError when the
// file is over a limit or fails to download). The error is for failures that end the
// export: the context ended, the disk failed.
func (a *mediaArchive) add(ctx context.Context, m *Message, c *event.MessageEventContent) error {
	cfg := &a.e.cfg
	if c.File != nil {
		m.MediaError = "encrypted attachment: not archived"
		return nil
	}
	uri, err := id.ParseContentURI(string(c.URL))
	if err != nil || uri.IsEmpty() {
		m.MediaError = "invalid media URL"
		return nil
	}
	if c.Info != nil && int64(c.Info.Size) > cfg.MaxFileBytes {
		m.MediaError = "file over the per-file limit of " + formatBytes(cfg.MaxFileBytes)
		return nil
	}
	if c.Info != nil && a.total+int64(c.Info.Size) > cfg.MaxMediaBytes {
		m.MediaError = "over the per-export media limit of " + formatBytes(cfg.MaxMediaBytes)
		return nil
	}

	sp, err := newSpool(cfg.Dir)
	if err != nil {
		return err
	}
	defer sp.remove()
	size, crc, err := a.download(ctx, uri, sp)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var disk *spoolError
		if errors.As(err, &disk) {
			return disk.err
		}
		switch {
		case errors.Is(err, matrix.ErrTooLarge):
			m.MediaError = "file over the per-file limit of " + formatBytes(cfg.MaxFileBytes)
		case errors.Is(err, context.DeadlineExceeded):
			m.MediaError = "download timed out after " + cfg.DownloadTimeout.String()
		default:
			m.MediaError = "download failed: " + matrix.Reason(err)
		}
		return nil
	}
	if a.total+size > cfg.MaxMediaBytes {
		m.MediaError = "over the per-export media limit of " + formatBytes(cfg.MaxMediaBytes)
		return nil
	}

	if a.zw == nil {
		a.name = FileName(a.job.UUID, KindMedia)
		a.file, err = createSealed(cfg.Dir, a.name, cfg.Key, binding(a.job.UUID, KindMedia), cfg.ChunkSize)
		if err != nil {
			return err
		}
		a.zw = zip.NewWriter(a.file)
	}
	entry := EntryName(m.EventID, m.FileName)
	modified, _ := time.Parse(timeFormat, m.Timestamp)
	w, err := a.zw.CreateRaw(&zip.FileHeader{
		Name:               entry,
		Method:             zip.Store,
		Modified:           modified,
		CRC32:              crc,
		CompressedSize64:   uint64(size),
		UncompressedSize64: uint64(size),
	})
	if err != nil {
		return fmt.Errorf("export: add %s to the media archive: %w", entry, err)
	}
	r, err := sp.reader()
	if err != nil {
		return err
	}
	if n, err := io.Copy(w, r); err != nil || n != size {
		return fmt.Errorf("export: add %s to the media archive: %d of %d bytes: %v", entry, n, size, err)
	}
	m.MediaFile = entry
	a.count++
	a.total += size
	return nil
}

// download fetches uri into sp within the download timeout, retrying 429/5xx like the
// history, and returns its size and CRC-32.
func (a *mediaArchive) download(ctx context.Context, uri id.ContentURI, sp *spool) (int64, uint32, error) {
	cfg := &a.e.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.DownloadTimeout)
	defer cancel()
	var body io.ReadCloser
	err := a.e.retry(ctx, func(ctx context.Context) error {
		var err error
		body, err = a.e.io.Download(ctx, uri, cfg.MaxFileBytes)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	defer body.Close()
	h := crc32.NewIEEE()
	n, err := io.Copy(io.MultiWriter(sp, h), body)
	if err != nil {
		return 0, 0, err
	}
	return n, h.Sum32(), nil
}

// commit closes the ZIP and gives its file its final name; it returns the ZIP's size.
func (a *mediaArchive) commit() (int64, error) {
	if err := a.zw.Close(); err != nil {
		a.abort()
		return 0, fmt.Errorf("export: close media archive: %w", err)
	}
	size := a.file.cw.Size()
	if err := a.file.commit(); err != nil {
		return 0, err
	}
	a.file = nil
	return size, nil
}

// archived is the number of attachments archived so far; 0 on a nil archive (media off).
func (a *mediaArchive) archived() int {
	if a == nil {
		return 0
	}
	return a.count
}

// abort drops the unfinished archive; it is safe on a nil or empty archive.
func (a *mediaArchive) abort() {
	if a != nil && a.file != nil {
		a.file.abort()
		a.file = nil
	}
}

// EntryName is the ZIP entry of an attachment: "{event_id}_{file name}", both parts
// made safe for any unzip tool: no path separators, no "..", no control or
// Windows-reserved characters, at most 200 bytes of file name.
func EntryName(eventID id.EventID, fileName string) string {
	name := sanitize(fileName)
	if len(name) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut]
	}
	if name == "" {
		name = "file"
	}
	return sanitize(string(eventID)) + "_" + name
}

func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "_")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`/\:*?"<>|`, r) {
			return '_'
		}
		return r
	}, s)
	for strings.Contains(s, "..") {
		s = strings.ReplaceAll(s, "..", "_")
	}
	return strings.TrimSpace(s)
}

// formatBytes writes a limit the way staff configure it.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// spool is one attachment on its way into the ZIP: a temporary file in the export
// folder, encrypted under a key that lives only in memory, so that no attachment ever
// rests on disk in the clear; a crash leaves only an unreadable file that
// RemoveUnfinished deletes.
type spool struct {
	f  *os.File
	bw *bufio.Writer
	cw *Writer
	mk *MasterKey
}

// spoolError is a failure writing the spool (the disk), as opposed to downloading.
type spoolError struct{ err error }

func (e *spoolError) Error() string { return e.err.Error() }

func newSpool(dir string) (*spool, error) {
	var raw [keySize]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	mk, err := newMasterKey(raw[:])
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("export: create folder %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".spool"+tmpMarker+"*")
	if err != nil {
		return nil, fmt.Errorf("export: create spool file: %w", err)
	}
	sp := &spool{f: f, bw: bufio.NewWriterSize(f, 64<<10), mk: mk}
	if sp.cw, err = NewWriter(sp.bw, mk, "spool", 0); err != nil {
		sp.remove()
		return nil, err
	}
	return sp, nil
}

func (sp *spool) Write(p []byte) (int, error) {
	n, err := sp.cw.Write(p)
	if err != nil {
		return n, &spoolError{fmt.Errorf("export: write spool file: %w", err)}
	}
	return n, nil
}

// reader finishes writing and returns the decrypted content from the start.
func (sp *spool) reader() (io.Reader, error) {
	err := sp.cw.Close()
	if err == nil {
		err = sp.bw.Flush()
	}
	if err == nil {
		_, err = sp.f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return nil, fmt.Errorf("export: spool file: %w", err)
	}
	return NewReader(bufio.NewReaderSize(sp.f, 64<<10), sp.mk, "spool")
}

func (sp *spool) remove() {
	sp.f.Close()
	os.Remove(sp.f.Name())
}
