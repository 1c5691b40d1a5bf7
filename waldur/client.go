package waldur

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// PageSize is the page size every list asks for: the platform's maximum, so a full
// listing of N items costs ceil(N/PageSize) requests.
const PageSize = 300

// Defaults for the zero values of Config.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultMaxAttempts    = 4
	DefaultMaxRetryAfter  = 2 * time.Minute
	DefaultUserAgent      = "matrixas"
)

// maxBodyBytes bounds one answer: a page of 300 full objects is well under 1 MiB, so
// anything near this is not a page.
const maxBodyBytes = 64 << 20

var (
	// ErrTokenRejected is a 401 or 403: the token is wrong, expired or lacks the
	// rights. It is never read as an empty platform.
	ErrTokenRejected = errors.New("token rejected")
	// ErrNotFound is a 404 for a single object (it does not exist, or no longer).
	ErrNotFound = errors.New("not found")
	// ErrRateLimited is a 429 that stayed after the retries, or whose Retry-After asks
	// for a longer wait than Config.MaxRetryAfter.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable is a 5xx that stayed after the retries.
	ErrUnavailable = errors.New("platform unavailable")
	// ErrRefused is any other 4xx: the platform refused the request as asked.
	ErrRefused = errors.New("request refused")
	// ErrMalformed is an answer that is not what the API describes: not JSON, not a
	// list where a list was asked for, a missing or invalid uuid, a Link that leaves
	// the platform or loops.
	ErrMalformed = errors.New("malformed answer")
	// ErrListChanged is a listing the platform changed under: its count shrank between
	// two pages, or fewer distinct items were read than it counts at the end. Pages are
	// offsets, so an item deleted ahead of the reader slides another past it, and an
	// item that exists may be missing. Nothing may be removed on such a listing; the
	// next run reads it again.
	ErrListChanged = errors.New("the list changed while it was read")
)

// Error is a failed request: which one, and why. Err is one of the Err* values above,
// or the network error when no answer came. The message never holds the token nor the
// query string.
type Error struct {
	Method string
	Path   string
	Status int    // 0 when no answer arrived
	Detail string // the platform's explanation, shortened
	// RetryAfter is what the last 429 or 5xx asked for (0 when it did not say).
	RetryAfter time.Duration
	Err        error
}

