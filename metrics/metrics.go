// Package metrics is the server's Prometheus instrumentation: a private registry (no
// global state), the counters the webhook, the provisioning worker and the HTTP
// middleware move, a transport that times every call to the homeserver, and a collector
// that reads room and profile counts from the database at scrape time.
//
// Label values are always drawn from small fixed sets (route patterns, normalised
// homeserver endpoints, outcome names), never from raw paths, ids or tokens, so the
// number of series stays bounded whatever clients send.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"matrixas/provision"
)

// namespace prefixes every metric name.
const namespace = "matrixas"

// Metrics holds the registry and every metric the server moves. Create one with New and
// hand it to the parts that report to it.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	// Resolved once, so the transaction hot path does no label lookups.
	txns       [NumTxnOutcomes]prometheus.Counter
	events     prometheus.Counter
	authFailed [NumAuthFailures]prometheus.Counter

	provAttempts *prometheus.CounterVec
	provFailures *prometheus.CounterVec

	hsDuration *prometheus.HistogramVec

	bot *botMetrics

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpMu       sync.RWMutex
	httpSeries   map[httpKey]*httpSeries

	exports *prometheus.CounterVec
}

var _ provision.Observer = (*Metrics)(nil)

// New returns the metrics in a fresh private registry, with the Go runtime and process
// collectors and a build-info gauge for version. log receives scrape errors.
func New(version string, log *slog.Logger) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), log: log, httpSeries: map[httpKey]*httpSeries{}}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Always 1; the labels say which version runs.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)

	txns := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "webhook", Name: "transactions_total",
		Help: "Transactions the homeserver pushed, by result: new (recorded), duplicate (txnId seen before), discarded (appservice disabled), rejected (bad request), failed (not recorded, the homeserver retries).",
	}, []string{"result"})
	for o := range NumTxnOutcomes {
		m.txns[o] = txns.WithLabelValues(TxnOutcome(o).String())
	}
	m.events = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "webhook", Name: "events_total",
		Help: "Events in new transactions (duplicates are not counted again).",
	})
	auth := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "webhook", Name: "auth_failures_total",
		Help: "Homeserver requests refused, by reason: missing_token, invalid_token, not_configured (no hs_token set up yet).",
	}, []string{"reason"})
	for a := range NumAuthFailures {
		m.authFailed[a] = auth.WithLabelValues(AuthFailure(a).String())
	}

	m.provAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "provision", Name: "attempts_total",
		Help: "Provisioning jobs run by the worker, by kind: room_create, room_sync, room_disable, user.",
	}, []string{"kind"})
	m.provFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "provision", Name: "failures_total",
		Help: "Provisioning jobs that failed (and will be retried with backoff, or gave up), by kind.",
	}, []string{"kind"})
	for _, k := range provision.Kinds {
		m.provAttempts.WithLabelValues(k)
		m.provFailures.WithLabelValues(k)
	}

	m.hsDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "homeserver", Name: "request_duration_seconds",
		Help:    "Time from sending a request to the homeserver to its response headers, by caller (api, worker, diagnostics, export), normalised endpoint, method and outcome (ok, client_error, server_error, timeout, canceled, network_error).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"caller", "endpoint", "method", "outcome"})

	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests served, by route pattern (not the raw path), method and status code.",
	}, []string{"route", "method", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Time to serve an HTTP request, by route pattern and method.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route", "method"})

	m.reg.MustRegister(build, txns, m.events, auth, m.provAttempts, m.provFailures, m.hsDuration, m.httpRequests, m.httpDuration)
	m.initExports()
	m.bot = newBotMetrics()
	m.bot.collectors(m.reg)
	return m
}

// Registry is the private registry, for collectors registered from outside.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format. A collector that fails is
// logged and left out; the rest of the scrape is still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slogErrorLog{m.log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg, // promhttp's own counters of scrapes and their errors
	})
}

// slogErrorLog adapts the logger to promhttp's Println-style error log.
type slogErrorLog struct{ log *slog.Logger }

func (l slogErrorLog) Println(v ...any) {
	if l.log != nil {
		l.log.Error("metrics scrape", "error", strings.TrimSpace(fmt.Sprintln(v...)))
	}
}

// TransactionDone counts a transaction by outcome, and the events of a new one.
func (m *Metrics) TransactionDone(o TxnOutcome, events int) {
	if int(o) >= NumTxnOutcomes {
		return
	}
	m.txns[o].Inc()
	if o == TxnNew && events > 0 {
		m.events.Add(float64(events))
	}
}

// WebhookAuthFailed counts a refused homeserver request by reason.
func (m *Metrics) WebhookAuthFailed(reason AuthFailure) {
	if int(reason) < NumAuthFailures {
		m.authFailed[reason].Inc()
	}
}

// ProvisionDone counts a provisioning job and, when err is not nil, its failure.
func (m *Metrics) ProvisionDone(kind string, err error) {
	m.provAttempts.WithLabelValues(kind).Inc()
	if err != nil {
		m.provFailures.WithLabelValues(kind).Inc()
	}
}
