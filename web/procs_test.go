package web

import (
	"net/http"
	"net/http/httptest"
	"runtime/metrics"
	"testing"
)

// TestProcsTuner: the tuner goes to one processor after a second of serial requests, back
// to all at once when requests overlap, and, after goroutines waited for a processor,
// stays on all for ten seconds.
func TestProcsTuner(t *testing.T) {
	var set []int
	tu := newProcsTuner(4, func(n int) { set = append(set, n) })
	var waits uint64
	tu.waitsFn = func() uint64 { return waits }
	ticks := func(n int, peak int64) {
		for range n {
			inFlightPeak.Store(peak)
			tu.tick()
		}
	}
	t.Cleanup(func() { inFlightPeak.Store(0) })

	ticks(procsQuietFor-1, 1)
	if len(set) != 0 || tu.serial {
		t.Fatalf("changed after %d serial ticks: %v", procsQuietFor-1, set)
	}
	ticks(1, 1)
	if !tu.serial || len(set) != 1 || set[0] != 1 {
		t.Fatalf("after a second of serial load: serial %v, set %v; want one processor", tu.serial, set)
	}
	ticks(3, 1)
	ticks(1, 2) // two requests at once
	if tu.serial || len(set) != 2 || set[1] != 4 {
		t.Fatalf("after overlapping requests: serial %v, set %v; want all 4", tu.serial, set)
	}
	ticks(1, 3)
	ticks(procsQuietFor-1, 0) // the quiet restarts after the overlap
	if tu.serial {
		t.Fatal("back to one before a quiet second")
	}
	ticks(1, 0)
	if !tu.serial {
		t.Fatal("not back to one after a quiet second")
	}

	waits = procsLongWaits // goroutines waited for the one processor
	ticks(1, 1)
	waits = 0
	if tu.serial || set[len(set)-1] != 4 {
		t.Fatalf("after long waits: serial %v, set %v; want all 4", tu.serial, set)
	}
	ticks(procsBackOff+procsQuietFor-1, 1)
	if tu.serial {
		t.Fatal("back to one within the back-off after long waits")
	}
	ticks(1, 1)
	if !tu.serial {
		t.Fatal("not back to one after the back-off")
	}
}

// TestCountInFlight: the middleware counts a request while it is served and keeps the
// peak.
func TestCountInFlight(t *testing.T) {
	inFlightPeak.Store(0)
	t.Cleanup(func() { inFlightPeak.Store(0) })
	var during int64
	h := countInFlight(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		during = inFlight.Load()
		inner := countInFlight(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		inner.ServeHTTP(w, r) // a second request at once
	}))
	before := inFlight.Load()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if during != before+1 || inFlight.Load() != before || inFlightPeak.Load() != before+2 {
		t.Errorf("in flight during %d, after %d, peak %d; want %d, %d, %d", during, inFlight.Load(), inFlightPeak.Load(), before+1, before, before+2)
	}
}

// TestLongWaitsReadsTheScheduler: the scheduler latency histogram the tuner reads exists
// (an unknown metric name would read as no waits, ever).
func TestLongWaitsReadsTheScheduler(t *testing.T) {
	tu := newProcsTuner(2, func(int) {})
	if tu.longWaits() != 0 {
		t.Error("the first read counted waits; it has nothing to compare with")
	}
	if k := tu.samples[0].Value.Kind(); k != metrics.KindFloat64Histogram {
		t.Fatalf("%s is %v, want a histogram", tu.samples[0].Name, k)
	}
	if len(tu.waits) == 0 {
		t.Error("no bucket counts kept")
	}
}
