package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"matrixas/handlers/respond"
)

// metricsAuth serves next only to requests carrying "Authorization: Bearer <token>".
// The comparison is constant time over SHA-256 digests, so neither the token's bytes nor
// its length leak through timing.
func metricsAuth(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"detail":"Metrics need Authorization: Bearer <METRICS_TOKEN>."}` + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// metricsRoute is GET /metrics on the main listener: the metrics behind METRICS_TOKEN,
// or 404 when no token is configured (metrics are then off here; METRICS_ADDR may still
// serve them on their own listener). Sessions and API tokens grant nothing here.
func (s *Server) metricsRoute() http.HandlerFunc {
	if s.cfg.Metrics.Token == "" {
		return respond.NotFound
	}
	return metricsAuth(s.cfg.Metrics.Token, s.metrics.Handler()).ServeHTTP
}

// metricsListenerHandler is what METRICS_ADDR serves: /metrics (behind METRICS_TOKEN when
// it is set) and nothing else.
func (s *Server) metricsListenerHandler() http.Handler {
	var m http.Handler = s.metrics.Handler()
	if s.cfg.Metrics.Token != "" {
		m = metricsAuth(s.cfg.Metrics.Token, m)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m)
	return mux
}

// serveMetrics starts the METRICS_ADDR listener when one is configured; stop shuts it
// down. A listener that cannot bind is an error at start, not a silent gap in the graphs.
func (s *Server) serveMetrics() (stop func(), err error) {
	if s.cfg.Metrics.Addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", s.cfg.Metrics.Addr)
	if err != nil {
		return nil, fmt.Errorf("METRICS_ADDR: listen on %s: %w", s.cfg.Metrics.Addr, err)
	}
	srv := &http.Server{
		Handler:           s.metricsListenerHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics listener stopped", "error", err)
		}
	}()
	s.log.Info("serving metrics", "addr", ln.Addr().String(), "token", s.cfg.Metrics.Token != "")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, nil
}
