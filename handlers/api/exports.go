package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/export"
	"matrixas/exports"
	"matrixas/handlers/respond"
)

// Exports is what the API does with history exports: queue one and open a finished
// file. exports.Job is the production one.
type Exports interface {
	Request(ctx context.Context, room *db.Room) (*db.HistoryExport, bool, error)
	Open(e *db.HistoryExport, kind string) (*export.Plaintext, error)
}

var _ Exports = (*exports.Job)(nil)

// ExportJSON is a history export in the exports API.
type ExportJSON struct {
	UUID         string    `json:"uuid"`
	Room         *string   `json:"room"` // null once the room's record is deleted
	RoomID       id.RoomID `json:"room_id"`
	RoomName     string    `json:"room_name"`
	ExportType   string    `json:"export_type"`
	State        string    `json:"state"`
	MessageCount int       `json:"message_count"`
	MediaCount   int       `json:"media_count"`
	ErrorMessage string    `json:"error_message"`
	// ExportFile and MediaFile are the download URLs, null when there is no such file;
	// the sizes are what a download delivers.
	ExportFile     *string `json:"export_file"`
	ExportFileSize int64   `json:"export_file_size"`
	MediaFile      *string `json:"media_file"`
	MediaFileSize  int64   `json:"media_file_size"`
	Attempts       int     `json:"attempts"`
	StartedAt      *string `json:"started_at"`
	CompletedAt    *string `json:"completed_at"`
	Created        *string `json:"created"`
}

// exportJSON is the API view of an export; download URLs are absolute, like the
// reference API's file fields.
func (h *Handler) exportJSON(r *http.Request, e *db.HistoryExport) ExportJSON {
	out := ExportJSON{UUID: e.UUID, RoomID: e.RoomID, RoomName: e.RoomName, ExportType: string(e.Type), State: string(e.State),
		MessageCount: e.MessageCount, MediaCount: e.MediaCount, ErrorMessage: e.ErrorMessage, Attempts: e.Attempts,
		StartedAt: apiTime(e.StartedAt), CompletedAt: apiTime(e.CompletedAt), Created: apiTime(e.CreatedAt)}
	if e.RoomUUID != "" {
		out.Room = &e.RoomUUID
	}
	if e.State == db.ExportCompleted {
		if e.ExportFile != "" {
			u := h.absURL(r, respond.ExportDownloadPath(e.UUID, respond.ExportFileJSON))
			out.ExportFile, out.ExportFileSize = &u, e.ExportSize
		}
		if e.MediaFile != "" {
			u := h.absURL(r, respond.ExportDownloadPath(e.UUID, respond.ExportFileMedia))
			out.MediaFile, out.MediaFileSize = &u, e.MediaSize
		}
	}
	return out
}

