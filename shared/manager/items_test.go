package manager_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/connmgr/connmgr/local/apitest"
)

// dumpItems reads the whole table (a test-only Scan) to look for plaintext.
func dumpItems(t *testing.T, env *apitest.Env) []any {
	t.Helper()
	out, err := env.Stack.DynamoDBClient().Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(env.Stack.TableName)})
	if err != nil {
		t.Fatal(err)
	}
	items := make([]any, len(out.Items))
	for i, it := range out.Items {
		items[i] = it
	}
	return items
}
