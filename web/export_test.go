package web

import "time"

// SetHTTPTimeouts shortens the HTTP server's timeouts for a test (zero keeps the
// default); call it before Serve.
func (s *Server) SetHTTPTimeouts(readHeader, read, write, idle time.Duration) {
	s.limits.readHeader, s.limits.read, s.limits.write, s.limits.idle = readHeader, read, write, idle
}
