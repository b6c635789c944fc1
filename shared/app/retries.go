package app

// Retries: the SDK's and ours, each for different failures (issue 9).
//
// Every SDK client the functions build keeps the SDK's standard retryer as
// the client's own defaults configure it: the aws.Config this package
// builds sets no Retryer, RetryMode or RetryMaxAttempts, and Lambda sets no
// AWS_RETRY_MODE or AWS_MAX_ATTEMPTS. With aws-sdk-go-v2 v1.48 that is, per
// call: DynamoDB 4 attempts, KMS, Lambda, EventBridge and Step Functions 3;
// exponential backoff with full jitter from 25 ms (DynamoDB) or 50 ms, from
// 1 s for throttling, at most 20 s; a client-wide retry token bucket. It
// retries throttling (ThrottlingException,
// ProvisionedThroughputExceededException, TooManyRequestsException,
// TransactionInProgressException, ...), 500/502/503/504, RequestTimeout and
// connection errors. retries_test.go pins these facts, so an SDK upgrade
// that changes them fails a test here.
//
// Our own retries (shared/retry policies) are for what that retryer never
// sees or never retries, and never for the errors above, so the two do not
// multiply:
//   - work a successful call left undone: BatchGetItem's UnprocessedKeys,
//     BatchWriteItem's UnprocessedItems (shared/store batchRetry),
//     PutEvents entries failed inside a successful call (shared/events
//     publishRetry);
//   - races with other writers: a transaction cancelled by a
//     TransactionConflict, written again (shared/store conflictRetry, the
//     resolver's token write, manager writeRetry), and a conditional write
//     that lost to another writer, read and decided again (manager
//     writeRetry, the OAuth callback's store, the resolver's token write
//     and expiry mark, workflow transitions);
//   - lease waits: a resolver waiting for another instance's refresh
//     (bounded by resolver.Config.MaxWait);
//   - one quota wait: a mass resume whose SendTaskSuccess is still
//     throttled after the SDK's attempts (workflow resumeThrottledRetry).
//     Step Functions refills that account-wide bucket over seconds, longer
//     than the SDK's attempts wait, and the event's three deliveries are
//     too few to outlast it; the waits (1 s to 10 s, 90 s at most) are of
//     another scale than the SDK's and end inside the function's timeout.
//
// Any other call that still fails after the SDK's attempts is returned,
// not retried again: workflow.Start, for one, starts the execution with
// one call.
