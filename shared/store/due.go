package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	"github.com/connmgr/connmgr/shared/runs"
)

// The due index (gsi3, see doc.go): items that need the scheduled check at
// a moment, partitioned by the hour bucket of that moment.
const (
	duePrefix = "DUE#"
	// dueParked is where an item that was due and has nothing due now
	// goes: partitions the check never reads. UpdateItem writes cannot
	// drop the index attributes (REMOVE is not used, see doc.go), and a
	// whole-item write that drops them leaves the emulator's index
	// inconsistent once the item is deleted, so neither path drops them.
	// They are spread over parkedShards partitions, DUE#NONE#<n> by a
	// hash of the entry, so parking never funnels every write of the
	// stack into one index partition (about 1,000 writes a second). Items
	// parked before the shards stay in DUE#NONE, equally unread.
	dueParked    = "DUE#NONE#"
	parkedShards = 16
	checkpointPK = "EXPIRYCHECK"
	checkpointSK = "CHECKPOINT"
	// duePage is the Query page size on the due index.
	duePage = 500
	// maxGroup bounds the status changes written in one transaction.
	maxGroup = 25
)

// DueKind says what an entry of the due index is.
type DueKind string

// Kinds of due entries (the second field of the sort key).
const (
	DueConnection DueKind = "C"
	DueRun        DueKind = "R"
	// DueOAuthClient: a tenant's OAuth client registration whose secret
	// expires; the entry's ID is the connection type.
	DueOAuthClient DueKind = "O"
)

const (
	connDueKind   = string(DueConnection)
	runDueKind    = string(DueRun)
	clientDueKind = string(DueOAuthClient)
)

// DueProjection lists the attributes gsi3 projects besides the keys
// (template.yaml's NonKeyAttributes): what the check needs to decide a
// connection's transition, or a client registration's notice, and describe
// it in an event without reading the item.
var DueProjection = []string{"tenant", "id", "type", "name", "kind", "owners", "status", "statusReason", "version",
	"secretVersion", "tokenExpiresAt", "tokensAt", "passwordExpiresAt", "refreshTokenExpiresAt",
	"clientId", "secretExpiresAt", "secretNotice"}

func duePK(b expiry.Bucket) string { return duePrefix + b.String() }

func dueSK(kind, tenant, id string, due time.Time) string {
	return expiry.DueKey(due) + "#" + kind + "#" + tenant + "#" + id
}

// dueKeys are the index attributes of an item due at due, written at now.
func dueKeys(kind, tenant, id string, due, now time.Time) (string, string) {
	return duePK(expiry.FileAt(due, now)), dueSK(kind, tenant, id, due)
}

// parkedKeys are the index attributes of an item that was due and has
// nothing due now: its sort key names it, and picks its shard.
func parkedKeys(kind, tenant, id string) (string, string) {
	sk := kind + "#" + tenant + "#" + id
	return dueParked + strconv.Itoa(shardOf(sk, parkedShards)), sk
}

// dueAfterWrite are the index attributes an UpdateItem of a connection
// with facts f sets: its bucket, or the parked partition.
func (s *Store) dueAfterWrite(tenant, id string, f expiry.Facts) (string, string) {
	if due, ok := s.policy.Due(f); ok {
		return dueKeys(connDueKind, tenant, id, due, s.now())
	}
	return parkedKeys(connDueKind, tenant, id)
}

// DueEntry is one item of the due index.
type DueEntry struct {
	Kind       DueKind
	Tenant, ID string
	Due        time.Time
	Bucket     expiry.Bucket
	// SortKey identifies this filing: writes that act on the entry are
	// conditioned on the item still carrying it.
	SortKey string
	// For connection entries, the state the index projects: Tenant, ID,
	// Type, Name, Kind, Owners, Status, StatusReason, Version,
	// SecretVersion, TokenExpiresAt, RefreshTokenExpiresAt (no settings,
	// no secret). It may lag the item by the index's propagation delay;
	// every write based on it is conditioned on Version.
	Conn              connection.Connection
	PasswordExpiresAt time.Time
	TokensAt          time.Time
	// Client is an OAuth client entry's registration as projected.
	Client OAuthClientDue
	// Err: the index item does not decode (a projected attribute of the
	// wrong type, a malformed due key). Only what its keys say is set:
	// SortKey, Bucket and, when the sort key has its four fields, Kind,
	// Tenant, ID and Due. It can still be re-filed (Refile, RefileFailed),
	// which addresses the item by its table keys.
	Err    error
	pk, sk string
}

