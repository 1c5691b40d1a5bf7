package web

import "time"

// httpLimits are the HTTP server's timeouts and header limit. They are fixed in
// production (defaultHTTPLimits); a test shortens the timeouts to see a slow client cut
// off without waiting ten seconds.
type httpLimits struct {
	// readHeader bounds the wait for a request's headers: a client that sends them byte
	// by byte (slowloris) is disconnected when it runs out.
	readHeader time.Duration
	read       time.Duration // the whole request, body included
	write      time.Duration // the response
	idle       time.Duration // a kept-alive connection between requests
	// maxHeaderBytes caps the request line and headers; past it net/http answers 431.
	maxHeaderBytes int
}

// defaultHTTPLimits are the production values.
var defaultHTTPLimits = httpLimits{
	readHeader:     10 * time.Second,
	read:           60 * time.Second,
	write:          60 * time.Second,
	idle:           120 * time.Second,
	maxHeaderBytes: 64 << 10,
}

// httpLimits returns the server's limits: the defaults, with any field a test set
// (non-zero) taking its place.
func (s *Server) httpLimits() httpLimits {
	l := defaultHTTPLimits
	o := s.limits
	if o.readHeader > 0 {
		l.readHeader = o.readHeader
	}
	if o.read > 0 {
		l.read = o.read
	}
	if o.write > 0 {
		l.write = o.write
	}
	if o.idle > 0 {
		l.idle = o.idle
	}
	if o.maxHeaderBytes > 0 {
		l.maxHeaderBytes = o.maxHeaderBytes
	}
	return l
}
