package store

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/vault"
)

// Token storage, the refresh lease and last-used time: the writes the
// resolver and the OAuth callback make on a connection. They touch only the
// attributes they own (UpdateItem SET, never REMOVE) and, of the indexes,
// only the due index (gsi3), never the availability indexes.

const skLease = "LEASE#REFRESH"

// ErrSecretChanged: the stored secret is no longer the version the write
// was based on (someone refreshed or reconnected meanwhile). Re-read.
var ErrSecretChanged = apperr.E(apperr.PreconditionFailed, "secret_changed", "the connection's credentials changed meanwhile")

// ErrLeaseLost: the refresh lease expired and another instance took it.
var ErrLeaseLost = apperr.E(apperr.Conflict, "lease_lost", "the refresh lease was taken over")

type leaseItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Owner     string `dynamodbav:"owner"`
	UntilMs   int64  `dynamodbav:"leaseUntilMs"`
	ExpiresAt int64  `dynamodbav:"expiresAt"` // TTL cleanup, an hour after the lease ends
}

// AcquireLease takes the refresh lease of a connection for owner until
// now+ttl: a conditional put that succeeds only when no lease item exists or
// the one there has expired (a dead holder's lease simply runs out). It
// reports whether owner now holds the lease.
func (s *Store) AcquireLease(ctx context.Context, tenant, id, owner string, ttl time.Duration) (bool, error) {
	if !validKeyPart(id) || owner == "" {
		return false, apperr.NotFoundf("connection not found")
	}
	now := s.now()
	item, err := marshal(leaseItem{PK: connPK(tenant, id), SK: skLease, Owner: owner,
		UntilMs: now.Add(ttl).UnixMilli(), ExpiresAt: now.Add(ttl + time.Hour).Unix()})
	if err != nil {
		return false, err
	}
	cond := expression.AttributeNotExists(expression.Name("pk")).
		Or(expression.Name("leaseUntilMs").LessThanEqual(expression.Value(now.UnixMilli())))
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return false, fmt.Errorf("store.AcquireLease: %w", err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item, ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if err == nil {
		return true, nil
	}
	if conditionFailed(err) {
		return false, nil
	}
	return false, fmt.Errorf("store.AcquireLease %s: %w", id, classify(err))
}

// ReleaseLease deletes the lease if owner still holds it, and reports
// whether it did (false: it expired and someone else took it, or it is gone).
func (s *Store) ReleaseLease(ctx context.Context, tenant, id, owner string) (bool, error) {
	cond := expression.Name("owner").Equal(expression.Value(owner))
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return false, fmt.Errorf("store.ReleaseLease: %w", err)
	}
	_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table), Key: key(connPK(tenant, id), skLease),
		ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if err == nil {
		return true, nil
	}
	if conditionFailed(err) {
		return false, nil
	}
	return false, fmt.Errorf("store.ReleaseLease %s: %w", id, classify(err))
}

// TokenWrite is a new sealed token set for a connection.
type TokenWrite struct {
	Tenant, ID string
	// FromSecretVersion is the secret version the new tokens replace; the
	// write succeeds only if it is still the stored one. The new secret
	// version is FromSecretVersion+1 and Secret must be sealed to
	// vault.Binding{Tenant, ID, FromSecretVersion+1}.
	FromSecretVersion int64
	Secret            vault.Sealed
	// TokenEndpoint is the origin of the token endpoint the tokens came
	// from; part of their binding (connection.Connection.Destinations).
	TokenEndpoint string
	// SecretFields names what the token set holds; empty keeps the stored list.
	SecretFields   []string
	TokenExpiresAt time.Time
	// RefreshTokenExpiresAt is when the new refresh token expires (zero:
	// the provider did not say). Kept beside TokenExpiresAt, in the clear:
	// the due index files the connection by it.
	RefreshTokenExpiresAt time.Time
	// Status and StatusReason are written with the tokens; an empty Status
	// is active with no reason (a new authorization). A refresh passes the
	// status it leaves the connection in (expiry.Policy.AfterRefresh).
	Status       connection.Status
	StatusReason string
	// ExpectedStatus, when set, also requires the stored status: the one
	// Status was decided on.
	ExpectedStatus connection.Status
	// ExpectedVersion, when not 0, also requires the connection's version
	// (needed with Audit, whose entry records the version written).
	ExpectedVersion int64
	Audit           *connection.AuditEntry
	// Events are recorded in the outbox with an audited write.
	Events []events.Event
}