// OAuthClientDue is what the due index projects of a client registration:
// no secret.
type OAuthClientDue struct {
	Type, ClientID  string
	Version         int64
	SecretVersion   int64
	SecretExpiresAt time.Time
	// Notice is what was announced of this secret's expiry so far.
	Notice expiry.Notice
}

// Facts are the entry's facts for the expiry policy, with status.
func (e *DueEntry) Facts(status connection.Status) expiry.Facts {
	f := expiry.Facts{Status: status, HasSecret: e.Conn.SecretVersion > 0, PasswordExpiresAt: e.PasswordExpiresAt,
		TokenExpiresAt: e.Conn.TokenExpiresAt, TokensAt: e.TokensAt, RefreshTokenExpiresAt: e.Conn.RefreshTokenExpiresAt}
	if typ, err := connection.Lookup(e.Conn.Type, "type"); err == nil {
		f.OAuth = typ.AuthMethod.IsOAuth()
	}
	return f
}

type dueItem struct {
	PK                string   `dynamodbav:"pk"`
	SK                string   `dynamodbav:"sk"`
	GSI3PK            string   `dynamodbav:"gsi3pk"`
	GSI3SK            string   `dynamodbav:"gsi3sk"`
	Tenant            string   `dynamodbav:"tenant"`
	ID                string   `dynamodbav:"id"`
	Type              string   `dynamodbav:"type"`
	Name              string   `dynamodbav:"name"`
	Kind              string   `dynamodbav:"kind"`
	Owners            []string `dynamodbav:"owners"`
	Status            string   `dynamodbav:"status"`
	StatusReason      string   `dynamodbav:"statusReason"`
	Version           int64    `dynamodbav:"version"`
	SecretVersion     int64    `dynamodbav:"secretVersion"`
	TokenExpiresAt    int64    `dynamodbav:"tokenExpiresAt"`
	TokensAt          int64    `dynamodbav:"tokensAt"`
	PasswordExpiresAt int64    `dynamodbav:"passwordExpiresAt"`
	RefreshExpiresAt  int64    `dynamodbav:"refreshTokenExpiresAt"`
	ClientID          string   `dynamodbav:"clientId"`
	SecretExpiresAt   int64    `dynamodbav:"secretExpiresAt"`
	SecretNotice      string   `dynamodbav:"secretNotice"`
}

func parseDue(it dueItem) (DueEntry, error) {
	e := DueEntry{SortKey: it.GSI3SK, pk: it.PK, sk: it.SK}
	b, ok := strings.CutPrefix(it.GSI3PK, duePrefix)
	if !ok {
		return DueEntry{}, fmt.Errorf("store: due entry %q is not in a bucket", it.GSI3PK)
	}
	var err error
	if e.Bucket, err = expiry.ParseBucket(b); err != nil {
		return DueEntry{}, err
	}
	parts := strings.SplitN(it.GSI3SK, "#", 4)
	if len(parts) != 4 {
		return DueEntry{}, fmt.Errorf("store: due entry %q is malformed", it.GSI3SK)
	}
	if e.Due, err = expiry.ParseDueKey(parts[0]); err != nil {
		return DueEntry{}, err
	}
	e.Kind, e.Tenant, e.ID = DueKind(parts[1]), parts[2], parts[3]
	switch e.Kind {
	case DueConnection:
		e.Conn = connection.Connection{Tenant: e.Tenant, ID: e.ID, Type: it.Type, Name: it.Name, Kind: connection.Kind(it.Kind),
			Owners: it.Owners, Status: connection.Status(it.Status), StatusReason: it.StatusReason, Version: it.Version,
			SecretVersion: it.SecretVersion, TokenExpiresAt: fromEpoch(it.TokenExpiresAt), RefreshTokenExpiresAt: fromEpoch(it.RefreshExpiresAt)}
		e.PasswordExpiresAt, e.TokensAt = fromEpoch(it.PasswordExpiresAt), fromEpoch(it.TokensAt)
	case DueOAuthClient:
		e.Client = OAuthClientDue{Type: it.Type, ClientID: it.ClientID, Version: it.Version, SecretVersion: it.SecretVersion,
			SecretExpiresAt: fromEpoch(it.SecretExpiresAt), Notice: expiry.Notice(it.SecretNotice)}
	}
	return e, nil
}

