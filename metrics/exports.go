package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"matrixas/db"
	"matrixas/exports"
)

var _ exports.Observer = (*Metrics)(nil)

// Outcomes of a history export, as the outcome label names them.
const (
	ExportCompleted = "completed"
	ExportFailed    = "failed"
)

func (m *Metrics) initExports() {
	m.exports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "history_exports", Name: "finished_total",
		Help: "History exports finished, by type (manual, periodic, on_deletion) and outcome (completed, failed).",
	}, []string{"type", "outcome"})
	for _, t := range db.ExportTypes {
		for _, o := range []string{ExportCompleted, ExportFailed} {
			m.exports.WithLabelValues(string(t), o)
		}
	}
	m.reg.MustRegister(m.exports)
}

// ExportFinished counts a finished history export.
func (m *Metrics) ExportFinished(typ db.ExportType, completed bool) {
	outcome := ExportFailed
	if completed {
		outcome = ExportCompleted
	}
	m.exports.WithLabelValues(string(typ), outcome).Inc()
}