// PutTokens stores new tokens with the status w says (active, no reason,
// unless set), bumping secretVersion and version, and files the connection
// in the due index for its new tokens. A concurrent change of the secret
// is ErrSecretChanged (and of the version, with ExpectedVersion, or of the
// status, with ExpectedStatus, PreconditionFailed version_mismatch); a
// vanished connection is NotFound.
func (s *Store) PutTokens(ctx context.Context, w TokenWrite) error {
	if w.Audit != nil && w.ExpectedVersion == 0 {
		return fmt.Errorf("store.PutTokens: an audited write needs the expected version")
	}
	if len(w.Events) > 0 && w.Audit == nil {
		return fmt.Errorf("store.PutTokens: events are written with an audited write")
	}
	now := s.now()
	status, reason := w.Status, w.StatusReason
	if status == "" {
		status, reason = connection.StatusActive, ""
	}
	gsi3pk, gsi3sk := s.dueAfterWrite(w.Tenant, w.ID, expiry.Facts{OAuth: true, Status: status, HasSecret: true,
		TokenExpiresAt: w.TokenExpiresAt, TokensAt: now, RefreshTokenExpiresAt: w.RefreshTokenExpiresAt})
	upd := expression.Set(expression.Name("secretKey"), expression.Value(w.Secret.EncryptedKey)).
		Set(expression.Name("secretNonce"), expression.Value(w.Secret.Nonce)).
		Set(expression.Name("secretCt"), expression.Value(w.Secret.Ciphertext)).
		Set(expression.Name("secretVersion"), expression.Value(w.FromSecretVersion+1)).
		Set(expression.Name("tokenEndpoint"), expression.Value(w.TokenEndpoint)).
		Set(expression.Name("tokenExpiresAt"), expression.Value(epoch(w.TokenExpiresAt))).
		Set(expression.Name("refreshTokenExpiresAt"), expression.Value(epoch(w.RefreshTokenExpiresAt))).
		Set(expression.Name("status"), expression.Value(string(status))).
		Set(expression.Name("statusReason"), expression.Value(reason)).
		Set(expression.Name("updatedAt"), expression.Value(now.UTC())).
		Set(expression.Name("tokensAt"), expression.Value(now.Unix())).
		Set(expression.Name("gsi3pk"), expression.Value(gsi3pk)).
		Set(expression.Name("gsi3sk"), expression.Value(gsi3sk))
	if len(w.SecretFields) > 0 {
		// Only a non-empty list: minidyn stores garbage for SET to an empty list.
		upd = upd.Set(expression.Name("secretFields"), expression.Value(w.SecretFields))
	}
	cond := expression.AttributeExists(expression.Name("pk")).
		And(expression.Name("secretVersion").Equal(expression.Value(w.FromSecretVersion)))
	if w.ExpectedStatus != "" {
		cond = cond.And(expression.Name("status").Equal(expression.Value(string(w.ExpectedStatus))))
	}
	if w.ExpectedVersion != 0 {
		upd = upd.Set(expression.Name("version"), expression.Value(w.ExpectedVersion+1))
		cond = cond.And(expression.Name("version").Equal(expression.Value(w.ExpectedVersion)))
	} else {
		upd = upd.Set(expression.Name("version"), expression.Name("version").Plus(expression.Value(1)))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return fmt.Errorf("store.PutTokens: %w", err)
	}
	u := &types.Update{
		TableName: aws.String(s.table), Key: key(connPK(w.Tenant, w.ID), skConn),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}
	if w.Audit == nil {
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression, ConditionExpression: u.ConditionExpression,
			ExpressionAttributeNames: u.ExpressionAttributeNames, ExpressionAttributeValues: u.ExpressionAttributeValues,
		})
	} else {
		var audit types.TransactWriteItem
		if audit, err = s.put(toAuditItem(w.Tenant, w.ID, *w.Audit), nil); err != nil {
			return err
		}
		err = s.transact(ctx, []types.TransactWriteItem{{Update: u}, audit}, w.Events)
	}
	if err == nil {
		return nil
	}
	if conditionFailed(err) || conditionFailedAt(err, 0) {
		return s.whyStale(ctx, w.Tenant, w.ID, w.FromSecretVersion, err)
	}
	return fmt.Errorf("store.PutTokens %s: %w", w.ID, classify(err))
}

// whyStale names the failed condition of a write based on secret version sv.
func (s *Store) whyStale(ctx context.Context, tenant, id string, sv int64, cause error) error {
	r, err := s.Get(ctx, tenant, id)
	if err != nil {
		return err
	}
	if r.Conn.SecretVersion != sv {
		return &apperr.Error{Kind: ErrSecretChanged.Kind, Code: ErrSecretChanged.Code, Message: ErrSecretChanged.Message, Err: cause}
	}
	return apperr.Wrap(apperr.PreconditionFailed, "version_mismatch", "the connection was changed by someone else; read it again", cause)
}