// unreadableDue is the entry of an index item that does not decode: what
// its keys say, and why.
func unreadableDue(item map[string]types.AttributeValue, err error) DueEntry {
	str := func(k string) string {
		if v, ok := item[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	e := DueEntry{SortKey: str("gsi3sk"), pk: str("pk"), sk: str("sk")}
	e.Err = fmt.Errorf("store.EachDue: entry %q does not decode: %w", e.SortKey, err)
	if b, ok := strings.CutPrefix(str("gsi3pk"), duePrefix); ok {
		e.Bucket, _ = expiry.ParseBucket(b)
	}
	if parts := strings.SplitN(e.SortKey, "#", 4); len(parts) == 4 {
		e.Kind, e.Tenant, e.ID = DueKind(parts[1]), parts[2], parts[3]
		e.Due, _ = expiry.ParseDueKey(parts[0])
	}
	return e
}

// EachDue calls fn with the entries of bucket b due at or before until, in
// due order, one page at a time; it stops at fn's first error. An item that
// does not decode is handed over as an entry with Err set, so one bad item
// never hides the others. Reads are the entries returned and nothing else.
func (s *Store) EachDue(ctx context.Context, b expiry.Bucket, until time.Time, fn func([]DueEntry) error) error {
	kc := expression.Key("gsi3pk").Equal(expression.Value(duePK(b))).
		And(expression.Key("gsi3sk").LessThan(expression.Value(expiry.DueKey(until.Add(time.Second)))))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return fmt.Errorf("store.EachDue: %w", err)
	}
	var start map[string]types.AttributeValue
	for {
		out, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(s.table), IndexName: aws.String(IndexDue),
			KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
			Limit: aws.Int32(duePage), ExclusiveStartKey: start,
		})
		if err != nil {
			return fmt.Errorf("store.EachDue %s: %w", b, classify(err))
		}
		page := make([]DueEntry, 0, len(out.Items))
		for _, item := range out.Items {
			var it dueItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				page = append(page, unreadableDue(item, err))
				continue
			}
			e, err := parseDue(it)
			if err != nil {
				page = append(page, unreadableDue(item, err))
				continue
			}
			page = append(page, e)
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		start = out.LastEvaluatedKey
	}
}

// DueEntryOf is the entry a connection record is filed under now (false:
// nothing is due), as read back consistently from the item.
func (s *Store) DueEntryOf(r *Record) (DueEntry, bool) {
	it, err := s.toItem(r)
	if err != nil || it.GSI3PK == "" {
		return DueEntry{}, false
	}
	e, err := parseDue(dueItem{PK: it.PK, SK: it.SK, GSI3PK: it.GSI3PK, GSI3SK: it.GSI3SK, Tenant: it.Tenant, ID: it.ID, Type: it.Type,
		Name: it.Name, Kind: it.Kind, Owners: it.Owners, Status: it.Status, StatusReason: it.StatusReason, Version: it.Version,
		SecretVersion: it.SecretVersion, TokenExpiresAt: it.TokenExpiresAt, TokensAt: it.TokensAt, PasswordExpiresAt: it.PasswordExpiresAt,
		RefreshExpiresAt: it.RefreshTokenExpiresAt})
	if err != nil {
		return DueEntry{}, false
	}
	return e, true
}

type checkpointItem struct {
	PK        string    `dynamodbav:"pk"`
	SK        string    `dynamodbav:"sk"`
	Bucket    string    `dynamodbav:"bucket"`
	UpdatedAt time.Time `dynamodbav:"updatedAt"`
}

