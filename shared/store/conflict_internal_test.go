package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/connmgr/connmgr/shared/apperr"
)

// TestClassifyConcurrentChange: a write refused because another writer was
// busy with the item is ErrConcurrentChange (retry from the read); a
// failed condition or any other cancellation is not.
func TestClassifyConcurrentChange(t *testing.T) {
	cancelled := func(codes ...string) error {
		var reasons []types.CancellationReason
		for _, c := range codes {
			reasons = append(reasons, types.CancellationReason{Code: aws.String(c)})
		}
		return fmt.Errorf("op: %w", &types.TransactionCanceledException{CancellationReasons: reasons})
	}
	tests := []struct {
		name       string
		err        error
		concurrent bool
	}{
		{"a transaction conflict on the first item", cancelled("TransactionConflict", "None"), true},
		{"a transaction conflict on another item", cancelled("None", "None", "TransactionConflict"), true},
		{"TransactionConflictException", &smithy.GenericAPIError{Code: "TransactionConflictException"}, true},
		{"a failed condition", cancelled("ConditionalCheckFailed", "None"), false},
		{"throttled", cancelled("ThrottlingError"), false},
		{"something else", errors.New("boom"), false},
	}
	for _, tt := range tests {
		err := classify(tt.err)
		if got := errors.Is(err, ErrConcurrentChange); got != tt.concurrent {
			t.Errorf("%s: concurrent %v, want %v (%v)", tt.name, got, tt.concurrent, err)
		}
		if tt.concurrent && apperr.As(err).Kind != apperr.Conflict {
			t.Errorf("%s: kind %v", tt.name, apperr.As(err).Kind)
		}
	}
}
