package store

import (
	"errors"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/shared/apperr"
)

// ErrConcurrentChange (matched with errors.Is) is a write DynamoDB refused
// because another request was writing the same item at that moment
// (TransactionConflictException, or a transaction cancelled with a
// TransactionConflict reason). Nothing was written: read again and retry.
var ErrConcurrentChange = apperr.E(apperr.Conflict, "concurrent_change", "the connection is being changed concurrently; retry")

// transactionConflict reports a transaction cancelled because one of its
// items was being written by another transaction.
func transactionConflict(err error) bool {
	var tce *types.TransactionCanceledException
	return errors.As(err, &tce) && slices.ContainsFunc(tce.CancellationReasons, func(r types.CancellationReason) bool {
		return aws.ToString(r.Code) == "TransactionConflict"
	})
}