// Checkpoint is the last bucket the check processed completely; false
// before the first.
func (s *Store) Checkpoint(ctx context.Context) (expiry.Bucket, bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(checkpointPK, checkpointSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, false, fmt.Errorf("store.Checkpoint: %w", classify(err))
	}
	if out.Item == nil {
		return 0, false, nil
	}
	var it checkpointItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return 0, false, fmt.Errorf("store.Checkpoint: %w", err)
	}
	b, err := expiry.ParseBucket(it.Bucket)
	if err != nil {
		return 0, false, err
	}
	return b, true, nil
}

// AdvanceCheckpoint records b as processed; it never moves the checkpoint
// back (a slower overlapping check's write is a no-op).
func (s *Store) AdvanceCheckpoint(ctx context.Context, b expiry.Bucket) error {
	cond := expression.AttributeNotExists(expression.Name("pk")).Or(expression.Name("bucket").LessThan(expression.Value(b.String())))
	ti, err := s.put(checkpointItem{PK: checkpointPK, SK: checkpointSK, Bucket: b.String(), UpdatedAt: s.now().UTC()}, &cond)
	if err != nil {
		return err
	}
	p := ti.Put
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: p.TableName, Item: p.Item, ConditionExpression: p.ConditionExpression,
		ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues})
	if err == nil || conditionFailed(err) {
		return nil
	}
	return fmt.Errorf("store.AdvanceCheckpoint: %w", classify(err))
}

// StatusChange moves a connection from the status a due entry showed to
// another: the expiry check's transitions.
type StatusChange struct {
	Entry  DueEntry
	To     connection.Status
	Reason string
	Audit  connection.AuditEntry
	Events []events.Event
}

// ErrMovedOn: the item is no longer what the write was decided on (another
// writer changed it); re-read it.
var ErrMovedOn = apperr.E(apperr.PreconditionFailed, "version_mismatch", "the item changed since it was read")

// ApplyStatusChanges writes each change conditioned on the version and
// status it was decided on, with its audit entry and events, and files the
// connection under its next due time: up to 25 changes per transaction. A
// change whose condition fails is left out and the rest of its group
// retried, so each change commits at most once. errs[i] is nil when change
// i committed, ErrMovedOn when its connection moved on (or is gone).
func (s *Store) ApplyStatusChanges(ctx context.Context, chs []StatusChange) []error {
	errs := make([]error, len(chs))
	built := make([][]types.TransactWriteItem, len(chs))
	for i := range chs {
		built[i], errs[i] = s.statusChangeItems(&chs[i])
	}
	var group []int
	size := 0
	flush := func() {
		if len(group) > 0 {
			s.commitGroup(ctx, group, built, errs)
		}
		group, size = nil, 0
	}
	for i := range chs {
		if errs[i] != nil {
			continue
		}
		if len(group) == maxGroup || size+len(built[i]) > 100 {
			flush()
		}
		group = append(group, i)
		size += len(built[i])
	}
	flush()
	return errs
}

func (s *Store) statusChangeItems(ch *StatusChange) ([]types.TransactWriteItem, error) {
	e := &ch.Entry
	if e.Kind != DueConnection {
		return nil, fmt.Errorf("store.ApplyStatusChanges: entry %s is not a connection", e.SortKey)
	}
	gsi3pk, gsi3sk := s.dueAfterWrite(e.Tenant, e.ID, e.Facts(ch.To))
	upd := expression.Set(expression.Name("status"), expression.Value(string(ch.To))).
		Set(expression.Name("statusReason"), expression.Value(ch.Reason)).
		Set(expression.Name("version"), expression.Value(e.Conn.Version+1)).
		Set(expression.Name("updatedAt"), expression.Value(ch.Audit.At.UTC())).
		Set(expression.Name("gsi3pk"), expression.Value(gsi3pk)).
		Set(expression.Name("gsi3sk"), expression.Value(gsi3sk))
	cond := expression.AttributeExists(expression.Name("pk")).
		And(expression.Name("version").Equal(expression.Value(e.Conn.Version))).
		And(expression.Name("status").Equal(expression.Value(string(e.Conn.Status))))
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return nil, fmt.Errorf("store.ApplyStatusChanges: %w", err)
	}
	items := []types.TransactWriteItem{{Update: &types.Update{
		TableName: aws.String(s.table), Key: key(connPK(e.Tenant, e.ID), skConn),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}}}
	audit, err := s.put(toAuditItem(e.Tenant, e.ID, ch.Audit), nil)
	if err != nil {
		return nil, err
	}
	outbox, err := s.outboxPuts(ch.Events)
	if err != nil {
		return nil, err
	}
	return append(append(items, audit), outbox...), nil
}