// Error reads "waldur: METHOD /path: reason (HTTP status: detail; retry after d)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("waldur: ")
	b.WriteString(e.Method)
	b.WriteByte(' ')
	b.WriteString(e.Path)
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d", e.Status)
		if e.Detail != "" {
			b.WriteString(": ")
			b.WriteString(e.Detail)
		}
		if e.RetryAfter > 0 {
			fmt.Fprintf(&b, "; retry after %s", e.RetryAfter)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Unwrap gives the reason, for errors.Is(err, ErrTokenRejected) and the like.
func (e *Error) Unwrap() error { return e.Err }

// Config is what a Client needs. URL and Token are required; the rest has defaults.
type Config struct {
	// URL is the platform's base URL, e.g. https://waldur.example.org (a trailing
	// "/api" or "/" is dropped: paths are joined as URL + "/api/...").
	URL string
	// Token is a staff or support user's API token, sent as "Authorization: Token ...".
	Token string
	// UserAgent names this server in the platform's logs (e.g. "matrixas/1.2.0").
	UserAgent string
	// HTTPClient, when set, is used as is; its transport owns connect timeouts. When nil
	// a client with DefaultConnectTimeout is built.
	HTTPClient *http.Client
	// RequestTimeout bounds each request, its whole body included.
	RequestTimeout time.Duration
	// MaxAttempts bounds the tries of one request (the first one included).
	MaxAttempts int
	// MaxRetryAfter is the longest Retry-After honoured; a longer one ends the request
	// with ErrRateLimited (or ErrUnavailable) instead of holding the run that long.
	MaxRetryAfter time.Duration
	// Backoff is the wait before retry n (1-based) when the answer did not say how
	// long; nil doubles from 500 ms up to 30 s, with jitter.
	Backoff func(retry int) time.Duration
	// Sleep waits d or until ctx ends; tests replace it to see the waits without
	// waiting. Nil uses a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for expirations and Retry-After dates; nil is time.Now.
	Now func() time.Time
	// Logger hears about retries; nil discards.
	Logger *slog.Logger
}

// Client calls one platform. It is safe for concurrent use.
type Client struct {
	base      *url.URL // scheme, host and path prefix (without a trailing slash)
	auth      string   // the Authorization header value
	userAgent string
	http      *http.Client
	timeout   time.Duration
	attempts  int
	maxWait   time.Duration
	backoff   func(int) time.Duration
	sleep     func(context.Context, time.Duration) error
	now       func() time.Time
	log       *slog.Logger

	requests atomic.Int64
	retries  atomic.Int64
}

// New checks cfg and returns a client. It makes no request.
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Token == "" {
		return nil, errors.New("waldur: the token is empty")
	}
	for _, r := range cfg.Token {
		if r <= ' ' || r == 0x7f {
			return nil, errors.New("waldur: the token holds a space or a control character")
		}
	}
	c := &Client{
		base:      base,
		auth:      "Token " + cfg.Token,
		userAgent: cfg.UserAgent,
		http:      cfg.HTTPClient,
		timeout:   cfg.RequestTimeout,
		attempts:  cfg.MaxAttempts,
		maxWait:   cfg.MaxRetryAfter,
		backoff:   cfg.Backoff,
		sleep:     cfg.Sleep,
		now:       cfg.Now,
		log:       cfg.Logger,
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.http == nil {
		c.http = NewHTTPClient(DefaultConnectTimeout)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultRequestTimeout
	}
	if c.attempts <= 0 {
		c.attempts = DefaultMaxAttempts
	}
	if c.maxWait <= 0 {
		c.maxWait = DefaultMaxRetryAfter
	}
	if c.backoff == nil {
		c.backoff = defaultBackoff
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// parseBaseURL accepts an absolute http(s) URL without query or fragment, and drops a
// trailing "/" and "/api" so that operators may give either form.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("waldur: the URL is not a URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("waldur: the URL must be absolute, http:// or https://")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("waldur: the URL must not hold credentials, a query or a fragment")
	}
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/api")
	u.RawPath = ""
	return u, nil
}

// NewHTTPClient returns the HTTP client New builds when Config.HTTPClient is nil:
// bounded connect and TLS time, kept-alive connections for paging. Request time is
// bounded by the Client itself, per request, body included.
func NewHTTPClient(connect time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         dialer.DialContext,
			TLSHandshakeTimeout: connect,
			MaxIdleConns:        8,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		// A redirect would carry the token to wherever it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// BaseURL is the platform URL the client calls, as normalised by New (for display).
func (c *Client) BaseURL() string { return c.base.String() }

// Stats counts what the client did since it was made.
type Stats struct {
	Requests int64 // requests sent, retries included
	Retries  int64
}

// Stats returns the request counters (a sync run reports the difference).
func (c *Client) Stats() Stats {
	return Stats{Requests: c.requests.Load(), Retries: c.retries.Load()}
}

// Fingerprint is how the token is shown: "sha256:" and the first 12 hex digits of its
// SHA-256, the same form the diagnostics use for the appservice tokens. Enough to tell
// two tokens apart, useless to call the platform with.
func Fingerprint(token string) string {
	if token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])[:12]
}

// endpoint is the absolute URL of an API path ("/api/projects/") with a query.
func (c *Client) endpoint(path string, q url.Values) string {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = q.Encode()
	return u.String()
}

// errBodyRead marks a failure while reading an answer's body (a reset connection, a
// timeout): the request may be tried again. A syntax error is not one.
type errBodyRead struct{ err error }

func (e errBodyRead) Error() string { return "reading the answer: " + e.err.Error() }
func (e errBodyRead) Unwrap() error { return e.err }

