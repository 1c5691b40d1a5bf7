package web

import (
	"bufio"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// NewLogger returns the server's logger: text or JSON lines at the configured level.
func NewLogger(cfg *Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// BufferedWriter batches log lines into fewer writes: one access-log line per request
// would otherwise cost a system call per request on the webhook's hot path. It flushes
// every flushEvery, when the buffer fills, and on Close, so at most that much of the log
// is lost if the process is killed.
type BufferedWriter struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

const flushEvery = 200 * time.Millisecond

// NewBufferedWriter starts a BufferedWriter over w; Close it to flush and stop.
func NewBufferedWriter(w io.Writer) *BufferedWriter {
	b := &BufferedWriter{buf: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.Flush()
			case <-b.stop:
				return
			}
		}
	}()
	return b
}

// Write buffers p (one log record).
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Flush writes out what is buffered.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Flush()
}

// Close stops the flusher and flushes the rest.
func (b *BufferedWriter) Close() error {
	close(b.stop)
	<-b.done
	return b.Flush()
}

// TuneRuntime sets the garbage collector's heap target to 200% unless GOGC says
// otherwise: the webhook allocates a little per request, and with the default 100% the
// collector took about a tenth of the server's CPU under load (measured with wrk: 62 ->
// 56 us of CPU per transaction) for a few MiB more heap. It also sets a soft memory
// limit of 96 MiB unless GOMEMLIMIT says otherwise: a platform sync of a large
// directory builds its comparison in bursts of garbage, and 200% over its live heap
// took the process to 160 MiB; near the limit the collector runs sooner instead
// (docs/PERFORMANCE.md, scenario 10). The limit is soft: a heap that needs more gets it.
func TuneRuntime(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(96 << 20)
	}
}
