package app_test

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"
)

// httpStatus is an error carrying an HTTP status, as the SDK's response
// errors do.
type httpStatus int

func (h httpStatus) Error() string       { return "http status" }
func (h httpStatus) HTTPStatusCode() int { return int(h) }

// TestSDKRetryerDivision pins what retries.go says the SDK's retryer does
// with the configuration this package builds: the errors it retries are the
// ones our loops leave alone, and those our loops retry it does not.
func TestSDKRetryerDivision(t *testing.T) {
	cfg := aws.Config{Region: "us-east-1"} // no Retryer, RetryMode or RetryMaxAttempts, as built
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException"}
	tests := []struct {
		client   string
		retryer  aws.Retryer
		attempts int
		retried  []error
		ours     []error // retried by our loops, never by the SDK
	}{
		{"dynamodb", dynamodb.NewFromConfig(cfg).Options().Retryer, 4,
			[]error{throttled, &ddbtypes.ProvisionedThroughputExceededException{}, &smithy.GenericAPIError{Code: "TransactionInProgressException"}, httpStatus(500), httpStatus(503)},
			[]error{&ddbtypes.ConditionalCheckFailedException{}, &ddbtypes.TransactionCanceledException{
				CancellationReasons: []ddbtypes.CancellationReason{{Code: aws.String("TransactionConflict")}}}}},
		{"eventbridge", eventbridge.NewFromConfig(cfg).Options().Retryer, 3, []error{throttled, httpStatus(500)}, nil},
		{"sfn", sfn.NewFromConfig(cfg).Options().Retryer, 3, []error{throttled, httpStatus(502)},
			[]error{&sfntypes.ExecutionAlreadyExists{}, &sfntypes.ExecutionLimitExceeded{}}},
	}
	for _, tt := range tests {
		t.Run(tt.client, func(t *testing.T) {
			if n := tt.retryer.MaxAttempts(); n != tt.attempts {
				t.Errorf("%d attempts per call, want %d", n, tt.attempts)
			}
			for _, err := range tt.retried {
				if !tt.retryer.IsErrorRetryable(err) {
					t.Errorf("the SDK does not retry %v (%T): a loop of ours must", err, err)
				}
			}
			for _, err := range tt.ours {
				if tt.retryer.IsErrorRetryable(err) {
					t.Errorf("the SDK retries %v (%T): our loop would multiply its attempts", err, err)
				}
			}
			if tt.retryer.IsErrorRetryable(errors.New("validation")) {
				t.Error("the SDK retries an unclassified error")
			}
		})
	}
}
