// Package fakewaldur is a fake Waldur platform on httptest for the test suite and the
// benchmark: an in-memory directory (customers, projects, users, role grants, orders,
// resources, web hooks) that tests change, served through the platform's REST API with
// its paging (page, page_size capped at 300, Link and X-Result-Count), its filters and
// its field selection.
//
// Every request and every answer is checked against the platform's API description
// (waldur-api-subset.yaml, with kin-openapi): a request to an undescribed path, with an
// undescribed query parameter or a bad value, or an answer that does not match its
// schema fails the test. So a client tested against the fake can only rely on what the
// real API has.
//
// Faults are injected per request (Inject): a 429 with Retry-After, a 5xx in the middle
// of a listing, a malformed page, a slow answer, a change between two pages; the token
// can be expired (ExpireToken). The fake counts requests per described path.
//
// Changes made through its methods (Grant, Revoke, RemoveProject, UpdateUser...) post
// the events the platform would to the hooks registered through its API, as JSON or
// form-encoded, the way the platform encodes them; Post sends any event to any URL.
package fakewaldur

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TB is what the fake needs of a test or benchmark (testing.T and testing.B have it):
// Errorf for a request or answer that breaks the API description (from the server's
// goroutines), Fatalf when it cannot start, Cleanup to stop.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// maxPageSize is the platform's cap on page_size.
const maxPageSize = 300

// Server is a running fake platform. Its methods are safe for concurrent use.
type Server struct {
	// URL is the platform's base URL (http://127.0.0.1:port), to give a client.
	URL string
	// Token is the API token the fake accepts as "Authorization: Token <Token>".
	Token string

	t    TB
	spec *spec
	srv  *httptest.Server
	hc   *http.Client // posts events to hooks

	mu         sync.Mutex
	p          *platform
	faults     []*Fault
	tokenErr   string // "" while the token is accepted, else the 401 detail
	counts     map[string]int
	validate   bool
	deliver    bool
	events     []Event
	deliveries []Delivery
}

// New starts a fake platform with an empty directory; it stops when the test ends.
func New(t TB) *Server {
	t.Helper()
	sp, err := loadSpec()
	if err != nil {
		t.Fatalf("%v", err)
	}
	var tok [20]byte
	_, _ = rand.Read(tok[:])
	s := &Server{
		Token:    hex.EncodeToString(tok[:]),
		t:        t,
		spec:     sp,
		p:        newPlatform(time.Now()),
		counts:   map[string]int{},
		validate: true,
		deliver:  true,
		hc: &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Fault is a misbehaviour for the requests it matches. Path is a described path
// ("/api/projects/", "/api/projects/{uuid}/"; empty matches any) and Page the page
// number asked (1 for a request without page; 0 matches any). It hits Times requests
// (0 means 1), then is gone.
type Fault struct {
	Path  string
	Page  int
	Times int

	// Delay holds the answer this long first (a slow platform); the client's timeout
	// or cancellation ends the wait.
	Delay time.Duration
	// Before runs before the answer is made (a change between two pages).
	Before func()
	// Status answers this status with a {"detail"} body instead (429, 500, 502, 401...).
	Status int
	// RetryAfter is the Retry-After header sent with Status: seconds or an HTTP date.
	RetryAfter string
	// Body answers 200 with this body instead (a malformed page). Neither it nor a
	// Status answer is checked against the description.
	Body string
}

// Inject queues a fault; faults are matched in the order injected.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times <= 0 {
		f.Times = 1
	}
	s.faults = append(s.faults, &f)
}

// ExpireToken makes every request answer 401 "Token has expired." until RestoreToken.
func (s *Server) ExpireToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenErr = "Token has expired."
}

// RestoreToken accepts the token again.
func (s *Server) RestoreToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenErr = ""
}

// Requests returns how many requests reached a described path ("/api/projects/",
// "/api/projects/{uuid}/"), whatever their answer; "" counts all.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if path == "" {
		n := 0
		for _, c := range s.counts {
			n += c
		}
		return n
	}
	return s.counts[path]
}