// commitGroup writes the changes of group in one transaction, dropping
// those whose condition fails and trying the others again at once: each
// such round drops a change, so it ends. A transaction cancelled by a
// TransactionConflict alone is tried again after a wait (conflictRetry).
// (DynamoDB names every failed condition in the cancellation reasons; the
// emulator only the first.)
func (s *Store) commitGroup(ctx context.Context, group []int, built [][]types.TransactWriteItem, errs []error) {
	err := conflictRetry.Do(ctx, func(int) (bool, error) {
		for len(group) > 0 {
			var items []types.TransactWriteItem
			for _, i := range group {
				items = append(items, built[i]...)
			}
			_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
			if err == nil {
				group = nil
				return false, nil
			}
			var tce *types.TransactionCanceledException
			if !errors.As(err, &tce) {
				return false, err
			}
			// Each change's first item is its conditioned update: drop the
			// changes whose condition failed, retry the rest (cancelled only
			// because they shared the transaction).
			var rest []int
			at := 0
			for _, i := range group {
				if conditionFailedAt(err, at) {
					errs[i] = &apperr.Error{Kind: ErrMovedOn.Kind, Code: ErrMovedOn.Code, Message: ErrMovedOn.Message, Err: err}
				} else {
					rest = append(rest, i)
				}
				at += len(built[i])
			}
			if len(rest) == len(group) {
				return transactionConflict(err), err
			}
			group = rest
		}
		return false, nil
	})
	if err == nil {
		return
	}
	// The changes left: the transaction failed, or kept colliding (Do's
	// error wraps the last cancellation, so classify still names it).
	for _, i := range group {
		errs[i] = fmt.Errorf("store.ApplyStatusChanges: %w", classify(err))
	}
}

// Refile moves an entry to the bucket of at (a retry after a failure), if
// the item still carries it; an item that moved on meanwhile is left alone.
func (s *Store) Refile(ctx context.Context, e DueEntry, at time.Time) error {
	pk, sk := dueKeys(string(e.Kind), e.Tenant, e.ID, at, s.now())
	upd := expression.Set(expression.Name("gsi3pk"), expression.Value(pk)).Set(expression.Name("gsi3sk"), expression.Value(sk))
	cond := expression.Name("gsi3sk").Equal(expression.Value(e.SortKey))
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return fmt.Errorf("store.Refile: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(e.pk, e.sk),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if err == nil || conditionFailed(err) {
		return nil
	}
	return fmt.Errorf("store.Refile %s: %w", e.ID, classify(err))
}

// The failure streak of an item the check could not handle, kept on the
// item that carries its due entry (UpdateItem SET; a whole-item write drops
// them, which ends the streak too).
const (
	// failedEntryAttr is the sort key a failure re-filed the item under:
	// a failure of that very entry continues the streak; any other
	// filing (a transition, a refresh, an administrator's write) means the
	// item was handled since, and its next failure begins a new streak.
	failedEntryAttr = "checkFailedEntry"
	failuresAttr    = "checkFailures"     // failures in the streak
	failingSince    = "checkFailingSince" // epoch seconds of its first
)

