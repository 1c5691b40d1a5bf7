package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Callers of the homeserver, as the caller label names them.
const (
	CallerAPI         = "api"         // setup and provision-bot, from the API and the dashboard
	CallerWorker      = "worker"      // the provisioning worker
	CallerDiagnostics = "diagnostics" // the live diagnostics' probes
	CallerExport      = "export"      // the history export job
	CallerBot         = "bot"         // the bot's sender: messages and its history searches
)

// InstrumentClient returns a copy of c whose transport times every request in
// matrixas_homeserver_request_duration_seconds, labelled with caller.
func (m *Metrics) InstrumentClient(c *http.Client, caller string) *http.Client {
	cp := *c
	cp.Transport = m.Transport(c.Transport, caller)
	return &cp
}

// Transport wraps next (nil = http.DefaultTransport) so that every request is timed and
// counted by normalised endpoint, method and outcome.
func (m *Metrics) Transport(next http.RoundTripper, caller string) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{next: next, caller: caller, hist: m.hsDuration}
}

// WrapTransport returns Transport as a function of the transport alone, for components
// that build their own client.
func (m *Metrics) WrapTransport(caller string) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper { return m.Transport(next, caller) }
}

type transport struct {
	next   http.RoundTripper
	caller string
	hist   *prometheus.HistogramVec
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	t.hist.WithLabelValues(t.caller, Endpoint(req.URL.EscapedPath()), method(req.Method), outcome(resp, err)).
		Observe(time.Since(start).Seconds())
	return resp, err
}

// CloseIdleConnections passes http.Client.CloseIdleConnections on to the real transport.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// outcome classifies a round trip: ok (below 400), client_error, server_error, or for a
// request that got no answer: timeout, canceled or network_error.
func outcome(resp *http.Response, err error) string {
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, context.Canceled):
			return "canceled"
		case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
			return "timeout"
		default:
			return "network_error"
		}
	}
	switch {
	case resp.StatusCode >= 500:
		return "server_error"
	case resp.StatusCode >= 400:
		return "client_error"
	default:
		return "ok"
	}
}

// method is a request method as a label: the standard ones as they are, anything else
// OTHER (a method is free text, so it could otherwise grow the series without bound).
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// endpoints are the homeserver APIs this server calls (and a few neighbours), as path
// templates: "{x}" stands for exactly one path segment, which may be empty (a state
// event with an empty state key ends in "/"). The client-server version segment is
// matched by "{version}". A path that matches none is "other".
var endpoints = compileEndpoints([]string{
	"/_matrix/client/versions",
	"/_matrix/client/{version}/account/whoami",
	"/_matrix/client/{version}/register",
	"/_matrix/client/{version}/register/available",
	"/_matrix/client/{version}/login",
	"/_matrix/client/{version}/createRoom",
	"/_matrix/client/{version}/join/{roomIdOrAlias}",
	"/_matrix/client/{version}/joined_rooms",
	"/_matrix/client/{version}/directory/room/{roomAlias}",
	"/_matrix/client/{version}/rooms/{roomId}/join",
	"/_matrix/client/{version}/rooms/{roomId}/leave",
	"/_matrix/client/{version}/rooms/{roomId}/forget",
	"/_matrix/client/{version}/rooms/{roomId}/invite",
	"/_matrix/client/{version}/rooms/{roomId}/kick",
	"/_matrix/client/{version}/rooms/{roomId}/ban",
	"/_matrix/client/{version}/rooms/{roomId}/unban",
	"/_matrix/client/{version}/rooms/{roomId}/members",
	"/_matrix/client/{version}/rooms/{roomId}/joined_members",
	"/_matrix/client/{version}/rooms/{roomId}/state",
	"/_matrix/client/{version}/rooms/{roomId}/state/{eventType}",
	"/_matrix/client/{version}/rooms/{roomId}/state/{eventType}/{stateKey}",
	"/_matrix/client/{version}/rooms/{roomId}/send/{eventType}/{txnId}",
	"/_matrix/client/{version}/rooms/{roomId}/messages",
	"/_matrix/client/{version}/rooms/{roomId}/redact/{eventId}/{txnId}",
	"/_matrix/client/{version}/media/download/{serverName}/{mediaId}",
	"/_matrix/client/{version}/media/download/{serverName}/{mediaId}/{fileName}",
	"/_matrix/client/{version}/profile/{userId}",
	"/_matrix/client/{version}/profile/{userId}/displayname",
	"/_matrix/client/{version}/profile/{userId}/avatar_url",
	"/_matrix/client/{version}/appservice/{appserviceId}/ping",
	"/_matrix/federation/v1/version",
	"/_matrix/key/v2/server",
	"/_synapse/admin/v1/register",
})

// endpoint is one compiled template: its segments and the label it reports.
type endpoint struct {
	label    string
	segments []string // anySegment or versionSegment for a placeholder, else the literal
}

// Placeholder markers in compiled templates; neither can occur in a path segment.
const (
	anySegment     = "\x00any"
	versionSegment = "\x00version"
)

func compileEndpoints(templates []string) []endpoint {
	out := make([]endpoint, 0, len(templates))
	for _, t := range templates {
		segs := strings.Split(strings.TrimPrefix(t, "/"), "/")
		for i, s := range segs {
			switch {
			case s == "{version}":
				segs[i] = versionSegment
			case strings.HasPrefix(s, "{"):
				segs[i] = anySegment
			}
		}
		out = append(out, endpoint{label: t, segments: segs})
	}
	return out
}

// isVersion reports whether s is a client-server API version (r0, v1, v3, unstable),
// the only thing "{version}" stands for.
func isVersion(s string) bool {
	if s == "r0" || s == "unstable" {
		return true
	}
	if len(s) < 2 || s[0] != 'v' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Endpoint maps a request path (escaped, as sent) to its endpoint template, such as
// "/_matrix/client/{version}/rooms/{roomId}/invite", or "other". Anything before
// /_matrix/ or /_synapse/ (a homeserver served under a path prefix) is ignored. The
// result never contains an id, an alias or a token from the path.
func Endpoint(escapedPath string) string {
	i := strings.Index(escapedPath, "/_matrix/")
	if i < 0 {
		i = strings.Index(escapedPath, "/_synapse/")
	}
	if i < 0 {
		return "other"
	}
	segs := strings.Split(escapedPath[i+1:], "/")
next:
	for _, e := range endpoints {
		if len(e.segments) != len(segs) {
			continue
		}
		for j, want := range e.segments {
			switch want {
			case anySegment:
			case versionSegment:
				if !isVersion(segs[j]) {
					continue next
				}
			default:
				if want != segs[j] {
					continue next
				}
			}
		}
		return e.label
	}
	return "other"
}