// ExpiredMark records that the provider rejected a connection's stored
// credentials.
type ExpiredMark struct {
	Tenant, ID string
	// SecretVersion is the version whose tokens were rejected; the mark is
	// written only while it is still the stored one, so a token another
	// instance stored meanwhile is never marked expired.
	SecretVersion int64
	// ExpectedVersion is the connection version read (the audit entry
	// records ExpectedVersion+1).
	ExpectedVersion int64
	// Reason is the provider's error code (for example invalid_grant).
	Reason string
	// LeaseOwner, when set, must still hold the refresh lease.
	LeaseOwner string
	Audit      connection.AuditEntry
	Events     []events.Event
}

// MarkExpired sets status expired with the reason, in one transaction with
// the audit entry, and parks the connection outside the due buckets (an
// expired connection waits for a person). Errors: ErrSecretChanged when
// the secret moved on, version_mismatch when only other attributes changed
// (re-read and retry), ErrLeaseLost, NotFound.
func (s *Store) MarkExpired(ctx context.Context, m ExpiredMark) error {
	gsi3pk, gsi3sk := s.dueAfterWrite(m.Tenant, m.ID, expiry.Facts{OAuth: true, Status: connection.StatusExpired})
	upd := expression.Set(expression.Name("status"), expression.Value(string(connection.StatusExpired))).
		Set(expression.Name("statusReason"), expression.Value(m.Reason)).
		Set(expression.Name("updatedAt"), expression.Value(s.now().UTC())).
		Set(expression.Name("version"), expression.Value(m.ExpectedVersion+1)).
		Set(expression.Name("gsi3pk"), expression.Value(gsi3pk)).
		Set(expression.Name("gsi3sk"), expression.Value(gsi3sk))
	cond := expression.AttributeExists(expression.Name("pk")).
		And(expression.Name("secretVersion").Equal(expression.Value(m.SecretVersion))).
		And(expression.Name("version").Equal(expression.Value(m.ExpectedVersion)))
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return fmt.Errorf("store.MarkExpired: %w", err)
	}
	items := []types.TransactWriteItem{{Update: &types.Update{
		TableName: aws.String(s.table), Key: key(connPK(m.Tenant, m.ID), skConn),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}}}
	if m.LeaseOwner != "" {
		lc, err := expression.NewBuilder().WithCondition(expression.Name("owner").Equal(expression.Value(m.LeaseOwner))).Build()
		if err != nil {
			return fmt.Errorf("store.MarkExpired: %w", err)
		}
		items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(s.table), Key: key(connPK(m.Tenant, m.ID), skLease),
			ConditionExpression: lc.Condition(), ExpressionAttributeNames: lc.Names(), ExpressionAttributeValues: lc.Values(),
		}})
	}
	audit, err := s.put(toAuditItem(m.Tenant, m.ID, m.Audit), nil)
	if err != nil {
		return err
	}
	items = append(items, audit)
	err = s.transact(ctx, items, m.Events)
	if err == nil {
		return nil
	}
	if conditionFailedAt(err, 0) {
		return s.whyStale(ctx, m.Tenant, m.ID, m.SecretVersion, err)
	}
	if m.LeaseOwner != "" && conditionFailedAt(err, 1) {
		return &apperr.Error{Kind: ErrLeaseLost.Kind, Code: ErrLeaseLost.Code, Message: ErrLeaseLost.Message, Err: err}
	}
	return fmt.Errorf("store.MarkExpired %s: %w", m.ID, classify(err))
}

// TouchLastUsed records that the connection was used at `at`, if that is
// later than what is recorded. It changes neither version nor updatedAt, so
// it never conflicts with an edit; a deleted connection is left deleted.
func (s *Store) TouchLastUsed(ctx context.Context, tenant, id string, at time.Time) error {
	t := at.Unix()
	upd := expression.Set(expression.Name("lastUsedAt"), expression.Value(t))
	cond := expression.AttributeExists(expression.Name("pk")).
		And(expression.AttributeNotExists(expression.Name("lastUsedAt")).Or(expression.Name("lastUsedAt").LessThan(expression.Value(t))))
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return fmt.Errorf("store.TouchLastUsed: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(connPK(tenant, id), skConn),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if err == nil || conditionFailed(err) {
		return nil
	}
	return fmt.Errorf("store.TouchLastUsed %s: %w", id, classify(err))
}

// Lease reads the refresh lease of a connection (for tests and operators):
// its owner and when it ends; ok is false when there is none.
func (s *Store) Lease(ctx context.Context, tenant, id string) (owner string, until time.Time, ok bool, err error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key(connPK(tenant, id), skLease), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return "", time.Time{}, false, fmt.Errorf("store.Lease %s: %w", id, classify(err))
	}
	if out.Item == nil {
		return "", time.Time{}, false, nil
	}
	var it leaseItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return "", time.Time{}, false, fmt.Errorf("store.Lease %s: %w", id, err)
	}
	return it.Owner, time.UnixMilli(it.UntilMs).UTC(), true, nil
}
