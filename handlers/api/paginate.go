package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"matrixas/db"
	"matrixas/handlers/respond"
)

// errInvalidPage is a page number that is not a positive whole number or lies past the
// last page; the reference API answers it 404 {"detail": "Invalid page."}.
const msgInvalidPage = "Invalid page."

// pageFrom reads ?page= and ?page_size= like the reference API's paginator: a page_size
// that is not a positive number is the default, one over the maximum is the maximum; a
// page that is not a positive number is refused (ok false).
func pageFrom(r *http.Request) (db.Page, bool) {
	q := r.URL.Query()
	p := db.Page{Number: 1, Size: db.DefaultPageSize}
	if s := q.Get("page_size"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			p.Size = min(n, db.MaxPageSize)
		}
	}
	if s := q.Get("page"); s != "" && s != "last" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return p, false
		}
		p.Number = n
	}
	return p, true
}

// lastPageRequested reports ?page=last, which needs the total to resolve.
func lastPageRequested(r *http.Request) bool { return r.URL.Query().Get("page") == "last" }

// writePage answers one page of a list: the items as a JSON array, the total in
// X-Result-Count and links to the neighbouring pages in Link (rel="next", rel="prev").
// A page past the last one (other than page 1 of an empty list) is 404 "Invalid page.".
func (h *Handler) writePage(w http.ResponseWriter, r *http.Request, p db.Page, total int, items any) {
	pages := max(1, (total+p.Size-1)/p.Size)
	if p.Number > pages {
		respond.DetailError(w, http.StatusNotFound, msgInvalidPage)
		return
	}
	var links []string
	if p.Number < pages {
		links = append(links, fmt.Sprintf(`<%s>; rel="next"`, h.pageURL(r, p.Number+1)))
	}
	if p.Number > 1 {
		links = append(links, fmt.Sprintf(`<%s>; rel="prev"`, h.pageURL(r, p.Number-1)))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	w.Header().Set("X-Result-Count", strconv.Itoa(total))
	respond.JSON(w, http.StatusOK, items)
}

// serveList answers a paginated list: list loads one page and the total, toJSON shapes
// each item.
func serveList[T, J any](h *Handler, w http.ResponseWriter, r *http.Request, list func(db.Page) ([]T, int, error), toJSON func(T) J) {
	var items []T
	p, total, ok := h.listPage(w, r, func(p db.Page) (int, error) {
		var total int
		var err error
		items, total, err = list(p)
		return total, err
	})
	if !ok {
		return
	}
	out := make([]J, 0, len(items))
	for _, it := range items {
		out = append(out, toJSON(it))
	}
	h.writePage(w, r, p, total, out)
}

// listPage resolves ?page=last once the total is known, and refuses a bad page number.
// load runs the query for a page and returns the total.
func (h *Handler) listPage(w http.ResponseWriter, r *http.Request, load func(db.Page) (int, error)) (db.Page, int, bool) {
	p, ok := pageFrom(r)
	if !ok {
		respond.DetailError(w, http.StatusNotFound, msgInvalidPage)
		return p, 0, false
	}
	total, err := load(p)
	if err != nil {
		respond.ServerError(w, r, err)
		return p, 0, false
	}
	if lastPageRequested(r) {
		p.Number = max(1, (total+p.Size-1)/p.Size)
		if total, err = load(p); err != nil {
			respond.ServerError(w, r, err)
			return p, 0, false
		}
	}
	return p, total, true
}

// pageURL is the request's absolute URL with ?page= set to n (other parameters kept),
// based on PUBLIC_URL when configured, else on the request's host.
func (h *Handler) pageURL(r *http.Request, n int) string {
	q := r.URL.Query()
	if n == 1 {
		q.Del("page")
	} else {
		q.Set("page", strconv.Itoa(n))
	}
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	return h.absURL(r, u.String())
}

// apiTime formats a timestamp for the API (RFC 3339, UTC); a zero time is null.
func apiTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}
