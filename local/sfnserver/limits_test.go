package sfnserver_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/smithy-go"

	"github.com/connmgr/connmgr/local/asl"
	"github.com/connmgr/connmgr/local/sfnserver"
)

// TestLimitsThrottleSendTaskSuccess: a SendTaskSuccess finding its bucket
// empty is ThrottlingException and resumes nothing; the bucket refills at
// its rate on the limits' clock, and each wait resumes exactly once.
func TestLimitsThrottleSendTaskSuccess(t *testing.T) {
	e := newEnv(t)
	limits := sfnserver.NewLimits(e.clk.Now)
	limits.Set("SendTaskSuccess", 5, 500) // a bucket of 5, 500 a second
	srv := httptest.NewServer(sfnserver.HandlerWith(e.eng, limits))
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	client := sfn.NewFromConfig(cfg, func(o *sfn.Options) { o.BaseEndpoint = aws.String(srv.URL); o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	smARN := e.createMachine(ctx)
	const n = 10
	for i := range n {
		if _, err := client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: &smARN, Name: aws.String(fmt.Sprint("run-", i)), Input: aws.String(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	e.idle()
	e.mu.Lock()
	tokens := append([]string(nil), e.tokens...)
	e.mu.Unlock()
	if len(tokens) != n {
		t.Fatalf("%d tokens", len(tokens))
	}
	send := func(tokens []string) (pending []string) {
		for _, tok := range tokens {
			_, err := client.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(tok), Output: aws.String(`{}`)})
			var ae smithy.APIError
			switch {
			case err == nil:
			case errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException":
				pending = append(pending, tok)
			default:
				t.Fatal(err)
			}
		}
		return pending
	}
	pending := send(tokens)
	if len(pending) != n-5 {
		t.Fatalf("%d throttled of %d with a bucket of 5, want %d", len(pending), n, n-5)
	}
	e.clk.Advance(10 * time.Millisecond) // 5 tokens at 500 a second
	if left := send(pending); len(left) != 0 {
		t.Fatalf("%d still throttled after the refill", len(left))
	}
	e.idle()
	for _, ex := range e.eng.Executions() {
		if ex.Status != asl.StatusSucceeded {
			t.Errorf("%s: %s", ex.Name, ex.Status)
		}
	}
	if allowed, throttled := limits.Counts("SendTaskSuccess"); allowed != n || throttled != n-5 {
		t.Errorf("allowed %d, throttled %d", allowed, throttled)
	}
	// Other operations have no bucket.
	if _, err := client.ListStateMachines(ctx, &sfn.ListStateMachinesInput{}); err != nil {
		t.Error(err)
	}
}
