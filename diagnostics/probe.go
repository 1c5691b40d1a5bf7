package diagnostics

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/matrix"
	"matrixas/settings"
)

// maxBody caps what a probe reads of an answer: diagnostics only need small JSON bodies.
const maxBody = 1 << 20

// newHTTPClient returns the client for probes. Connections are not reused, so every run
// measures a real connect.
func newHTTPClient(connect, request time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: connect}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   connect,
			ResponseHeaderTimeout: request,
			DisableKeepAlives:     true,
		},
		// A redirect is an answer worth reporting, not something to follow blindly
		// with an Authorization header.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// result is one probe's outcome: either a transport error or an HTTP answer.
type result struct {
	err     error
	status  int
	header  http.Header
	body    []byte
	elapsed time.Duration
}

// matrixError is the Matrix error body; Status and Body are set by M_BAD_STATUS.
type matrixError struct {
	ErrCode string `json:"errcode"`
	Error   string `json:"error"`
	Status  int    `json:"status"`
}

// mErr parses the answer as a Matrix error; ErrCode is "" when it is not one.
func (r *result) mErr() matrixError {
	var e matrixError
	if r.isJSON() {
		json.Unmarshal(r.body, &e) //nolint:errcheck // not a Matrix error: ErrCode stays ""
	}
	return e
}

// isJSON reports whether the answer's body is a JSON object.
func (r *result) isJSON() bool {
	return json.Valid(r.body) && bytes.HasPrefix(bytes.TrimSpace(r.body), []byte("{"))
}

// isHTML reports whether the answer looks like a web page.
func (r *result) isHTML() bool {
	ct, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	b := bytes.TrimSpace(r.body)
	return ct == "text/html" || bytes.HasPrefix(b, []byte("<"))
}

// errorText is a short description of a non-2xx answer: "HTTP 403 M_FORBIDDEN: message".
func (r *result) errorText() string {
	s := fmt.Sprintf("HTTP %d", r.status)
	if e := r.mErr(); e.ErrCode != "" {
		s += " " + e.ErrCode
		if msg := strings.TrimSpace(e.Error); msg != "" {
			s += ": " + clip(msg, 200)
		}
	} else if r.isHTML() {
		s += ", an HTML page"
	}
	return s
}

// request is one probe to send.
type request struct {
	method string
	url    string
	token  string // Bearer token, "" for none
	body   any    // JSON body, nil for none
	origin string // Origin header, "" for none
}

// do sends req and reads at most maxBody of the answer. The connect (TCP and TLS) is
// bounded by the connect timeout, the wait for the answer's headers by the request
// timeout, and the whole probe by both together.
func (d *Diagnostics) do(ctx context.Context, req request) result {
	ctx, cancel := context.WithTimeout(ctx, d.opts.ConnectTimeout+d.opts.RequestTimeout)
	defer cancel()
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return result{err: err}
		}
		body = bytes.NewReader(b)
	}
	var connected atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	})
	hreq, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
	if err != nil {
		return result{err: err}
	}
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", "matrixas-diagnostics")
	if req.body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if req.token != "" {
		hreq.Header.Set("Authorization", "Bearer "+req.token)
	}
	if req.origin != "" {
		hreq.Header.Set("Origin", req.origin)
	}
	start := time.Now()
	resp, err := d.client.Do(hreq)
	if err != nil {
		if connected.Load() && isTimeout(err) {
			err = errAnswerTimeout
		}
		return result{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		if isTimeout(err) {
			err = errAnswerTimeout
		}
		return result{err: err, elapsed: time.Since(start)}
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b, elapsed: time.Since(start)}
}

// errAnswerTimeout: the server accepted the connection and then did not answer in time.
var errAnswerTimeout = errors.New("no answer in time")

// probes holds every network probe's result; nil means the probe was not sent because
// the settings it needs are missing.
type probes struct {
	versions   *result // GET /_matrix/client/versions
	fedVersion *result // GET /_matrix/federation/v1/version
	keyServer  *result // GET /_matrix/key/v2/server
	public     *result // GET <public>/_matrix/client/versions with an Origin
	nonce      *result // GET /_synapse/admin/v1/register
	whoami     *result // GET /account/whoami as the bot
	masquerade *result // GET /account/whoami?user_id=<namespaced user>
	ping       *result // POST /_matrix/client/v1/appservice/{id}/ping
	admin      *result // GET /_synapse/admin/v1/users/{bot}/admin as the bot
	wellKnown  *result // GET <public URL>/.well-known/matrix/client

	masqueradeAs id.UserID
}

