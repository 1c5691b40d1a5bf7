// Package appservice serves what the homeserver calls under /_matrix/app/v1: the
// transactions it pushes (the webhook), its ping, and its user and room-alias queries.
// Every request is authenticated by the hs_token alone, never by a session or an API
// token, and every error is Matrix-shaped ({"errcode", "error"}).
package appservice

import (
	"matrixas/db"
	"matrixas/metrics"
)

// Handler serves the homeserver's requests; web.Routes maps the paths to its methods.
type Handler struct {
	// Settings resolves the hs_token (cached: the webhook reads it on every request).
	Settings *db.Settings
	// Recorder durably records homeserver transactions (leader/follower group commit).
	Recorder *db.Recorder
	// Wake nudges the provisioning worker after a transaction marked rooms for a member
	// re-sync; nil = no worker.
	Wake func()
	// WakeBot nudges the bot's sender after a transaction queued command replies; nil =
	// no sender.
	WakeBot func()
	// Observer counts transactions and refused requests (the server's metrics); nil =
	// not counted.
	Observer Observer
}

// Observer is told what the homeserver-facing endpoints saw; the server's metrics
// implement it. Its methods run on the transaction hot path: they must be cheap and must
// never block.
type Observer interface {
	// TransactionDone reports one transaction's outcome and its event count.
	TransactionDone(o metrics.TxnOutcome, events int)
	// WebhookAuthFailed reports a refused homeserver request.
	WebhookAuthFailed(reason metrics.AuthFailure)
	// CommandsRecorded reports the bot commands of a new transaction: queued for a
	// reply, or dropped by the rate rule (db.ReplyRateLimit per room and minute).
	CommandsRecorded(queued, dropped int)
}

// txnDone reports a transaction's outcome, when something observes them.
func (h *Handler) txnDone(o metrics.TxnOutcome, events int) {
	if h.Observer != nil {
		h.Observer.TransactionDone(o, events)
	}
}

// commandsDone reports a transaction's commands, when something observes them.
func (h *Handler) commandsDone(queued, dropped int) {
	if h.Observer != nil {
		h.Observer.CommandsRecorded(queued, dropped)
	}
}

// authFailed reports a refused homeserver request, when something observes them.
func (h *Handler) authFailed(reason metrics.AuthFailure) {
	if h.Observer != nil {
		h.Observer.WebhookAuthFailed(reason)
	}
}

// tokenFailure is why a present token was refused, given the configured hs_token.
func tokenFailure(configured string) metrics.AuthFailure {
	if configured == "" {
		return metrics.AuthNotConfigured
	}
	return metrics.AuthInvalidToken
}

// txnOutcome is the outcome of a recorded transaction.
func txnOutcome(isNew bool) metrics.TxnOutcome {
	if isNew {
		return metrics.TxnNew
	}
	return metrics.TxnDuplicate
}