// do sends one request, retrying as the rules say, and hands a 2xx answer to read.
// read's error ends the request, except an errBodyRead, which is retried like a
// network failure. POST is retried only on 429 (the platform did not act on it): a
// 5xx or a lost answer may have created what it asked for.
func (c *Client) do(ctx context.Context, method, rawURL string, body []byte, read func(*http.Response) error) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return &Error{Method: method, Path: "?", Err: fmt.Errorf("%w: bad URL", ErrMalformed)}
	}
	fail := &Error{Method: method, Path: u.Path}
	idempotent := method != http.MethodPost
	for attempt := 1; ; attempt++ {
		status, wait, err := c.try(ctx, method, rawURL, body, read, fail)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			fail.Status, fail.Err = 0, ctx.Err()
			return fail
		}
		if !wait.retry || (!idempotent && status != http.StatusTooManyRequests) || attempt >= c.attempts {
			return fail
		}
		d := wait.after
		if d == 0 {
			d = c.backoff(attempt)
		} else if d > c.maxWait {
			return fail // the platform asks for longer than a run may hold
		}
		c.retries.Add(1)
		c.log.LogAttrs(ctx, slog.LevelWarn, "waldur: retrying",
			slog.String("method", method), slog.String("path", u.Path),
			slog.Int("status", status), slog.Int("attempt", attempt), slog.Duration("wait", d))
		if err := c.sleep(ctx, d); err != nil {
			fail.Status, fail.Err = 0, err
			return fail
		}
	}
}

// retryWait says whether a failed try may be repeated, and after how long the platform
// asked for (0: it did not say).
type retryWait struct {
	retry bool
	after time.Duration
}

// try is one attempt. It fills fail with what went wrong and returns the status seen.
func (c *Client) try(ctx context.Context, method, rawURL string, body []byte, read func(*http.Response) error, fail *Error) (int, retryWait, error) {
	*fail = Error{Method: fail.Method, Path: fail.Path}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		fail.Err = fmt.Errorf("%w: %v", ErrMalformed, err)
		return 0, retryWait{}, fail
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		fail.Err = transportError(err)
		return 0, retryWait{retry: true}, fail
	}
	defer func() {
		// Drain a little so the connection can be reused; a huge rest is not worth it.
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		resp.Body.Close()
	}()
	fail.Status = resp.StatusCode
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		err := read(resp)
		if err == nil {
			return s, retryWait{}, nil
		}
		var br errBodyRead
		if errors.As(err, &br) {
			fail.Err = transportError(br.err)
			return s, retryWait{retry: true}, fail
		}
		fail.Err = err
		return s, retryWait{}, fail
	case s >= 300 && s < 400:
		// Redirects are not followed: the token would go along.
		fail.Err, fail.Detail = ErrRefused, "the platform redirects"
		if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.Host != "" {
			fail.Detail += " to " + loc.Scheme + "://" + loc.Host + ": set the URL to where it points"
		}
		return s, retryWait{}, fail
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		fail.Detail, fail.Err = readDetail(resp.Body), ErrTokenRejected
		return s, retryWait{}, fail
	case s == http.StatusNotFound:
		fail.Detail, fail.Err = readDetail(resp.Body), ErrNotFound
		return s, retryWait{}, fail
	case s == http.StatusTooManyRequests || s >= 500:
		fail.Detail, fail.RetryAfter = readDetail(resp.Body), c.retryAfter(resp.Header.Get("Retry-After"))
		fail.Err = ErrUnavailable
		if s == http.StatusTooManyRequests {
			fail.Err = ErrRateLimited
		}
		return s, retryWait{retry: true, after: fail.RetryAfter}, fail
	default:
		fail.Detail, fail.Err = readDetail(resp.Body), ErrRefused
		return s, retryWait{}, fail
	}
}

// transportError drops the URL a *url.Error carries: its query may hold a secret.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date. Unreadable or
// past values are 0 (the backoff decides).
func (c *Client) retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	if d := t.Sub(c.now()); d > 0 {
		return d
	}
	return 0
}

// readDetail returns the "detail" of a DRF error body (or the start of any other body),
// shortened and on one line, for error messages.
func readDetail(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	var d struct {
		Detail string `json:"detail"`
	}
	s := string(b)
	if unmarshalLoose(b, &d) == nil && d.Detail != "" {
		s = d.Detail
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func defaultBackoff(retry int) time.Duration {
	d := 500 * time.Millisecond << min(retry-1, 6)
	d = min(d, 30*time.Second)
	return d/2 + rand.N(d/2+1) // jitter, so clients that failed together do not retry together
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