// ResetRequests sets the request counts back to zero.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
}

// SetValidation turns the check of answers against the description on or off. It is on
// by default and stays on in tests; the benchmark turns it off to time the client, not
// the checker, after checking the same answers in the tests.
func (s *Server) SetValidation(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.validate = on
}

// Now is the fake platform's clock: every change advances it a microsecond.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.clock
}

// Advance moves the platform's clock forward.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.clock = s.p.clock.Add(d)
}

// Generate adds a platform of the given scale (the benchmark's 10,000 projects, 50,000
// users, 150,000 grants), built from indices without events.
func (s *Server) Generate(sc Scale) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.generate(sc)
}

// ServeHTTP answers one API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, params := s.spec.match(r.URL.Path)
	if rt == nil {
		s.t.Errorf("fakewaldur: %s %s: the API description has no such path", r.Method, r.URL.Path)
		writeDetail(w, http.StatusNotFound, "Not found.")
		return
	}
	op := rt.item.GetOperation(r.Method)
	page := 1
	if v := r.URL.Query().Get("page"); v != "" {
		page, _ = strconv.Atoi(v)
	}
	s.mu.Lock()
	s.counts[rt.template]++
	fault := s.takeFault(rt.template, page)
	tokenErr := s.tokenErr
	s.mu.Unlock()
	if op == nil {
		s.t.Errorf("fakewaldur: %s %s: the API description has no such operation", r.Method, rt.template)
		writeDetail(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method \"%s\" not allowed.", r.Method))
		return
	}
	in, err := s.spec.validateRequest(r.Context(), r, rt, op, params)
	if err != nil {
		s.t.Errorf("fakewaldur: %s %s: the request does not match the API description: %s", r.Method, rt.template, shorten(err))
		writeDetail(w, http.StatusBadRequest, "The request does not match the API description.")
		return
	}
	if detail := s.authenticate(r, tokenErr); detail != "" {
		writeDetail(w, http.StatusUnauthorized, detail)
		return
	}
	if fault != nil {
		if fault.Delay > 0 {
			t := time.NewTimer(fault.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if fault.Before != nil {
			fault.Before()
		}
		switch {
		case fault.Status != 0:
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			writeDetail(w, fault.Status, http.StatusText(fault.Status))
			return
		case fault.Body != "":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(fault.Body))
			return
		}
	}
	a := s.answer(r, rt.template, params)
	s.mu.Lock()
	validate := s.validate
	s.mu.Unlock()
	if validate {
		if err := s.spec.validateResponse(r.Context(), in, a.status, a.header, a.body); err != nil {
			s.t.Errorf("fakewaldur: %s %s: the %d answer does not match the API description: %s", r.Method, rt.template, a.status, shorten(err))
		}
	}
	for k, v := range a.header {
		w.Header()[k] = v
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// takeFault returns the first queued fault matching the request, using it up.
func (s *Server) takeFault(path string, page int) *Fault {
	for i, f := range s.faults {
		if (f.Path == "" || f.Path == path) && (f.Page == 0 || f.Page == page) {
			f.Times--
			if f.Times <= 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
			return f
		}
	}
	return nil
}

// authenticate returns the 401 detail for a request the platform would refuse.
func (s *Server) authenticate(r *http.Request, tokenErr string) string {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "Authentication credentials were not provided."
	}
	scheme, tok, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Token") || subtle.ConstantTimeCompare([]byte(tok), []byte(s.Token)) != 1 {
		return "Invalid token."
	}
	return tokenErr
}

// answer is a response made under the lock, sent after it.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func writeDetail(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b := appendString([]byte(`{"detail":`), detail)
	_, _ = w.Write(append(b, '}'))
}

func detailAnswer(status int, detail string) answer {
	b := appendString([]byte(`{"detail":`), detail)
	return answer{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: append(b, '}')}
}