// RefileFailed re-files, to at, an entry the check could not handle, like
// Refile, and keeps the failure streak on the item: the first failure of a
// streak writes ev to the outbox in the same transaction (reported true);
// a failure of the entry an earlier failure re-filed only counts. So
// overlapping checks, and a check failing the item every hour, report it
// once per streak. An item that moved on meanwhile is left alone (false,
// nil).
func (s *Store) RefileFailed(ctx context.Context, e DueEntry, at time.Time, ev events.Event) (reported bool, err error) {
	now := s.now()
	pk, sk := dueKeys(string(e.Kind), e.Tenant, e.ID, at, now)
	update := func(upd expression.UpdateBuilder, cond expression.ConditionBuilder) (*types.Update, error) {
		upd = upd.Set(expression.Name("gsi3pk"), expression.Value(pk)).Set(expression.Name("gsi3sk"), expression.Value(sk)).
			Set(expression.Name(failedEntryAttr), expression.Value(sk))
		expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(expression.Name("gsi3sk").Equal(expression.Value(e.SortKey)).And(cond)).Build()
		if err != nil {
			return nil, fmt.Errorf("store.RefileFailed: %w", err)
		}
		return &types.Update{TableName: aws.String(s.table), Key: key(e.pk, e.sk), UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values()}, nil
	}
	// The streak goes on: the item still carries the entry a failure filed.
	again, err := update(expression.Set(expression.Name(failuresAttr), expression.Name(failuresAttr).Plus(expression.Value(1))),
		expression.Name(failedEntryAttr).Equal(expression.Value(e.SortKey)))
	if err != nil {
		return false, err
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: again.TableName, Key: again.Key, UpdateExpression: again.UpdateExpression,
		ConditionExpression: again.ConditionExpression, ExpressionAttributeNames: again.ExpressionAttributeNames, ExpressionAttributeValues: again.ExpressionAttributeValues})
	if err == nil {
		return false, nil
	}
	if !conditionFailed(err) {
		return false, fmt.Errorf("store.RefileFailed %s: %w", e.ID, classify(err))
	}
	// A new streak (or the item moved on): file it with its report.
	first, err := update(expression.Set(expression.Name(failuresAttr), expression.Value(1)).Set(expression.Name(failingSince), expression.Value(epoch(now))),
		expression.AttributeNotExists(expression.Name(failedEntryAttr)).Or(expression.Name(failedEntryAttr).NotEqual(expression.Value(e.SortKey))))
	if err != nil {
		return false, err
	}
	err = s.transact(ctx, []types.TransactWriteItem{{Update: first}}, []events.Event{ev})
	switch {
	case err == nil:
		return true, nil
	case conditionFailedAt(err, 0):
		return false, nil
	}
	return false, fmt.Errorf("store.RefileFailed %s: %w", e.ID, classify(err))
}

// ErrAlreadyWarned: the suspension was warned of already, or has ended.
var ErrAlreadyWarned = apperr.E(apperr.Conflict, "already_warned", "the run's owners were already warned, or the suspension ended")

// WarnTermination records, once per suspension, that the owners of the
// suspended run r (read at its version) were warned that it terminates
// soon, with the event: the run's due entry is rewritten without the index
// attributes and marked warned, conditioned on still being the entry read,
// in one transaction with a check that the run is unchanged. The entry is
// parked (DUE#NONE#<n>) rather than dropped, as everywhere.
func (s *Store) WarnTermination(ctx context.Context, e DueEntry, r *runs.Run, ev events.Event) error {
	if e.Kind != DueRun || r.Suspension == nil {
		return fmt.Errorf("store.WarnTermination: entry %s is not a suspended run", e.SortKey)
	}
	cond := expression.AttributeExists(expression.Name("pk")).
		And(expression.Name("gsi3sk").Equal(expression.Value(e.SortKey))).
		And(expression.AttributeNotExists(expression.Name("warned")))
	gsi3pk, gsi3sk := parkedKeys(runDueKind, r.Tenant, r.ID)
	edge, err := s.put(suspEdgeItem{PK: runPK(r.Tenant, r.ID), SK: skSuspend, GSI1PK: suspendedOnKey(r.Tenant, r.Suspension.Connection), GSI1SK: r.ID,
		GSI3PK: gsi3pk, GSI3SK: gsi3sk, Warned: true}, &cond)
	if err != nil {
		return err
	}
	rc, err := expression.NewBuilder().WithCondition(expression.Name("version").Equal(expression.Value(r.Version)).
		And(expression.Name("status").Equal(expression.Value(string(runs.StatusSuspended))))).Build()
	if err != nil {
		return fmt.Errorf("store.WarnTermination: %w", err)
	}
	check := types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName: aws.String(s.table), Key: key(runPK(r.Tenant, r.ID), skRun),
		ConditionExpression: rc.Condition(), ExpressionAttributeNames: rc.Names(), ExpressionAttributeValues: rc.Values(),
	}}
	err = s.transact(ctx, []types.TransactWriteItem{edge, check}, []events.Event{ev})
	if err == nil {
		return nil
	}
	if conditionFailedAt(err, 0) || conditionFailedAt(err, 1) {
		return &apperr.Error{Kind: ErrAlreadyWarned.Kind, Code: ErrAlreadyWarned.Code, Message: ErrAlreadyWarned.Message, Err: err}
	}
	return fmt.Errorf("store.WarnTermination %s: %w", r.ID, classify(err))
}

