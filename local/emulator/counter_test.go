package emulator_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/connmgr/connmgr/local/stacktest"
)

// TestCounterRoundTrips: calls that wait on each other are as many round
// trips as calls; calls in flight together, to one service or several,
// are one; requests are counted by service.
func TestCounterRoundTrips(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	env.DDB.SetLatency(20 * time.Millisecond)
	env.KMS.SetLatency(20 * time.Millisecond)
	get := func() {
		if _, err := env.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(env.Stack.TableName),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "x"}, "sk": &types.AttributeValueMemberS{Value: "y"}}}); err != nil {
			t.Error(err)
		}
	}
	describe := func() {
		if _, err := env.KMSAPI.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(env.Stack.KeyAlias)}); err != nil {
			t.Error(err)
		}
	}
	together := func(calls ...func()) func() {
		return func() {
			var wg sync.WaitGroup
			for _, c := range calls {
				wg.Go(c)
			}
			wg.Wait()
		}
	}
	tests := []struct {
		name           string
		run            []func()
		ddb, kms, trip int64
	}{
		{"one after another", []func(){get, get, describe}, 2, 1, 3},
		{"together", []func(){together(get, get, get)}, 3, 0, 1},
		{"two services together", []func(){together(get, describe)}, 1, 1, 1},
		{"two rounds", []func(){together(get, get), together(get, describe)}, 3, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.Reset()
			for _, f := range tt.run {
				f()
			}
			if ddb, k, trips := env.DDB.Sent("DynamoDB"), env.KMS.Sent("KMS"), env.Trips.Count(); ddb != tt.ddb || k != tt.kms || trips != tt.trip {
				t.Errorf("DynamoDB %d, KMS %d in %d round trips; want %d, %d in %d", ddb, k, trips, tt.ddb, tt.kms, tt.trip)
			}
		})
	}
}
