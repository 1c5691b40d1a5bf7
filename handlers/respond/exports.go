package respond

import (
	"fmt"
	"net/http"

	"matrixas/db"
)

// ExportFilter reads an exports list's ?room_uuid=, ?state= and ?export_type= (the API's
// list and the dashboard's Exports page); errs names a bad value.
func ExportFilter(r *http.Request) (db.ExportFilter, FieldErrors) {
	q := r.URL.Query()
	errs := FieldErrors{}
	var f db.ExportFilter
	if s := q.Get("room_uuid"); s != "" {
		u, ok := db.NormalizeUUID(s)
		if !ok {
			errs.Add("room_uuid", "Enter a valid UUID.")
		}
		f.RoomUUID = u
	}
	if s := q.Get("state"); s != "" {
		f.State = db.ExportState(s)
		if !f.State.Valid() {
			errs.Add("state", fmt.Sprintf("Select a valid choice. %s is not one of the available choices.", s))
		}
	}
	if s := q.Get("export_type"); s != "" {
		f.Type = db.ExportType(s)
		if !f.Type.Valid() {
			errs.Add("export_type", fmt.Sprintf("Select a valid choice. %s is not one of the available choices.", s))
		}
	}
	return f, errs
}

// Kinds of export file, as download paths name them.
const (
	ExportFileJSON  = "export"
	ExportFileMedia = "media"
)

// ExportDownloadPath is where a file of an export is downloaded: file is ExportFileJSON
// or ExportFileMedia. The API serves it; the dashboard links to it.
func ExportDownloadPath(uuid, file string) string {
	return "/api/matrix-exports/" + uuid + "/download/" + file + "/"
}
