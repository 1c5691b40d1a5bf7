package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"matrixas/db"
	"matrixas/exports"
	"matrixas/handlers/respond"
	"matrixas/views"
)

// Exports queues history exports (exports.Job in production).
type Exports interface {
	Request(ctx context.Context, room *db.Room) (*db.HistoryExport, bool, error)
}

var _ Exports = (*exports.Job)(nil)

// roomExportsShown is how many of a room's exports its page lists.
const roomExportsShown = 5

func exportRow(e *db.HistoryExport) views.ExportRow {
	row := views.ExportRow{UUID: e.UUID, RoomUUID: e.RoomUUID, RoomName: e.RoomName, RoomID: e.RoomID.String(), Type: string(e.Type),
		State: string(e.State), MessageCount: e.MessageCount, MediaCount: e.MediaCount, ErrorMessage: e.ErrorMessage,
		Attempts: e.Attempts, CreatedAt: e.CreatedAt, StartedAt: e.StartedAt, CompletedAt: e.CompletedAt}
	if e.State == db.ExportCompleted {
		if e.ExportFile != "" {
			row.ExportURL, row.ExportSize = respond.ExportDownloadPath(e.UUID, respond.ExportFileJSON), e.ExportSize
		}
		if e.MediaFile != "" {
			row.MediaURL, row.MediaSize = respond.ExportDownloadPath(e.UUID, respond.ExportFileMedia), e.MediaSize
		}
	}
	return row
}

// ExportsPage is GET /exports: every history export, newest first, filtered by room,
// state and type. htmx requests aimed at the table (filters, pages, polling while one
// runs) get only the table.
func (h *Handler) ExportsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, errs := respond.ExportFilter(r)
	d := views.ExportsData{Page: h.page(w, r, "Exports", "exports"),
		Daily: h.ExportsDaily, DailyHour: h.ExportsHour, Retention: h.ExportsRetentionDays}
	if len(errs) > 0 {
		// A hand-edited URL: say so and show every export rather than failing.
		d.FilterError = "Ignored a filter that is not valid: " + errs.First("room_uuid") + errs.First("state") + errs.First("export_type")
		f = db.ExportFilter{}
	}
	d.RoomUUID, d.State, d.Type = f.RoomUUID, string(f.State), string(f.Type)
	if f.RoomUUID != "" {
		if room, err := h.Store.RoomByUUID(ctx, f.RoomUUID); err == nil {
			d.RoomName = room.ProjectName
		}
	}
	page := pageNumber(r.URL.Query())
	f.Page = db.Page{Number: page, Size: uiPageSize}
	list, total, err := h.Store.ListExports(ctx, f)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	for _, e := range list {
		d.Rows = append(d.Rows, exportRow(e))
		if d.RoomUUID != "" && d.RoomName == "" {
			d.RoomName = e.RoomName // a deleted room: its name as exported
		}
	}
	d.Self = views.ExportsLink(d.RoomUUID, d.State, d.Type, page)
	d.Pager = views.Pager{Page: page, PageSize: uiPageSize, Total: total, Target: "#exports-table",
		Link: func(n int) string { return views.ExportsLink(d.RoomUUID, d.State, d.Type, n) }}
	w.Header().Set("Vary", "HX-Request")
	if htmxTarget(r) == "exports-table" {
		pushCleanURL(w, r, d.Self)
		respond.Render(w, r, views.ExportsTable(d))
		return
	}
	respond.Render(w, r, views.ExportsPage(d))
}

// roomExports builds a room's exports section: its newest exports and whether it can be
// exported.
func (h *Handler) roomExports(ctx context.Context, room *db.Room) (views.RoomExportsData, error) {
	d := views.RoomExportsData{RoomUUID: room.UUID, RoomName: room.ProjectName, CanExport: room.RoomID != ""}
	if !d.CanExport {
		d.NoExportReason = "The room does not exist on the homeserver yet: there is no history to export."
	}
	list, total, err := h.Store.ListExports(ctx, db.ExportFilter{RoomUUID: room.UUID, Page: db.Page{Number: 1, Size: roomExportsShown}})
	if err != nil {
		return d, err
	}
	d.Total = total
	for _, e := range list {
		d.Rows = append(d.Rows, exportRow(e))
	}
	return d, nil
}

// RoomExports is GET /rooms/{uuid}/exports: the room's exports section, which htmx
// polls while an export runs. A browser without htmx is sent to the Exports page,
// filtered to the room.
func (h *Handler) RoomExports(w http.ResponseWriter, r *http.Request) {
	room, ok := respond.FromPath(w, r, h.Store.RoomByUUID)
	if !ok {
		return
	}
	if !isHTMX(r) {
		http.Redirect(w, r, views.ExportsLink(room.UUID, "", "", 1), http.StatusSeeOther)
		return
	}
	d, err := h.roomExports(r.Context(), room)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	respond.Render(w, r, views.RoomExportsSection(d))
}

// RoomExportHistory is POST /rooms/{uuid}/export_history, the "Export history" button:
// it queues a manual export through the same rules as the API. htmx gets the room's
// exports section and a flash; a plain form is redirected back to next.
func (h *Handler) RoomExportHistory(w http.ResponseWriter, r *http.Request) {
	id, next, ok := h.roomForm(w, r)
	if !ok {
		return
	}
	room, err := h.Store.RoomByUUID(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		h.uiFail(w, r, http.StatusNotFound, "There is no such room.")
		return
	}
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	kind, msg, status := views.FlashSuccess, "", http.StatusOK
	_, created, err := h.Exports.Request(r.Context(), room)
	switch {
	case errors.Is(err, exports.ErrNoMatrixRoom):
		kind, status = views.FlashError, http.StatusConflict
		msg = fmt.Sprintf("The room of %s does not exist on the homeserver yet: there is no history to export.", room.ProjectName)
	case errors.Is(err, exports.ErrTooManyExports):
		kind, status = views.FlashError, http.StatusTooManyRequests
		msg = fmt.Sprintf("The room of %s had %d manual exports in the last 24 hours, the most allowed: download one of them, or try again later.",
			room.ProjectName, exports.ManualLimit)
	case err != nil:
		h.uiServerError(w, r, err)
		return
	case created:
		msg = fmt.Sprintf("History export of %s queued: it is listed below, with its download once it is done.", room.ProjectName)
	default:
		kind = views.FlashInfo
		msg = fmt.Sprintf("An export of %s is already waiting to run: it is listed below.", room.ProjectName)
	}
	if !isHTMX(r) {
		h.redirectFlash(w, r, next, kind, msg)
		return
	}
	if status != http.StatusOK {
		h.uiFail(w, r, status, msg)
		return
	}
	d, err := h.roomExports(r.Context(), room)
	if err != nil {
		h.uiServerError(w, r, err)
		return
	}
	h.renderFragments(w, r, views.RoomExportsSection(d), views.FlashesOOB([]views.Flash{{Kind: kind, Message: msg}}))
}
