package emulator_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/local/stacktest"
)

// The DynamoDB stand-in is minidyn, patched (local/minidyn, PATCHES.md):
// a Query reads only its partition's keys, of the table or of an index,
// and a transaction saves only the items it writes for its rollback.
// These tests hold both to DynamoDB's answers.

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// TestQueryOnePartition: a Query of the table or of an index returns
// exactly its partition's items, in order, page by page, even where
// partition values are prefixes of each other and an item's key string
// (minidyn joins hash and range with a dot) falls among another
// partition's.
func TestQueryOnePartition(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	table := aws.String(env.Stack.TableName)
	for _, k := range [][2]string{{"a", "1"}, {"a", "2"}, {"a", "3"}, {"a", "b.9"}, {"a.b", "1"}, {"a.b", "2"}, {"a-", "1"}, {"ab", "1"}, {"b", "1"}} {
		if _, err := env.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: map[string]types.AttributeValue{
			"pk": s(k[0]), "sk": s(k[1]), "gsi1pk": s(k[0]), "gsi1sk": s(k[1]), "n": &types.AttributeValueMemberN{Value: "1"}}}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		in   dynamodb.QueryInput
		want [][]string // sort keys, page by page (an empty last page aside)
	}{
		{name: "partition", in: dynamodb.QueryInput{KeyConditionExpression: aws.String("#p = :p"), ExpressionAttributeValues: map[string]types.AttributeValue{":p": s("a")}},
			want: [][]string{{"1", "2", "3", "b.9"}}},
		{name: "a partition whose key strings hold another's", in: dynamodb.QueryInput{KeyConditionExpression: aws.String("#p = :p"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": s("a.b")}}, want: [][]string{{"1", "2"}}},
		{name: "backwards", in: dynamodb.QueryInput{KeyConditionExpression: aws.String("#p = :p"), ScanIndexForward: aws.Bool(false),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": s("a")}}, want: [][]string{{"b.9", "3", "2", "1"}}},
		{name: "pages", in: dynamodb.QueryInput{KeyConditionExpression: aws.String("#p = :p"), Limit: aws.Int32(2),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": s("a")}}, want: [][]string{{"1", "2"}, {"3", "b.9"}}},
		{name: "pages backwards", in: dynamodb.QueryInput{KeyConditionExpression: aws.String("#p = :p"), Limit: aws.Int32(3), ScanIndexForward: aws.Bool(false),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": s("a")}}, want: [][]string{{"b.9", "3", "2"}, {"1"}}},
		{name: "sort key condition", in: dynamodb.QueryInput{KeyConditionExpression: aws.String("(#s BETWEEN :lo AND :hi) AND #p = :p"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": s("a"), ":lo": s("2"), ":hi": s("b")}}, want: [][]string{{"2", "3"}}},
		{name: "filter counts the partition's items only", in: dynamodb.QueryInput{KeyConditionExpression: aws.String("#p = :p"), FilterExpression: aws.String("#s <> :x"), Limit: aws.Int32(2),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": s("a.b"), ":x": s("1")}}, want: [][]string{{"2"}}},
		{name: "a partition that is a prefix", in: dynamodb.QueryInput{KeyConditionExpression: aws.String("#p = :p"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": s("a-")}}, want: [][]string{{"1"}}},
		{name: "no such partition", in: dynamodb.QueryInput{KeyConditionExpression: aws.String("#p = :p"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": s("c")}}, want: [][]string{nil}},
	}
	for _, on := range []struct {
		index      *string
		hash, sort string
	}{{nil, "pk", "sk"}, {aws.String("gsi1"), "gsi1pk", "gsi1sk"}} {
		for _, tt := range tests {
			t.Run(on.hash+" "+tt.name, func(t *testing.T) {
				in := tt.in
				in.TableName, in.IndexName = table, on.index
				in.ExpressionAttributeNames = map[string]string{"#p": on.hash}
				if strings.Contains(aws.ToString(in.KeyConditionExpression)+aws.ToString(in.FilterExpression), "#s") {
					in.ExpressionAttributeNames["#s"] = on.sort
				}
				var got [][]string
				for {
					out, err := env.DynamoDB.Query(ctx, &in)
					if err != nil {
						t.Fatal(err)
					}
					var page []string
					for _, it := range out.Items {
						page = append(page, it["sk"].(*types.AttributeValueMemberS).Value)
					}
					got = append(got, page)
					if out.LastEvaluatedKey == nil || len(got) > len(tt.want) {
						break
					}
					in.ExclusiveStartKey = out.LastEvaluatedKey
				}
				// A page that ends at the Limit may carry a LastEvaluatedKey
				// though nothing follows (minidyn does, moto does not).
				if n := len(got); n > 1 && len(got[n-1]) == 0 {
					got = got[:n-1]
				}
				if !slices.EqualFunc(got, tt.want, slices.Equal) {
					t.Errorf("pages %q, want %q", got, tt.want)
				}
			})
		}
	}
}

// TestCancelledTransactionUndone: a transaction cancelled by its last
// condition leaves every item it wrote, and the indexes, as they were.
func TestCancelledTransactionUndone(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	table := aws.String(env.Stack.TableName)
	item := func(pk, g string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": s(pk), "sk": s("x"), "gsi1pk": s("g"), "gsi1sk": s(g), "v": s("before")}
	}
	for _, pk := range []string{"kept", "updated", "deleted", "checked"} {
		if _, err := env.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item(pk, pk)}); err != nil {
			t.Fatal(err)
		}
	}
	key := func(pk string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": s(pk), "sk": s("x")}
	}
	state := func() (items []string, index []string) {
		for _, pk := range []string{"kept", "updated", "deleted", "checked", "added"} {
			out, err := env.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: key(pk), ConsistentRead: aws.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			if out.Item != nil {
				items = append(items, pk+"="+out.Item["v"].(*types.AttributeValueMemberS).Value+"/"+out.Item["gsi1sk"].(*types.AttributeValueMemberS).Value)
			}
		}
		out, err := env.DynamoDB.Query(ctx, &dynamodb.QueryInput{TableName: table, IndexName: aws.String("gsi1"),
			KeyConditionExpression: aws.String("gsi1pk = :g"), ExpressionAttributeValues: map[string]types.AttributeValue{":g": s("g")}})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range out.Items {
			index = append(index, it["gsi1sk"].(*types.AttributeValueMemberS).Value+"→"+it["pk"].(*types.AttributeValueMemberS).Value)
		}
		return items, index
	}
	items, index := state()

	_, err := env.DynamoDB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: table, Item: item("added", "added")}},
		{Update: &types.Update{TableName: table, Key: key("updated"), UpdateExpression: aws.String("SET v = :v, gsi1sk = :g"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": s("after"), ":g": s("zz")}}},
		{Delete: &types.Delete{TableName: table, Key: key("deleted")}},
		{ConditionCheck: &types.ConditionCheck{TableName: table, Key: key("checked"), ConditionExpression: aws.String("v = :no"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":no": s("never")}}},
	}})
	var cancelled *types.TransactionCanceledException
	if !errors.As(err, &cancelled) {
		t.Fatalf("transaction: %v, want TransactionCanceledException", err)
	}
	gotItems, gotIndex := state()
	if !slices.Equal(gotItems, items) || !slices.Equal(gotIndex, index) {
		t.Errorf("after the cancelled transaction: items %q, index %q; want %q, %q", gotItems, gotIndex, items, index)
	}
}
