package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/connmgr/connmgr/shared/apperr"
)

// CountRequest counts one request of tenant's class in the fixed window
// that starts at window (Unix seconds) and reports whether it was within
// limit: one conditional UpdateItem on the window's counter item, atomic
// across every Lambda instance. A request over the limit leaves the count
// as it is. The item goes by TTL at expires (and a later window never
// reads it).
func (s *Store) CountRequest(ctx context.Context, tenant, class string, window int64, limit int, expires time.Time) (bool, error) {
	if !validKeyPart(tenant) || !validKeyPart(class) {
		return false, apperr.E(apperr.Invalid, "", "bad limit key")
	}
	upd := expression.Add(expression.Name("n"), expression.Value(1)).
		Set(expression.Name("expiresAt"), expression.Value(expires.Unix()))
	cond := expression.AttributeNotExists(expression.Name("n")).
		Or(expression.Name("n").LessThan(expression.Value(limit)))
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return false, fmt.Errorf("store.CountRequest: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(limitPK(tenant, class), "W#"+strconv.FormatInt(window, 10)),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if err == nil {
		return true, nil
	}
	if conditionFailed(err) {
		return false, nil
	}
	return false, fmt.Errorf("store.CountRequest %s: %w", class, classify(err))
}

func limitPK(tenant, class string) string { return "T#" + tenant + "#LIMIT#" + class }