// NoteClientSecret records, once per secret and date, that notice n of a
// client secret's expiry went out, with its event: an UpdateItem of the
// registration that sets secretNotice, bumps its version and files it at
// its next due moment (parked after the last notice), conditioned on the
// version read and on still carrying the entry read, in one transaction
// with the outbox event. ErrMovedOn: another check sent it, or an
// administrator changed the registration meanwhile (it is then filed
// anew by that write).
func (s *Store) NoteClientSecret(ctx context.Context, e DueEntry, n expiry.Notice, ev events.Event) error {
	if e.Kind != DueOAuthClient {
		return fmt.Errorf("store.NoteClientSecret: entry %s is not an OAuth client", e.SortKey)
	}
	gsi3pk, gsi3sk := parkedKeys(clientDueKind, e.Tenant, e.ID)
	if due, ok := s.policy.ClientSecretDue(e.Client.SecretExpiresAt, n); ok {
		gsi3pk, gsi3sk = dueKeys(clientDueKind, e.Tenant, e.ID, due, s.now())
	}
	upd := expression.Set(expression.Name("secretNotice"), expression.Value(string(n))).
		Set(expression.Name("version"), expression.Value(e.Client.Version+1)).
		Set(expression.Name("gsi3pk"), expression.Value(gsi3pk)).
		Set(expression.Name("gsi3sk"), expression.Value(gsi3sk))
	cond := expression.AttributeExists(expression.Name("pk")).
		And(expression.Name("version").Equal(expression.Value(e.Client.Version))).
		And(expression.Name("gsi3sk").Equal(expression.Value(e.SortKey)))
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return fmt.Errorf("store.NoteClientSecret: %w", err)
	}
	items := []types.TransactWriteItem{{Update: &types.Update{
		TableName: aws.String(s.table), Key: key(e.pk, e.sk),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}}}
	err = s.transact(ctx, items, []events.Event{ev})
	if err == nil {
		return nil
	}
	if conditionFailedAt(err, 0) {
		return &apperr.Error{Kind: ErrMovedOn.Kind, Code: ErrMovedOn.Code, Message: ErrMovedOn.Message, Err: err}
	}
	return fmt.Errorf("store.NoteClientSecret %s: %w", e.ID, classify(err))
}

// BulkPut writes connections as whole items with their owner edges, 25 per
// BatchWriteItem: unconditionally, without audit entries or events. For
// load tests and imports into a table nobody else writes; everything else
// uses Create and Update.
func (s *Store) BulkPut(ctx context.Context, recs []*Record) error {
	var reqs []types.WriteRequest
	for _, r := range recs {
		it, err := s.toItem(r)
		if err != nil {
			return err
		}
		items := []any{it}
		for _, o := range r.Conn.Owners {
			items = append(items, ownerEdge(r.Conn.Tenant, r.Conn.ID, o))
		}
		for _, v := range items {
			m, err := marshal(v)
			if err != nil {
				return err
			}
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: m}})
		}
	}
	for batch := range slices.Chunk(reqs, 25) {
		pending := map[string][]types.WriteRequest{s.table: batch}
		err := batchRetry.Do(ctx, func(int) (bool, error) {
			out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return false, classify(err)
			}
			if pending = out.UnprocessedItems; len(pending[s.table]) > 0 {
				return true, errUnprocessed
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("store.BulkPut: %w", err)
		}
	}
	return nil
}
