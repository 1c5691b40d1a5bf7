package appservice

import (
	"testing"
	"time"
)

// TestErrorWindow: answers are counted per minute over the hour before now; older ones
// drop out as the hour moves on, and a slot reused for a new minute starts from zero.
func TestErrorWindow(t *testing.T) {
	start := time.Unix(1_800_000_000, 0) // a whole minute
	e := &ErrorWindow{started: start.Add(-3 * time.Hour)}
	count := func(now time.Time) int {
		n, _ := e.Count(now)
		return n
	}
	e.Add(start)
	e.Add(start.Add(30 * time.Second))
	e.Add(start.Add(10 * time.Minute))
	if n := count(start.Add(10 * time.Minute)); n != 3 {
		t.Errorf("within the hour: %d, want 3", n)
	}
	if n := count(start.Add(59 * time.Minute)); n != 3 {
		t.Errorf("59 minutes on: %d, want 3", n)
	}
	if n := count(start.Add(60 * time.Minute)); n != 1 {
		t.Errorf("an hour on, the first minute dropped out: %d, want 1", n)
	}
	e.Add(start.Add(60 * time.Minute)) // the first minute's slot, reused
	if n := count(start.Add(60 * time.Minute)); n != 2 {
		t.Errorf("after reusing a slot: %d, want 2", n)
	}
	e.Add(start) // an hour older than its slot: ignored, never counted as new
	if n := count(start.Add(61 * time.Minute)); n != 2 {
		t.Errorf("after a stale answer: %d, want 2", n)
	}
	if _, since := e.Count(start.Add(61 * time.Minute)); !since.Equal(start.Add(time.Minute)) {
		t.Errorf("since %v, want an hour before now", since)
	}
	fresh := NewErrorWindow()
	if n, since := fresh.Count(time.Now()); n != 0 || time.Since(since) > time.Minute {
		t.Errorf("a new window: %d since %v, want 0 since its start", n, since)
	}
}
