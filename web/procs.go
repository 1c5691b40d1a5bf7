package web

import (
	"context"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Requests in flight, and the most since the procs tuner last looked, across the
// process's servers (a process serves one outside tests).
var inFlight, inFlightPeak atomic.Int64

// countInFlight counts the requests in flight for the procs tuner.
func countInFlight(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for peak := inFlightPeak.Load(); n > peak && !inFlightPeak.CompareAndSwap(peak, n); peak = inFlightPeak.Load() {
		}
		defer inFlight.Add(-1)
		next.ServeHTTP(w, r)
	})
}

// procsTuner runs Go on one processor (GOMAXPROCS 1) while the load is serial, and on
// all of them otherwise. A homeserver delivers an appservice's transactions one at a
// time: then the server waits on its client and on SQLite, and a second processor only
// costs, as every request's goroutines (net/http starts one to watch the connection)
// wake an idle thread that spins and sleeps again: at one connection, the webhook did
// about a fifth more transactions a second on one processor (docs/PERFORMANCE.md,
// scenario 1). It goes to all processors at once when two requests overlap or when
// goroutines wait for a processor (CPU-bound work: a platform sync, an export, a
// password hash), and back to one after a second with neither (ten after waits).
type procsTuner struct {
	all     int // the processors to use when not serial
	serial  bool
	quiet   int // ticks in a row that allowed one processor
	samples []metrics.Sample
	waits   []uint64 // the scheduler latency histogram's counts at the last tick
	// setProcs sets GOMAXPROCS, and waitsFn counts long waits (longWaits); a test's
	// fakes replace them.
	setProcs func(int)
	waitsFn  func() uint64
}

const (
	procsTick      = 100 * time.Millisecond
	procsQuietFor  = 10               // ticks before going to one processor
	procsLongWait  = time.Millisecond // a goroutine that waited this long for a processor...
	procsLongWaits = 3                // ...this many times in a tick means one is not enough
	procsBackOff   = 90               // more ticks before one again after long waits
)

// RunProcsTuner runs the tuner until ctx is done, then gives Go all processors again.
// It does nothing when GOMAXPROCS is set or there is one processor. serve runs it.
func RunProcsTuner(ctx context.Context, getenv func(string) string) {
	all := runtime.GOMAXPROCS(0)
	if getenv("GOMAXPROCS") != "" || all < 2 {
		return
	}
	t := newProcsTuner(all, func(n int) { runtime.GOMAXPROCS(n) })
	tick := time.NewTicker(procsTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if t.serial {
				t.setProcs(all)
			}
			return
		case <-tick.C:
			t.tick()
		}
	}
}

func newProcsTuner(all int, setProcs func(int)) *procsTuner {
	t := &procsTuner{all: all, samples: []metrics.Sample{{Name: "/sched/latencies:seconds"}}, setProcs: setProcs}
	t.waitsFn = t.longWaits
	return t
}

func (t *procsTuner) tick() {
	peak := inFlightPeak.Swap(inFlight.Load())
	long := t.waitsFn() >= procsLongWaits
	switch {
	case t.serial && (peak >= 2 || long):
		t.serial, t.quiet = false, 0
		if long {
			// CPU-bound work that one processor kept waiting: it may well go on, so
			// stay on all processors for longer before trying one again.
			t.quiet = -procsBackOff
		}
		t.setProcs(t.all)
	case t.serial:
	case peak >= 2 || long:
		t.quiet = min(t.quiet, 0)
	default:
		if t.quiet++; t.quiet >= procsQuietFor {
			t.serial = true
			t.setProcs(1)
		}
	}
}

// longWaits is how many times since the last tick a runnable goroutine waited at least
// procsLongWait for a processor.
func (t *procsTuner) longWaits() uint64 {
	metrics.Read(t.samples)
	if t.samples[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := t.samples[0].Value.Float64Histogram()
	first := t.waits == nil
	if len(t.waits) != len(h.Counts) {
		t.waits = make([]uint64, len(h.Counts))
	}
	var n uint64
	for i, c := range h.Counts {
		if h.Buckets[i] >= procsLongWait.Seconds() {
			n += c - t.waits[i]
		}
		t.waits[i] = c
	}
	if first {
		return 0
	}
	return n
}