// filtered returns the indices of the items match accepts, in list order (backwards
// when reverse). The result is kept per query until the platform changes, so that
// paging through 150,000 grants does not scan them all for every page; what is kept is
// indices, never answers.
func (p *platform) filtered(r *http.Request, n int, reverse bool, match func(i int) bool) []int32 {
	q := r.URL.Query()
	q.Del("page")
	q.Del("page_size")
	q.Del("field")
	key := r.URL.Path + "?" + q.Encode()
	if c, ok := p.lists[key]; ok && c.version == p.version {
		return c.idx
	}
	var idx []int32
	for k := 0; k < n; k++ {
		i := k
		if reverse {
			i = n - 1 - k
		}
		if match(i) {
			idx = append(idx, int32(i))
		}
	}
	if len(p.lists) >= 16 {
		clear(p.lists)
	}
	p.lists[key] = cachedList{version: p.version, idx: idx}
	return idx
}

// cachedList is a filtered list as of a platform version.
type cachedList struct {
	version uint64
	idx     []int32
}

// paging reads page and page_size as the platform does (default 10, at most 300).
func paging(q url.Values) (page, size int) {
	page, size = 1, 10
	if v, err := strconv.Atoi(q.Get("page")); err == nil {
		page = v
	}
	if v, err := strconv.Atoi(q.Get("page_size")); err == nil && v > 0 {
		size = min(v, maxPageSize)
	}
	return page, size
}

// listAnswer pages a list: X-Result-Count, a Link header with first/prev/next/last
// (absolute URLs, the other parameters kept), and the items written by each.
func (p *platform) listAnswer(r *http.Request, n int, reverse bool, match func(i int) bool, each func(w *objWriter, i int)) answer {
	q := r.URL.Query()
	page, size := paging(q)
	if page < 1 {
		return detailAnswer(http.StatusNotFound, "Invalid page.")
	}
	idx := p.filtered(r, n, reverse, match)
	last := max(1, (len(idx)+size-1)/size)
	if page > last {
		return detailAnswer(http.StatusNotFound, "Invalid page.")
	}
	lo := (page - 1) * size
	w := &objWriter{sel: selection(q)}
	w.b = append(w.b, '[')
	for k, i := range idx[lo:min(lo+size, len(idx))] {
		if k > 0 {
			w.b = append(w.b, ',')
		}
		each(w, int(i))
	}
	w.b = append(w.b, ']')
	h := http.Header{"Content-Type": {"application/json"}, "X-Result-Count": {strconv.Itoa(len(idx))}}
	link := func(p int, rel string) string {
		q.Set("page", strconv.Itoa(p))
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		return "<" + u.String() + `>; rel="` + rel + `"`
	}
	links := []string{link(1, "first")}
	if page > 1 {
		links = append(links, link(page-1, "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"))
	}
	links = append(links, link(last, "last"))
	h.Set("Link", strings.Join(links, ", "))
	return answer{status: http.StatusOK, header: h, body: w.b}
}

// selection is the set of fields a field= selection asks for; nil for all.
func selection(q url.Values) map[string]bool {
	fields := q["field"]
	if len(fields) == 0 {
		return nil
	}
	sel := make(map[string]bool, len(fields))
	for _, f := range fields {
		sel[f] = true
	}
	return sel
}

func objectAnswer(status int, write func(w *objWriter)) answer {
	w := &objWriter{}
	write(w)
	return answer{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: w.b}
}

// since reads a date-time filter ("changed at or after"); ok is false when absent.
func since(q url.Values, name string) (time.Time, bool) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

func boolParam(q url.Values, name string) (value, set bool) {
	v := q.Get(name)
	if v == "" {
		return false, false
	}
	b, err := strconv.ParseBool(v)
	return b, err == nil
}

// reversed reports whether an o= ordering asks for newest first. The fake keeps its
// lists in creation order; other orderings are served in that order.
func reversed(q url.Values) bool {
	return strings.HasPrefix(q.Get("o"), "-created")
}

// withTimeout bounds an event post.
func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
