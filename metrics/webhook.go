package metrics

// TxnOutcome is what became of one transaction the homeserver pushed: the label values
// of matrixas_webhook_transactions_total. The webhook (handlers/appservice) reports them
// through its Observer, which Metrics implements.
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

// AuthFailure is why a request from the homeserver was refused: the label values of
// matrixas_webhook_auth_failures_total.
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
