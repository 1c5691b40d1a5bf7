package metrics_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"matrixas/db"
	"matrixas/metrics"
)

// TestBotCounters: what the sender and the webhook report, by kind and result; every
// series exists from the start, so a rate() over it never starts from nothing.
func TestBotCounters(t *testing.T) {
	m := metrics.New("test", nil)
	s := scrape(t, m)
	for _, name := range []string{"matrixas_bot_messages_sent_total", "matrixas_bot_send_retries_total", "matrixas_bot_messages_failed_total"} {
		for _, kind := range []string{"notification", "reply"} {
			if got := s.Get(t, name, map[string]string{"kind": kind}); got != 0 {
				t.Errorf("%s{kind=%s} = %v before anything happened", name, kind, got)
			}
		}
	}
	m.OutboxSent(db.OutboxReply, 300*time.Millisecond)
	m.OutboxSent(db.OutboxReply, 2*time.Second)
	m.OutboxSent(db.OutboxNotification, time.Minute)
	m.OutboxRetry(db.OutboxNotification, "HTTP 502 Bad Gateway")
	m.OutboxFailed(db.OutboxNotification, "M_FORBIDDEN")
	m.OutboxSent(db.OutboxKind("bogus"), 0) // an unknown kind is counted as other, not a new series per value
	m.CommandsRecorded(3, 0)
	m.CommandsRecorded(1, 2)
	s = scrape(t, m)
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"matrixas_bot_messages_sent_total", map[string]string{"kind": "reply"}, 2},
		{"matrixas_bot_messages_sent_total", map[string]string{"kind": "notification"}, 1},
		{"matrixas_bot_messages_sent_total", map[string]string{"kind": "other"}, 1},
		{"matrixas_bot_send_latency_seconds", map[string]string{"kind": "reply"}, 2}, // the histogram's count
		{"matrixas_bot_send_retries_total", map[string]string{"kind": "notification"}, 1},
		{"matrixas_bot_messages_failed_total", map[string]string{"kind": "notification"}, 1},
		{"matrixas_bot_messages_failed_total", map[string]string{"kind": "reply"}, 0},
		{"matrixas_bot_commands_total", map[string]string{"result": "queued"}, 4},
		{"matrixas_bot_commands_total", map[string]string{"result": "rate_limited"}, 2},
	} {
		if got := s.Get(t, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	h := s["matrixas_bot_send_latency_seconds"]
	for _, series := range h.GetMetric() {
		if series.GetLabel()[0].GetValue() == "reply" {
			if sum := series.GetHistogram().GetSampleSum(); sum != 2.3 {
				t.Errorf("reply latency sum %v, want 2.3 s", sum)
			}
		}
	}
}

type fakeOutbox struct {
	st  *db.OutboxStats
	err error
}

func (f fakeOutbox) OutboxStats(context.Context, time.Time) (*db.OutboxStats, error) {
	return f.st, f.err
}

// TestOutboxCollector: the queue depth and the oldest message's age are read at scrape
// time; a store that cannot be read leaves them out rather than reporting zeros.
func TestOutboxCollector(t *testing.T) {
	m := metrics.New("test", nil)
	m.CollectOutbox(fakeOutbox{st: &db.OutboxStats{Pending: 7, Retrying: 2, OldestPending: time.Now().Add(-time.Hour), Failed: 3}})
	s := scrape(t, m)
	for name, want := range map[string]float64{
		"matrixas_bot_outbox_pending": 7, "matrixas_bot_outbox_retrying": 2, "matrixas_bot_outbox_failed": 3,
	} {
		if got := s.Get(t, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if age := s.Get(t, "matrixas_bot_outbox_oldest_pending_age_seconds", nil); age < 3600 || age > 3600+600 {
		t.Errorf("oldest pending age %v s, want about an hour", age)
	}

	m = metrics.New("test", nil)
	m.CollectOutbox(fakeOutbox{st: &db.OutboxStats{}})
	if age := scrape(t, m).Get(t, "matrixas_bot_outbox_oldest_pending_age_seconds", nil); age != 0 {
		t.Errorf("nothing pending: age %v, want 0", age)
	}

	m = metrics.New("test", nil)
	m.CollectOutbox(fakeOutbox{err: errors.New("database is closed")})
	if _, ok := scrape(t, m).Value("matrixas_bot_outbox_pending", nil); ok {
		t.Error("with the database down, the queue depth is reported")
	}
}
