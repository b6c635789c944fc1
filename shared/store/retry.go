package store

import (
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/retry"
)

// The store's own retries, each for what the SDK's retryer does not retry
// (shared/app): throttling, 5xx and connection errors have already been
// retried by the client when a call returns them, so they are never
// retried here on top.
var (
	// batchRetry: keys or items a batch call left unprocessed (the call
	// itself succeeded, usually because the table was throttled).
	batchRetry = retry.Policy{Attempts: 6, Base: 50 * time.Millisecond, Max: time.Second}
	// conflictRetry: a transaction cancelled by a TransactionConflict,
	// another transaction writing one of its items at that moment.
	conflictRetry = retry.Policy{Attempts: 4, Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}
)

// errUnprocessed: a batch call still left work undone after batchRetry.
var errUnprocessed = apperr.E(apperr.Throttled, "throttled", "the store is busy; retry")
