package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/vault"
)

// DynamoDB is the subset of the client the store uses.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

var _ DynamoDB = (*dynamodb.Client)(nil)

// Index names, as in template.yaml.
const (
	IndexAudience = "gsi1"
	IndexTenant   = "gsi2"
	IndexDue      = "gsi3"
)

// IdempotencyTTL is how long an Idempotency-Key is remembered.
const IdempotencyTTL = 24 * time.Hour

// Store reads and writes connections in one DynamoDB table.
type Store struct {
	db     DynamoDB
	table  string
	now    func() time.Time
	policy expiry.Policy
}

// New returns a Store over table; now is the clock. It files items in the
// due index by expiry.DefaultPolicy until WithPolicy says otherwise.
func New(db DynamoDB, table string, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, table: table, now: now, policy: expiry.DefaultPolicy()}
}

// WithPolicy sets the policy by which writes file items in the due index
// (the expiring window is a deployment parameter) and returns s. Call it
// before the Store is shared.
func (s *Store) WithPolicy(p expiry.Policy) *Store {
	s.policy = p.WithDefaults()
	return s
}

// Policy is the due policy the store files items by.
func (s *Store) Policy() expiry.Policy { return s.policy }

// Record is a connection with its sealed secret.
type Record struct {
	Conn   connection.Connection
	Secret vault.Sealed
	// TokensAt is when the stored OAuth tokens were written (zero: none,
	// or written before it was recorded); the keep-alive refresh counts
	// from it. Whole-item updates carry it over.
	TokensAt time.Time
	// filed: the item read carries due index attributes, so a rewrite with
	// nothing due parks it rather than dropping them (see doc.go).
	filed bool
}

// Key builders: the only places key strings are spelled.
func connPK(tenant, id string) string        { return "T#" + tenant + "#C#" + id }
func tenantConnsKey(tenant string) string    { return "T#" + tenant + "#CONNS" }
func audienceKey(tenant, aud string) string  { return "T#" + tenant + "#A#" + aud }
func ownerAudience(user string) string       { return "OWNER#" + user }
func idemPK(tenant, user, key string) string { return "T#" + tenant + "#IDEM#" + user + "#" + key }
func ownerSK(user string) string             { return "OWNER#" + user }
func auditSK(id string) string               { return "AUDIT#" + id }

const (
	skConn = "CONN"
	skIdem = "IDEM"
)

// Audience names one gsi1 partition a caller belongs to.
type Audience string

// Audiences for list queries.
func AudienceTenant() Audience             { return "TENANT" }
func AudienceCollection(c string) Audience { return Audience("SC#" + c) }
func AudienceSite(s string) Audience       { return Audience("SITE#" + s) }
func AudienceOwner(user string) Audience   { return Audience(ownerAudience(user)) }

func availabilityAudience(c *connection.Connection) Audience {
	if c.Kind != connection.Shared {
		return ""
	}
	switch c.Availability.Scope {
	case connection.ScopeTenant:
		return AudienceTenant()
	case connection.ScopeSiteCollection:
		return AudienceCollection(c.Availability.SiteCollection)
	case connection.ScopeSite:
		return AudienceSite(c.Availability.Site)
	}
	return ""
}

