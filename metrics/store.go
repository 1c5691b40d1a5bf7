package metrics

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"matrixas/db"
)

// StoreStats is what the scrape-time collector reads; *db.Store implements it, and a
// test can hand it a fake.
type StoreStats interface {
	DiagnosticStats(ctx context.Context, since time.Time) (*db.DiagnosticStats, error)
	LastReprovision(ctx context.Context) (*db.ReprovisionProgress, error)
}

var _ StoreStats = (*db.Store)(nil)

// scrapeTimeout bounds the database reads of one scrape.
const scrapeTimeout = 5 * time.Second

// storeCollector reads the room, profile, queue and reprovision numbers at scrape time,
// so they are always the database's, not a copy that could drift.
type storeCollector struct {
	store StoreStats
	log   *slog.Logger
	now   func() time.Time

	up, rooms, profiles, provisioned, pending, retrying, memberSyncs, oldest,
	txnTotal, lastTxn, reproInProgress, reproRemaining, reproErrored *prometheus.Desc
}

// CollectStore registers a collector that reads store at every scrape.
func (m *Metrics) CollectStore(store StoreStats) {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	}
	m.reg.MustRegister(&storeCollector{
		store:           store,
		log:             m.log,
		now:             time.Now,
		up:              d("database_up", "1 when the scrape could read the database, else 0 (and the database metrics are missing)."),
		rooms:           d("rooms", "Managed Matrix rooms by state.", "state"),
		profiles:        d("user_profiles", "Matrix user profiles (one per platform user with a Matrix account)."),
		provisioned:     d("user_profiles_provisioned", "Matrix user profiles registered on the homeserver."),
		pending:         d("provision_queue_pending", "Items waiting for the provisioning worker, by kind: rooms (to create or disable), users (to register).", "kind"),
		retrying:        d("provision_queue_retrying", "Pending items that already failed at least once."),
		memberSyncs:     d("provision_queue_member_syncs", "Active rooms whose members need a re-sync."),
		oldest:          d("provision_queue_oldest_pending_age_seconds", "Age of the oldest pending item; 0 when nothing is pending."),
		txnTotal:        d("transactions_recorded_total", "Transactions recorded since the database was created (the counter survives pruning and restarts)."),
		lastTxn:         d("last_transaction_timestamp_seconds", "Unix time the last transaction arrived from the homeserver; 0 = never. Alert on time() minus this."),
		reproInProgress: d("reprovision_in_progress", "1 while the last reprovision still has rooms or users to re-create, else 0."),
		reproRemaining:  d("reprovision_remaining", "Rooms and users the last reprovision has still to re-create, by kind.", "kind"),
		reproErrored:    d("reprovision_rooms_errored", "Rooms of the last reprovision that went to state error."),
	})
}

// Describe sends every descriptor.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.rooms, c.profiles, c.provisioned, c.pending, c.retrying, c.memberSyncs,
		c.oldest, c.txnTotal, c.lastTxn, c.reproInProgress, c.reproRemaining, c.reproErrored} {
		ch <- d
	}
}

// Collect reads the database once per scrape. When it cannot, database_up is 0 and the
// other numbers are left out rather than reported as zeros.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := c.now()
	st, err := c.store.DiagnosticStats(ctx, now)
	var repro *db.ReprovisionProgress
	if err == nil {
		repro, err = c.store.LastReprovision(ctx)
		if errors.Is(err, db.ErrNotFound) {
			repro, err = &db.ReprovisionProgress{}, nil
		}
	}
	if err != nil {
		if c.log != nil {
			c.log.Error("metrics: read the database", "error", err)
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.up, 1)
	for _, s := range db.RoomStates {
		gauge(c.rooms, float64(st.Rooms[s]), string(s))
	}
	gauge(c.profiles, float64(st.ProfilesTotal))
	gauge(c.provisioned, float64(st.ProfilesProvisioned))
	gauge(c.pending, float64(st.PendingRooms), "rooms")
	gauge(c.pending, float64(st.PendingUsers), "users")
	gauge(c.retrying, float64(st.Retrying))
	gauge(c.memberSyncs, float64(st.MemberSyncs))
	age := 0.0
	if !st.OldestPending.IsZero() {
		age = max(0, now.Sub(st.OldestPending).Seconds())
	}
	gauge(c.oldest, age)
	ch <- prometheus.MustNewConstMetric(c.txnTotal, prometheus.CounterValue, float64(st.TransactionsTotal))
	last := 0.0
	if !st.LastTransactionAt.IsZero() {
		last = float64(st.LastTransactionAt.Unix())
	}
	gauge(c.lastTxn, last)
	inProgress := 0.0
	if repro.RoomsRemaining+repro.UsersRemaining > 0 {
		inProgress = 1
	}
	gauge(c.reproInProgress, inProgress)
	gauge(c.reproRemaining, float64(repro.RoomsRemaining), "rooms")
	gauge(c.reproRemaining, float64(repro.UsersRemaining), "users")
	gauge(c.reproErrored, float64(repro.RoomsErrored))
}