// ExportHistory is POST /api/matrix-rooms/{uuid}/export_history/: queues a manual
// export of the room (202 with it), or answers the one already waiting (200). A room
// without a Matrix room is 409; the 11th manual export of a room in 24 hours is 429.
func (h *Handler) ExportHistory(w http.ResponseWriter, r *http.Request) {
	room, ok := h.roomFromPath(w, r)
	if !ok {
		return
	}
	e, created, err := h.Exports.Request(r.Context(), room)
	switch {
	case errors.Is(err, exports.ErrNoMatrixRoom):
		respond.JSON(w, http.StatusConflict, map[string]string{
			"detail": "The room has no Matrix room yet (state " + string(room.State) + "), so there is no history to export.",
			"state":  string(room.State),
		})
		return
	case errors.Is(err, exports.ErrTooManyExports):
		retry := time.Hour // a limit error without its wait: a guess, never 0
		var le *exports.LimitError
		if errors.As(err, &le) {
			retry = le.RetryAfter
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
		respond.DetailError(w, http.StatusTooManyRequests, fmt.Sprintf(
			"This room had %d manual exports in the last 24 hours, the most allowed; download one of them, or try again later.", exports.ManualLimit))
		return
	case err != nil:
		respond.ServerError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
	}
	respond.JSON(w, status, h.exportJSON(r, e))
}

// ListExports is GET /api/matrix-exports/: newest first, paginated; ?room_uuid=,
// ?state= and ?export_type= filter.
func (h *Handler) ListExports(w http.ResponseWriter, r *http.Request) {
	f, errs := respond.ExportFilter(r)
	if len(errs) > 0 {
		respond.JSON(w, http.StatusBadRequest, errs)
		return
	}
	serveList(h, w, r, func(p db.Page) ([]*db.HistoryExport, int, error) {
		f.Page = p
		return h.Store.ListExports(r.Context(), f)
	}, func(e *db.HistoryExport) ExportJSON { return h.exportJSON(r, e) })
}

// GetExport is GET /api/matrix-exports/{uuid}/.
func (h *Handler) GetExport(w http.ResponseWriter, r *http.Request) {
	e, ok := respond.FromPath(w, r, h.Store.ExportByUUID)
	if !ok {
		return
	}
	respond.JSON(w, http.StatusOK, h.exportJSON(r, e))
}

// DownloadExport is GET /api/matrix-exports/{uuid}/download/export/: the decrypted JSON
// document as an attachment.
func (h *Handler) DownloadExport(w http.ResponseWriter, r *http.Request) {
	h.download(w, r, export.KindJSON)
}

// DownloadExportMedia is GET /api/matrix-exports/{uuid}/download/media/: the decrypted
// media ZIP as an attachment; 404 for an export without one.
func (h *Handler) DownloadExportMedia(w http.ResponseWriter, r *http.Request) {
	h.download(w, r, export.KindMedia)
}

// download streams a file of a completed export. The whole file is checked before the
// first byte goes out, so a file that fails its check is a 409, never a partial answer.
func (h *Handler) download(w http.ResponseWriter, r *http.Request, kind string) {
	e, ok := respond.FromPath(w, r, h.Store.ExportByUUID)
	if !ok {
		return
	}
	p, err := h.Exports.Open(e, kind)
	switch {
	case errors.Is(err, exports.ErrNoFile):
		msg := "This export has no file to download: it is " + string(e.State) + "."
		if kind == export.KindMedia && e.State == db.ExportCompleted {
			msg = "This export has no media archive: media export was off, or the room had no attachment to archive."
		}
		respond.DetailError(w, http.StatusNotFound, msg)
		return
	case errors.Is(err, export.ErrIntegrity):
		respond.RecordError(r, err)
		respond.DetailError(w, http.StatusConflict,
			"The export's file failed its integrity check (it was changed, cut short, is missing, or was encrypted under another EXPORT_ENCRYPTION_KEY), so it is not served. docs/OPERATIONS.md says what to do.")
		return
	case err != nil:
		respond.ServerError(w, r, err)
		return
	}
	defer p.Close()
	// A large file over a slow link takes longer than the server's write timeout: give
	// it a minute plus a second per 64 KiB.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute + time.Duration(p.Size>>16)*time.Second))
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	if kind == export.KindMedia {
		hd.Set("Content-Type", "application/zip")
	}
	hd.Set("Content-Disposition", `attachment; filename="`+ExportFileName(e, kind)+`"`)
	hd.Set("Content-Length", strconv.FormatInt(p.Size, 10))
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if n, err := io.Copy(w, p); err != nil {
		// The status is sent: the client sees a body shorter than Content-Length.
		respond.RecordError(r, fmt.Errorf("download of export %s stopped after %d of %d bytes: %w", e.UUID, n, p.Size, err))
	}
}

// ExportFileName is the name a downloaded file gets: the room's name made safe (ASCII
// letters, digits and dashes), the day it was taken and the start of the export's uuid,
// e.g. matrix-history-apollo-2026-05-01-3f9c0a1b.json.
func ExportFileName(e *db.HistoryExport, kind string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(e.RoomName) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == "" {
		name = "room"
	}
	day := e.CompletedAt
	if day.IsZero() {
		day = e.CreatedAt
	}
	base := "matrix-history-" + name + "-" + day.UTC().Format("2006-01-02") + "-" + e.UUID[:min(8, len(e.UUID))]
	if kind == export.KindMedia {
		return base + "-media.zip"
	}
	return base + ".json"
}

// absURL is path on this server as a client reaches it: under PUBLIC_URL when
// configured, else the request's host.
func (h *Handler) absURL(r *http.Request, path string) string {
	base := h.PublicURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return strings.TrimRight(base, "/") + path
}