// probe sends every network probe at once; provisioned is a platform user to act as
// ("" = the bot). The probes that only make sense when the homeserver answers are
// cancelled as soon as /versions says it does not, and are then reported as skipped.
func (d *Diagnostics) probe(ctx context.Context, ms *db.MatrixSettings, provisioned id.UserID) *probes {
	p := &probes{}
	hs := strings.TrimRight(ms.HomeserverURL, "/")
	haveHS := hs != "" && settings.HomeserverURL.Validate(hs) == nil
	depCtx, cancelDeps := context.WithCancel(ctx)
	defer cancelDeps()
	var wg sync.WaitGroup
	send := func(dst **result, ctx context.Context, req request) {
		wg.Go(func() {
			r := d.do(ctx, req)
			*dst = &r
		})
	}

	if pub := publicURL(ms); pub != "" {
		send(&p.public, ctx, request{method: http.MethodGet, url: pub + "/_matrix/client/versions", origin: d.opts.Origin})
	}
	if wk := strings.TrimRight(ms.PublicURL(), "/"); wk != "" && settings.HomeserverURL.Validate(wk) == nil {
		send(&p.wellKnown, ctx, request{method: http.MethodGet, url: wk + "/.well-known/matrix/client"})
	}
	if !haveHS {
		wg.Wait()
		return p
	}
	wg.Go(func() {
		r := d.do(ctx, request{method: http.MethodGet, url: hs + "/_matrix/client/versions"})
		p.versions = &r
		if _, ok := parseVersions(&r); !ok {
			cancelDeps()
		}
	})
	send(&p.fedVersion, depCtx, request{method: http.MethodGet, url: hs + "/_matrix/federation/v1/version"})
	send(&p.keyServer, depCtx, request{method: http.MethodGet, url: hs + "/_matrix/key/v2/server"})
	send(&p.nonce, depCtx, request{method: http.MethodGet, url: hs + "/_synapse/admin/v1/register"})
	if ms.ASToken != "" {
		send(&p.whoami, depCtx, request{method: http.MethodGet, url: hs + "/_matrix/client/v3/account/whoami", token: ms.ASToken})
		send(&p.ping, depCtx, request{
			method: http.MethodPost,
			url:    hs + "/_matrix/client/v1/appservice/" + url.PathEscape(matrix.AppserviceID) + "/ping",
			token:  ms.ASToken,
			body:   &mautrix.ReqAppservicePing{TxnID: "matrixas-diagnostics-" + randomHex(8)},
		})
		if bot := ms.BotUserID(); bot != "" {
			send(&p.admin, depCtx, request{method: http.MethodGet, url: hs + "/_synapse/admin/v1/users/" + url.PathEscape(bot.String()) + "/admin", token: ms.ASToken})
		}
		p.masqueradeAs = provisioned
		if p.masqueradeAs == "" {
			p.masqueradeAs = id.UserID(ms.BotUserID())
		}
		if p.masqueradeAs != "" {
			q := url.Values{"user_id": {p.masqueradeAs.String()}}
			send(&p.masquerade, depCtx, request{method: http.MethodGet, url: hs + "/_matrix/client/v3/account/whoami?" + q.Encode(), token: ms.ASToken})
		}
	}
	wg.Wait()
	return p
}

// publicURL is the public homeserver URL when it is set and differs from the internal
// one (so it needs its own probe), else "".
func publicURL(ms *db.MatrixSettings) string {
	pub := strings.TrimRight(ms.HomeserverPublicURL, "/")
	if pub == "" || pub == strings.TrimRight(ms.HomeserverURL, "/") || settings.HomeserverPublicURL.Validate(pub) != nil {
		return ""
	}
	return pub
}

// parseVersions reads a /versions answer; ok is false unless it is a Matrix one.
func parseVersions(r *result) (*mautrix.RespVersions, bool) {
	if r.err != nil || r.status != http.StatusOK || !r.isJSON() {
		return nil, false
	}
	var v mautrix.RespVersions
	if err := json.Unmarshal(r.body, &v); err != nil || len(v.Versions) == 0 {
		return nil, false
	}
	return &v, true
}

// transportFailure describes an error that kept a probe from getting any answer, in
// plain words, with the next step to take.
func transportFailure(err error, base string, opts Options) (detail, hint string) {
	var dnsErr *net.DNSError
	var recordErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	host := base
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		host = u.Hostname()
	}
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			detail = fmt.Sprintf("DNS lookup failed — the host name %s does not exist", host)
		} else {
			detail = fmt.Sprintf("DNS lookup for %s failed: %s", host, dnsErr.Err)
		}
		return detail, "Check the host name in the URL and that this server's DNS resolver knows it (inside Docker or Kubernetes, use the service name)."
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("Connection refused — is the homeserver running at %s?", base),
			"Start the homeserver, or correct the URL's host and port. Inside a container, localhost is the container itself."
	case errors.As(err, &recordErr) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// net/http turns a TLS record error that looks like HTTP into a plain error.
		return "TLS failure: the server does not speak TLS on this port (it answers plain HTTP)",
			"Use http:// for a plain-HTTP port, or the port where TLS is served."
	case errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &invalidCert) || errors.As(err, &certErr):
		reason := err.Error()
		switch {
		case errors.As(err, &unknownCA):
			reason = "the certificate is signed by an authority this server does not trust"
		case errors.As(err, &hostErr):
			reason = fmt.Sprintf("the certificate is not valid for %s", host)
		case errors.As(err, &invalidCert):
			reason = "the certificate is invalid or expired"
		}
		return "TLS failure: " + reason,
			"Give the homeserver (or its reverse proxy) a certificate this server trusts, add your CA to this server's trust store, or use the internal plain-HTTP URL."
	case errors.Is(err, errAnswerTimeout):
		return fmt.Sprintf("Connection timed out — the server accepted the connection but sent no answer within %s", human(opts.RequestTimeout)),
			"The homeserver (or a proxy in front of it) is hung or overloaded; check its log and load, and what is listening on that port."
	case isTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		// Answer timeouts became errAnswerTimeout in do, so this is the connect.
		return fmt.Sprintf("Connection timed out — no connection within %s", human(opts.ConnectTimeout)),
			"A firewall may be dropping the packets, or the host is down; check that this server can reach the URL (curl <url>/_matrix/client/versions)."
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "The connection was closed before any answer",
			"Something on that port is not an HTTP server, or a proxy drops the request; check the URL's scheme and port."
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err // the URL is already in the detail's context; keep the cause
	}
	return "Request failed: " + clip(err.Error(), 200),
		"Check the URL and this server's network access to the homeserver."
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// clip shortens s to at most n bytes (at a rune boundary) for display.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
