package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"matrixas/bot"
	"matrixas/db"
)

var _ bot.Observer = (*Metrics)(nil)

// botMetrics are what the bot's sender and the webhook's commands move.
type botMetrics struct {
	sent, retries, failed *prometheus.CounterVec
	latency               *prometheus.HistogramVec
	commands              [2]prometheus.Counter // queued, rate_limited
}

// outboxKinds are the label values of the kind label, in a fixed set.
var outboxKinds = []db.OutboxKind{db.OutboxNotification, db.OutboxReply}

func newBotMetrics() *botMetrics {
	b := &botMetrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "bot", Name: "messages_sent_total",
			Help: "Outbox messages posted into rooms, by kind (notification, reply).",
		}, []string{"kind"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "bot", Name: "send_retries_total",
			Help: "Sends that failed and will be tried again (5 s, 30 s, 2 min, 10 min, 30 min later), by kind.",
		}, []string{"kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "bot", Name: "messages_failed_total",
			Help: "Outbox messages given up (state failed: the retries were spent or the homeserver refused for good), by kind.",
		}, []string{"kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "bot", Name: "send_latency_seconds",
			Help:    "Time from a message's queueing to its being posted (retries included), by kind.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"kind"}),
	}
	for _, k := range outboxKinds {
		b.sent.WithLabelValues(string(k))
		b.retries.WithLabelValues(string(k))
		b.failed.WithLabelValues(string(k))
		b.latency.WithLabelValues(string(k))
	}
	return b
}

func (b *botMetrics) collectors(reg *prometheus.Registry) {
	commands := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "bot", Name: "commands_total",
		Help: "Bot commands found in new transactions, by result: queued (a reply will be sent), rate_limited (past 10 replies per room and minute: no answer).",
	}, []string{"result"})
	b.commands[0] = commands.WithLabelValues("queued")
	b.commands[1] = commands.WithLabelValues("rate_limited")
	reg.MustRegister(b.sent, b.retries, b.failed, b.latency, commands)
}

// kind is k as a label value from the fixed set ("other" for anything else).
func kind(k db.OutboxKind) string {
	if k == db.OutboxNotification || k == db.OutboxReply {
		return string(k)
	}
	return "other"
}

// OutboxSent counts a posted message and how long it waited since it was queued.
func (m *Metrics) OutboxSent(k db.OutboxKind, waited time.Duration) {
	m.bot.sent.WithLabelValues(kind(k)).Inc()
	m.bot.latency.WithLabelValues(kind(k)).Observe(max(waited, 0).Seconds())
}

// OutboxRetry counts a failed send that will be tried again; the reason is logged by
// the sender, not used as a label (its values are unbounded).
func (m *Metrics) OutboxRetry(k db.OutboxKind, _ string) {
	m.bot.retries.WithLabelValues(kind(k)).Inc()
}

// OutboxFailed counts a message given up.
func (m *Metrics) OutboxFailed(k db.OutboxKind, _ string) {
	m.bot.failed.WithLabelValues(kind(k)).Inc()
}

// CommandsRecorded counts the commands of a new transaction: queued, and dropped by
// the rate rule.
func (m *Metrics) CommandsRecorded(queued, dropped int) {
	if queued > 0 {
		m.bot.commands[0].Add(float64(queued))
	}
	if dropped > 0 {
		m.bot.commands[1].Add(float64(dropped))
	}
}

// OutboxStats is what the outbox collector reads; *db.Store implements it.
type OutboxStats interface {
	OutboxStats(ctx context.Context, since time.Time) (*db.OutboxStats, error)
}

var _ OutboxStats = (*db.Store)(nil)

// outboxCollector reads the outbox's queue at scrape time.
type outboxCollector struct {
	store OutboxStats
	now   func() time.Time
	m     *Metrics

	pending, retrying, oldest, failed *prometheus.Desc
}

// CollectOutbox registers a collector that reads the bot's outbox at every scrape: the
// queue depth, how many pending messages already failed once, the oldest one's age and
// the failed messages kept.
func (m *Metrics) CollectOutbox(store OutboxStats) {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_bot_outbox_"+name, help, nil, nil)
	}
	m.reg.MustRegister(&outboxCollector{
		store:    store,
		now:      time.Now,
		m:        m,
		pending:  d("pending", "Messages waiting to be posted (the queue depth)."),
		retrying: d("retrying", "Pending messages whose last send failed (waiting for their next attempt)."),
		oldest:   d("oldest_pending_age_seconds", "Age of the oldest pending message; 0 when nothing is pending."),
		failed:   d("failed", "Failed messages kept (pruned 7 days after they failed); retry them from the Outbox page."),
	})
}

// Describe sends every descriptor.
func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.retrying, c.oldest, c.failed} {
		ch <- d
	}
}

// Collect reads the outbox once per scrape; when it cannot, the numbers are left out
// (database_up says why).
func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := c.now()
	st, err := c.store.OutboxStats(ctx, now)
	if err != nil {
		if c.m.log != nil {
			c.m.log.Error("metrics: read the outbox", "error", err)
		}
		return
	}
	age := 0.0
	if !st.OldestPending.IsZero() {
		age = max(0, now.Sub(st.OldestPending).Seconds())
	}
	for _, v := range []struct {
		d *prometheus.Desc
		v float64
	}{{c.pending, float64(st.Pending)}, {c.retrying, float64(st.Retrying)}, {c.oldest, age}, {c.failed, float64(st.Failed)}} {
		ch <- prometheus.MustNewConstMetric(v.d, prometheus.GaugeValue, v.v)
	}
}