type connItem struct {
	PK            string    `dynamodbav:"pk"`
	SK            string    `dynamodbav:"sk"`
	GSI1PK        string    `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK        string    `dynamodbav:"gsi1sk,omitempty"`
	GSI2PK        string    `dynamodbav:"gsi2pk"`
	GSI2SK        string    `dynamodbav:"gsi2sk"`
	Tenant        string    `dynamodbav:"tenant"`
	ID            string    `dynamodbav:"id"`
	Type          string    `dynamodbav:"type"`
	Name          string    `dynamodbav:"name"`
	Kind          string    `dynamodbav:"kind"`
	Scope         string    `dynamodbav:"scope"`
	ScopePath     string    `dynamodbav:"scopePath,omitempty"`
	Owners        []string  `dynamodbav:"owners"`
	CreatedBy     string    `dynamodbav:"createdBy"`
	CreatedAt     time.Time `dynamodbav:"createdAt"`
	UpdatedAt     time.Time `dynamodbav:"updatedAt"`
	Version       int64     `dynamodbav:"version"`
	Status        string    `dynamodbav:"status"`
	StatusReason  string    `dynamodbav:"statusReason,omitempty"`
	Settings      string    `dynamodbav:"settings"`               // JSON: keeps numbers and nesting exactly as given
	SecretFields  []string  `dynamodbav:"secretFields,omitempty"` // absent when empty: minidyn reads an empty list back as another attribute's value
	SecretVersion int64     `dynamodbav:"secretVersion"`
	SecretKey     []byte    `dynamodbav:"secretKey,omitempty"`
	SecretNonce   []byte    `dynamodbav:"secretNonce,omitempty"`
	SecretCt      []byte    `dynamodbav:"secretCt,omitempty"`
	TokenEndpoint string    `dynamodbav:"tokenEndpoint,omitempty"`
	Disabled      bool      `dynamodbav:"disabled,omitempty"`
	// Epoch seconds, so conditions compare numbers.
	TokenExpiresAt int64 `dynamodbav:"tokenExpiresAt,omitempty"`
	LastUsedAt     int64 `dynamodbav:"lastUsedAt,omitempty"`
	TokensAt       int64 `dynamodbav:"tokensAt,omitempty"`
	// RefreshTokenExpiresAt: when the stored refresh token expires, if the
	// provider said (0 when not).
	RefreshTokenExpiresAt int64 `dynamodbav:"refreshTokenExpiresAt,omitempty"`
	// PasswordExpiresAt mirrors settings.passwordExpiresAt (epoch seconds)
	// for the due index's projection.
	PasswordExpiresAt int64 `dynamodbav:"passwordExpiresAt,omitempty"`
	// The due index (absent when nothing is due; see doc.go).
	GSI3PK string `dynamodbav:"gsi3pk,omitempty"`
	GSI3SK string `dynamodbav:"gsi3sk,omitempty"`
}

func (s *Store) toItem(r *Record) (connItem, error) {
	c := &r.Conn
	settings, err := json.Marshal(c.Settings)
	if err != nil {
		return connItem{}, fmt.Errorf("store: marshal settings: %w", err)
	}
	it := connItem{
		PK: connPK(c.Tenant, c.ID), SK: skConn,
		GSI2PK: tenantConnsKey(c.Tenant), GSI2SK: c.ID,
		Tenant: c.Tenant, ID: c.ID, Type: c.Type, Name: c.Name, Kind: string(c.Kind),
		Scope: string(c.Availability.Scope), ScopePath: c.Availability.SiteCollection + c.Availability.Site,
		Owners: c.Owners, CreatedBy: c.CreatedBy, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
		Version: c.Version, Status: string(c.Status), StatusReason: c.StatusReason,
		Settings: string(settings), SecretVersion: c.SecretVersion,
		SecretKey: r.Secret.EncryptedKey, SecretNonce: r.Secret.Nonce, SecretCt: r.Secret.Ciphertext,
		TokenEndpoint: c.TokenEndpoint, Disabled: c.Disabled,
		TokenExpiresAt: epoch(c.TokenExpiresAt), LastUsedAt: epoch(c.LastUsedAt), TokensAt: epoch(r.TokensAt),
		RefreshTokenExpiresAt: epoch(c.RefreshTokenExpiresAt),
	}
	facts := expiry.FactsOf(c, r.TokensAt)
	it.PasswordExpiresAt = epoch(facts.PasswordExpiresAt)
	if due, ok := s.policy.Due(facts); ok {
		it.GSI3PK, it.GSI3SK = dueKeys(connDueKind, c.Tenant, c.ID, due, s.now())
	} else if r.filed || facts.OAuth {
		// Parked, not dropped (see doc.go). OAuth connections are filed
		// from creation: their token writes are UpdateItems that set the
		// index attributes, and an UpdateItem that adds them to an item
		// outside the index corrupts the emulator's index.
		it.GSI3PK, it.GSI3SK = parkedKeys(connDueKind, c.Tenant, c.ID)
	}
	if len(c.SecretFields) > 0 { // never an empty list: minidyn reads one back as another attribute
		it.SecretFields = c.SecretFields
	}
	if aud := availabilityAudience(c); aud != "" {
		it.GSI1PK, it.GSI1SK = audienceKey(c.Tenant, string(aud)), c.ID
	}
	return it, nil
}

func fromItem(it connItem) (*Record, error) {
	r := &Record{
		Conn: connection.Connection{
			Tenant: it.Tenant, ID: it.ID, Type: it.Type, Name: it.Name, Kind: connection.Kind(it.Kind),
			Owners: it.Owners, CreatedBy: it.CreatedBy, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt,
			Version: it.Version, Status: connection.Status(it.Status), StatusReason: it.StatusReason,
			SecretFields: it.SecretFields, SecretVersion: it.SecretVersion,
			TokenExpiresAt: fromEpoch(it.TokenExpiresAt), LastUsedAt: fromEpoch(it.LastUsedAt),
			RefreshTokenExpiresAt: fromEpoch(it.RefreshTokenExpiresAt),
			TokenEndpoint:         it.TokenEndpoint, Disabled: it.Disabled,
		},
		Secret:   vault.Sealed{EncryptedKey: it.SecretKey, Nonce: it.SecretNonce, Ciphertext: it.SecretCt},
		TokensAt: fromEpoch(it.TokensAt),
		filed:    it.GSI3PK != "",
	}
	a := connection.Availability{Scope: connection.Scope(it.Scope)}
	switch a.Scope {
	case connection.ScopeSiteCollection:
		a.SiteCollection = it.ScopePath
	case connection.ScopeSite:
		a.Site = it.ScopePath
	}
	r.Conn.Availability = a
	if err := json.Unmarshal([]byte(it.Settings), &r.Conn.Settings); err != nil {
		return nil, fmt.Errorf("store: settings of %s: %w", it.ID, err)
	}
	return r, nil
}

// epoch is t in Unix seconds; the zero time is 0 (omitted).
func epoch(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromEpoch(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

func marshal(v any) (map[string]types.AttributeValue, error) {
	m, err := attributevalue.MarshalMap(v)
	if err != nil {
		return nil, fmt.Errorf("store: marshal: %w", err)
	}
	return m, nil
}

type ownerItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI1PK string `dynamodbav:"gsi1pk"`
	GSI1SK string `dynamodbav:"gsi1sk"`
}

func ownerEdge(tenant, id, user string) ownerItem {
	return ownerItem{PK: connPK(tenant, id), SK: ownerSK(user), GSI1PK: audienceKey(tenant, ownerAudience(user)), GSI1SK: id}
}

type auditItem struct {
	PK      string            `dynamodbav:"pk"`
	SK      string            `dynamodbav:"sk"`
	ID      string            `dynamodbav:"id"`
	At      time.Time         `dynamodbav:"at"`
	Actor   string            `dynamodbav:"actor"`
	Action  string            `dynamodbav:"action"`
	Version int64             `dynamodbav:"version"`
	Changes []string          `dynamodbav:"changes,omitempty"`
	Details map[string]string `dynamodbav:"details,omitempty"`
}

func toAuditItem(tenant, connID string, e connection.AuditEntry) auditItem {
	return auditItem{PK: connPK(tenant, connID), SK: auditSK(e.ID), ID: e.ID, At: e.At.UTC(), Actor: e.Actor,
		Action: string(e.Action), Version: e.Version, Changes: e.Changes, Details: e.Details}
}

type idemItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	RequestHash string `dynamodbav:"requestHash"`
	Connection  string `dynamodbav:"connection"`
	ExpiresAt   int64  `dynamodbav:"expiresAt"`
}

// Idempotency identifies a create request retried under one Idempotency-Key.
type Idempotency struct {
	User, Key   string
	RequestHash string
}

// ErrIdempotencyReplay carries the id of the connection an earlier request
// with the same key and body created.
type ErrIdempotencyReplay struct{ ConnectionID string }

func (e *ErrIdempotencyReplay) Error() string {
	return "idempotent replay of the create of " + e.ConnectionID
}

func (s *Store) put(v any, cond *expression.ConditionBuilder) (types.TransactWriteItem, error) {
	item, err := marshal(v)
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	p := &types.Put{TableName: aws.String(s.table), Item: item}
	if cond != nil {
		expr, err := expression.NewBuilder().WithCondition(*cond).Build()
		if err != nil {
			return types.TransactWriteItem{}, fmt.Errorf("store: condition: %w", err)
		}
		p.ConditionExpression = expr.Condition()
		p.ExpressionAttributeNames = expr.Names()
		p.ExpressionAttributeValues = expr.Values()
	}
	return types.TransactWriteItem{Put: p}, nil
}

func (s *Store) del(pk, sk string, cond *expression.ConditionBuilder) (types.TransactWriteItem, error) {
	d := &types.Delete{TableName: aws.String(s.table), Key: key(pk, sk)}
	if cond != nil {
		expr, err := expression.NewBuilder().WithCondition(*cond).Build()
		if err != nil {
			return types.TransactWriteItem{}, fmt.Errorf("store: condition: %w", err)
		}
		d.ConditionExpression = expr.Condition()
		d.ExpressionAttributeNames = expr.Names()
		d.ExpressionAttributeValues = expr.Values()
	}
	return types.TransactWriteItem{Delete: d}, nil
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

func notExists() *expression.ConditionBuilder {
	c := expression.AttributeNotExists(expression.Name("pk"))
	return &c
}

func versionIs(v int64) *expression.ConditionBuilder {
	c := expression.Name("version").Equal(expression.Value(v))
	return &c
}

// Create stores a new connection with its owner edges and audit entry in one
// transaction. With idem set, a retry with the same key and request answers
// *ErrIdempotencyReplay; the same key with another request is a Conflict.
func (s *Store) Create(ctx context.Context, r *Record, audit connection.AuditEntry, idem *Idempotency, evs ...events.Event) error {
	c := &r.Conn
	it, err := s.toItem(r)
	if err != nil {
		return err
	}
	var items []types.TransactWriteItem
	add := func(ti types.TransactWriteItem, err error) error {
		if err == nil {
			items = append(items, ti)
		}
		return err
	}
	if err := add(s.put(it, notExists())); err != nil {
		return err
	}
	for _, o := range c.Owners {
		if err := add(s.put(ownerEdge(c.Tenant, c.ID, o), nil)); err != nil {
			return err
		}
	}
	if err := add(s.put(toAuditItem(c.Tenant, c.ID, audit), nil)); err != nil {
		return err
	}
	idemIndex := -1
	if idem != nil {
		now := s.now()
		expired := expression.Name("expiresAt").LessThan(expression.Value(now.Unix()))
		cond := expression.AttributeNotExists(expression.Name("pk")).Or(expired)
		idemIndex = len(items)
		if err := add(s.put(idemItem{
			PK: idemPK(c.Tenant, idem.User, idem.Key), SK: skIdem, RequestHash: idem.RequestHash,
			Connection: c.ID, ExpiresAt: now.Add(IdempotencyTTL).Unix(),
		}, &cond)); err != nil {
			return err
		}
	}
	err = s.transact(ctx, items, evs)
	if err == nil {
		return nil
	}
	if idemIndex >= 0 && conditionFailedAt(err, idemIndex) {
		return s.replay(ctx, c.Tenant, idem)
	}
	if conditionFailedAt(err, 0) {
		return apperr.Wrap(apperr.Conflict, "already_exists", "a connection with this id already exists", err)
	}
	return fmt.Errorf("store.Create %s: %w", c.ID, classify(err))
}

func (s *Store) replay(ctx context.Context, tenant string, idem *Idempotency) error {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key(idemPK(tenant, idem.User, idem.Key), skIdem), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("store.Create idempotency: %w", classify(err))
	}
	var it idemItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil || out.Item == nil {
		return apperr.E(apperr.Conflict, "idempotency_conflict", "a request with this Idempotency-Key is in progress; retry")
	}
	if it.RequestHash != idem.RequestHash {
		return apperr.E(apperr.Conflict, "idempotency_key_reused", "this Idempotency-Key was used with a different request")
	}
	return &ErrIdempotencyReplay{ConnectionID: it.Connection}
}

// Get reads a connection; absent is NotFound.
func (s *Store) Get(ctx context.Context, tenant, id string) (*Record, error) {
	if !validKeyPart(id) {
		return nil, apperr.NotFoundf("connection not found")
	}
	it, err := getItem[connItem](ctx, s, "store.Get "+id, connPK(tenant, id), skConn, "connection not found")
	if err != nil {
		return nil, err
	}
	return fromItem(it)
}

// Changes are what a write records besides the item itself, in the same
// transaction.
type Changes struct {
	Audits []connection.AuditEntry
	Events []events.Event
}

// Update writes next in place of the version expected, with its audit
// entries, events and the owner edge changes from prevOwners to next's
// owners. A stale version is PreconditionFailed; a vanished connection
// NotFound.
func (s *Store) Update(ctx context.Context, next *Record, expected int64, prevOwners []string, ch Changes) error {
	c := &next.Conn
	it, err := s.toItem(next)
	if err != nil {
		return err
	}
	items := make([]types.TransactWriteItem, 0, 2+len(prevOwners)+len(c.Owners))
	ti, err := s.put(it, versionIs(expected))
	if err != nil {
		return err
	}
	items = append(items, ti)
	for _, o := range c.Owners {
		if !slices.Contains(prevOwners, o) {
			ti, err := s.put(ownerEdge(c.Tenant, c.ID, o), nil)
			if err != nil {
				return err
			}
			items = append(items, ti)
		}
	}
	for _, o := range prevOwners {
		if !slices.Contains(c.Owners, o) {
			ti, err := s.del(connPK(c.Tenant, c.ID), ownerSK(o), nil)
			if err != nil {
				return err
			}
			items = append(items, ti)
		}
	}
	for _, a := range ch.Audits {
		ti, err := s.put(toAuditItem(c.Tenant, c.ID, a), nil)
		if err != nil {
			return err
		}
		items = append(items, ti)
	}
	return s.commit(ctx, "store.Update", c.Tenant, c.ID, items, ch.Events)
}

// Delete removes a connection at the expected version with its owner edges,
// recording the audit entry; the audit history stays.
func (s *Store) Delete(ctx context.Context, r *Record, expected int64, audit connection.AuditEntry, evs ...events.Event) error {
	c := &r.Conn
	ti, err := s.del(connPK(c.Tenant, c.ID), skConn, versionIs(expected))
	if err != nil {
		return err
	}
	items := []types.TransactWriteItem{ti}
	for _, o := range c.Owners {
		ti, err := s.del(connPK(c.Tenant, c.ID), ownerSK(o), nil)
		if err != nil {
			return err
		}
		items = append(items, ti)
	}
	ti, err = s.put(toAuditItem(c.Tenant, c.ID, audit), nil)
	if err != nil {
		return err
	}
	items = append(items, ti)
	return s.commit(ctx, "store.Delete", c.Tenant, c.ID, items, evs)
}

func (s *Store) commit(ctx context.Context, op, tenant, id string, items []types.TransactWriteItem, evs []events.Event) error {
	err := s.transact(ctx, items, evs)
	if err == nil {
		return nil
	}
	if conditionFailedAt(err, 0) {
		if _, gerr := s.Get(ctx, tenant, id); apperr.Is(gerr, apperr.NotFound) {
			return gerr
		}
		return apperr.Wrap(apperr.PreconditionFailed, "version_mismatch", "the connection was changed by someone else; read it again", err)
	}
	return fmt.Errorf("%s %s: %w", op, id, classify(err))
}

// conditionFailedAt reports whether a transaction was cancelled because the
// condition of item i failed.
func conditionFailedAt(err error, i int) bool {
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		return i < len(tce.CancellationReasons) && aws.ToString(tce.CancellationReasons[i].Code) == "ConditionalCheckFailed"
	}
	var ccf *types.ConditionalCheckFailedException
	return i == 0 && errors.As(err, &ccf)
}

// classify maps DynamoDB failures that callers can act on.
func classify(err error) error {
	if transactionConflict(err) {
		return apperr.Wrap(ErrConcurrentChange.Kind, ErrConcurrentChange.Code, ErrConcurrentChange.Message, err)
	}
	if transactionThrottled(err) {
		// Cancelled because an item's partition throttled: nothing was
		// written, and the SDK does not retry a cancellation.
		return apperr.Wrap(apperr.Throttled, "throttled", "the store is busy; retry", err)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded":
			return apperr.Wrap(apperr.Throttled, "throttled", "the store is busy; retry", err)
		case "TransactionConflictException", "TransactionInProgressException":
			return apperr.Wrap(ErrConcurrentChange.Kind, ErrConcurrentChange.Code, ErrConcurrentChange.Message, err)
		case "InternalServerError", "ServiceUnavailable":
			return apperr.Wrap(apperr.Unavailable, "store_unavailable", "the store is unavailable; retry", err)
		}
	}
	return err
}

// transactionThrottled reports a transaction cancelled because one of its
// items was throttled.
func transactionThrottled(err error) bool {
	var tce *types.TransactionCanceledException
	return errors.As(err, &tce) && slices.ContainsFunc(tce.CancellationReasons, func(r types.CancellationReason) bool {
		c := aws.ToString(r.Code)
		return c == "ThrottlingError" || c == "ProvisionedThroughputExceeded"
	})
}

// validKeyPart rejects ids that could not have been issued and would bend a key.
func validKeyPart(s string) bool {
	return s != "" && len(s) <= 128 && !strings.ContainsAny(s, "#\x00")
}
