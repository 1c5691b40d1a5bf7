package handlers

// TxnOutcome is what became of one transaction the homeserver pushed.
type TxnOutcome uint8

// The outcomes of a transaction, one metric series each.
const (
	TxnNew       TxnOutcome = iota // recorded: the first delivery of its txnId
	TxnDuplicate                   // its txnId was recorded before: acknowledged, not processed again
	TxnDiscarded                   // the appservice is disabled: acknowledged and dropped
	TxnRejected                    // not a valid transaction (bad txnId or body): 4xx
	TxnFailed                      // could not be recorded: 5xx, so the homeserver delivers it again

	// NumTxnOutcomes is the number of outcomes, for arrays indexed by TxnOutcome.
	NumTxnOutcomes = int(TxnFailed) + 1
)

var txnOutcomeNames = [NumTxnOutcomes]string{"new", "duplicate", "discarded", "rejected", "failed"}

// String is the outcome's metric label value.
func (o TxnOutcome) String() string {
	if int(o) < NumTxnOutcomes {
		return txnOutcomeNames[o]
	}
	return "unknown"
}

// AuthFailure is why a request from the homeserver was refused.
type AuthFailure uint8

// The reasons a homeserver request is refused.
const (
	AuthMissingToken  AuthFailure = iota // no token at all: 401 M_MISSING_TOKEN
	AuthInvalidToken                     // a token that is not the hs_token: 403 M_FORBIDDEN
	AuthNotConfigured                    // no hs_token is set up yet, so every token is refused: 403

	// NumAuthFailures is the number of reasons, for arrays indexed by AuthFailure.
	NumAuthFailures = int(AuthNotConfigured) + 1
)

var authFailureNames = [NumAuthFailures]string{"missing_token", "invalid_token", "not_configured"}

// String is the reason's metric label value.
func (a AuthFailure) String() string {
	if int(a) < NumAuthFailures {
		return authFailureNames[a]
	}
	return "unknown"
}

// WebhookObserver is told what the homeserver-facing endpoints saw; the server's metrics
// implement it. Its methods run on the transaction hot path: they must be cheap and must
// never block.
type WebhookObserver interface {
	// TransactionDone reports one transaction's outcome and its event count.
	TransactionDone(o TxnOutcome, events int)
	// WebhookAuthFailed reports a refused homeserver request.
	WebhookAuthFailed(reason AuthFailure)
}

// txnDone reports a transaction's outcome, when something observes them.
func (h *Handler) txnDone(o TxnOutcome, events int) {
	if h.WebhookMetrics != nil {
		h.WebhookMetrics.TransactionDone(o, events)
	}
}

// authFailed reports a refused homeserver request, when something observes them.
func (h *Handler) authFailed(reason AuthFailure) {
	if h.WebhookMetrics != nil {
		h.WebhookMetrics.WebhookAuthFailed(reason)
	}
}

// tokenFailure is why a present token was refused, given the configured hs_token.
func tokenFailure(configured string) AuthFailure {
	if configured == "" {
		return AuthNotConfigured
	}
	return AuthInvalidToken
}

// txnOutcome is the outcome of a recorded transaction.
func txnOutcome(isNew bool) TxnOutcome {
	if isNew {
		return TxnNew
	}
	return TxnDuplicate
}
