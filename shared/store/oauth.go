package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/vault"
)

// OAuth client registrations and authorization states.

func oauthClientPK(tenant, typ string) string { return "T#" + tenant + "#OAUTHCLIENT#" + typ }
func oauthStatePK(id string) string           { return "OAUTHSTATE#" + id }

const (
	skOAuthClient = "CLIENT"
	skOAuthState  = "STATE"
)

// OAuthClientSubject is the vault subject a client secret is bound to.
func OAuthClientSubject(typ string) string { return "oauth-client/" + typ }

// OAuthStateSubject is the vault subject a state's PKCE verifier is bound to.
func OAuthStateSubject(stateID string) string { return "oauth-state/" + stateID }

// OAuthClient is a tenant's OAuth client registration for one connection
// type. The client secret is sealed; nothing here is secret in the clear.
type OAuthClient struct {
	Tenant   string
	Type     string
	ClientID string
	// Secret is the sealed client secret, bound to SecretBinding().
	Secret        vault.Sealed
	SecretVersion int64
	// Overrides of the type's defaults; empty keeps the default.
	AuthorizeURL string
	TokenURL     string
	Scopes       []string
	// AuthStyle is how the client authenticates at the token endpoint:
	// "params" (client_id and client_secret in the form; the default) or
	// "header" (HTTP Basic).
	AuthStyle string
	// DirectoryTenant fills the type's default endpoints' directory
	// (connection.DirectoryTenantPlaceholder): a Microsoft Entra ID
	// directory's GUID or verified domain. Empty for other types.
	DirectoryTenant string
	// CertificateThumbprint is the hex SHA-1 thumbprint of the client
	// certificate of a type whose client authenticates with one (the
	// certificate and its private key are the sealed secret). Not secret.
	CertificateThumbprint string
	// SecretExpiresAt is when the client secret expires, as the tenant
	// administrator said (zero: not said). The registration is filed in
	// the due index by it.
	SecretExpiresAt time.Time
	// SecretNotice is what the expiry check announced of this secret's
	// expiry; a new secret or date starts again from expiry.NoticeNone.
	SecretNotice expiry.Notice
	Version      int64
	UpdatedAt    time.Time
	UpdatedBy    string
}

// SecretBinding is the identity the client secret is sealed to: its
// destinations are the origins of the endpoints in effect (the
// registration's, else the type's defaults), so a secret never opens for
// endpoints it was not registered with.
func (c *OAuthClient) SecretBinding() vault.Binding {
	return vault.Binding{Tenant: c.Tenant, Subject: OAuthClientSubject(c.Type), Version: c.SecretVersion, Destinations: c.Destinations()}
}

// Endpoints are the authorization and token endpoints in effect: the
// registration's, else the type's defaults with the registration's
// directory tenant in place of connection.DirectoryTenantPlaceholder (left
// as it is when the registration names none: no such URL is usable).
func (c *OAuthClient) Endpoints() (authorize, token string) {
	authorize, token = c.AuthorizeURL, c.TokenURL
	if t, err := connection.Lookup(c.Type, "type"); err == nil && t.OAuth != nil {
		dir := strings.NewReplacer(connection.DirectoryTenantPlaceholder, url.PathEscape(c.DirectoryTenant))
		if c.DirectoryTenant == "" {
			dir = strings.NewReplacer()
		}
		if authorize == "" {
			authorize = dir.Replace(t.OAuth.AuthorizeURL)
		}
		if token == "" {
			token = dir.Replace(t.OAuth.TokenURL)
		}
	}
	return authorize, token
}

// Destinations are the sorted origins of the endpoints in effect.
func (c *OAuthClient) Destinations() []string {
	var out []string
	a, t := c.Endpoints()
	for _, raw := range []string{a, t} {
		if raw == "" {
			continue
		}
		o, ok := connection.Origin(raw)
		if !ok {
			o = "invalid:" + raw
		}
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return out
}

type oauthClientItem struct {
	PK            string   `dynamodbav:"pk"`
	SK            string   `dynamodbav:"sk"`
	Tenant        string   `dynamodbav:"tenant"`
	Type          string   `dynamodbav:"type"`
	ClientID      string   `dynamodbav:"clientId"`
	SecretKey     []byte   `dynamodbav:"secretKey,omitempty"`
	SecretNonce   []byte   `dynamodbav:"secretNonce,omitempty"`
	SecretCt      []byte   `dynamodbav:"secretCt,omitempty"`
	SecretVersion int64    `dynamodbav:"secretVersion"`
	AuthorizeURL  string   `dynamodbav:"authorizeUrl,omitempty"`
	TokenURL      string   `dynamodbav:"tokenUrl,omitempty"`
	Scopes        []string `dynamodbav:"scopes,omitempty"`
	AuthStyle     string   `dynamodbav:"authStyle,omitempty"`
	// DirectoryTenant and CertThumbprint: see OAuthClient.
	DirectoryTenant string `dynamodbav:"directoryTenant,omitempty"`
	CertThumbprint  string `dynamodbav:"certThumbprint,omitempty"`
	// SecretExpiresAt: epoch seconds (0: none); SecretNotice: "",
	// "expiring" or "expired".
	SecretExpiresAt int64     `dynamodbav:"secretExpiresAt,omitempty"`
	SecretNotice    string    `dynamodbav:"secretNotice,omitempty"`
	Version         int64     `dynamodbav:"version"`
	UpdatedAt       time.Time `dynamodbav:"updatedAt"`
	UpdatedBy       string    `dynamodbav:"updatedBy"`
	// The due index: always present, DUE#NONE when nothing is due (see
	// doc.go: a whole-item write never drops them).
	GSI3PK string `dynamodbav:"gsi3pk"`
	GSI3SK string `dynamodbav:"gsi3sk"`
}

// PutOAuthClient writes a registration: expected 0 creates it (Conflict if
// one exists), otherwise it replaces the registration at version expected
// (PreconditionFailed when stale, NotFound when gone). c.Version is written
// as given; callers set it to expected+1. It files the registration in the
// due index by its secret's expiry and the notice sent (parked when
// nothing is due).
func (s *Store) PutOAuthClient(ctx context.Context, c *OAuthClient, expected int64) error {
	if !validKeyPart(c.Tenant) || !validKeyPart(c.Type) {
		return apperr.InvalidField("type", "invalid_type", "invalid connection type")
	}
	it := oauthClientItem{
		PK: oauthClientPK(c.Tenant, c.Type), SK: skOAuthClient, Tenant: c.Tenant, Type: c.Type, ClientID: c.ClientID,
		SecretKey: c.Secret.EncryptedKey, SecretNonce: c.Secret.Nonce, SecretCt: c.Secret.Ciphertext, SecretVersion: c.SecretVersion,
		AuthorizeURL: c.AuthorizeURL, TokenURL: c.TokenURL, Scopes: c.Scopes, AuthStyle: c.AuthStyle,
		DirectoryTenant: c.DirectoryTenant, CertThumbprint: c.CertificateThumbprint,
		SecretExpiresAt: epoch(c.SecretExpiresAt), SecretNotice: string(c.SecretNotice),
		Version: c.Version, UpdatedAt: c.UpdatedAt.UTC(), UpdatedBy: c.UpdatedBy,
	}
	it.GSI3PK, it.GSI3SK = parkedKeys(clientDueKind, c.Tenant, c.Type)
	if due, ok := s.policy.ClientSecretDue(c.SecretExpiresAt, c.SecretNotice); ok {
		it.GSI3PK, it.GSI3SK = dueKeys(clientDueKind, c.Tenant, c.Type, due, s.now())
	}
	item, err := marshal(it)
	if err != nil {
		return err
	}
	cond := notExists()
	if expected != 0 {
		cond = versionIs(expected)
	}
	expr, err := expression.NewBuilder().WithCondition(*cond).Build()
	if err != nil {
		return fmt.Errorf("store.PutOAuthClient: %w", err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item, ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if err == nil {
		return nil
	}
	if conditionFailed(err) {
		if expected == 0 {
			return apperr.Wrap(apperr.Conflict, "already_exists", "an OAuth client is already registered for this type", err)
		}
		if _, gerr := s.GetOAuthClient(ctx, c.Tenant, c.Type); apperr.Is(gerr, apperr.NotFound) {
			return gerr
		}
		return apperr.Wrap(apperr.PreconditionFailed, "version_mismatch", "the OAuth client was changed by someone else; read it again", err)
	}
	return fmt.Errorf("store.PutOAuthClient %s: %w", c.Type, classify(err))
}

// GetOAuthClient reads the tenant's registration for typ; absent is NotFound.
func (s *Store) GetOAuthClient(ctx context.Context, tenant, typ string) (*OAuthClient, error) {
	if !validKeyPart(tenant) || !validKeyPart(typ) {
		return nil, apperr.NotFoundf("no OAuth client is registered for this type")
	}
	it, err := getItem[oauthClientItem](ctx, s, "store.GetOAuthClient "+typ, oauthClientPK(tenant, typ), skOAuthClient, "no OAuth client is registered for this type")
	if err != nil {
		return nil, err
	}
	return it.client(), nil
}

// GetOAuthClients reads the tenant's registrations for typeIDs in one
// BatchGetItem, by type; types without one are absent.
func (s *Store) GetOAuthClients(ctx context.Context, tenant string, typeIDs []string) (map[string]*OAuthClient, error) {
	if !validKeyPart(tenant) {
		return map[string]*OAuthClient{}, nil
	}
	typeIDs = slices.DeleteFunc(slices.Clone(typeIDs), func(t string) bool { return !validKeyPart(t) })
	return batchGet(ctx, s, "store.GetOAuthClients", typeIDs, func(typ string) map[string]types.AttributeValue {
		return key(oauthClientPK(tenant, typ), skOAuthClient)
	},
		func(it oauthClientItem) (string, *OAuthClient, error) { return it.Type, it.client(), nil })
}

func (it oauthClientItem) client() *OAuthClient {
	return &OAuthClient{
		Tenant: it.Tenant, Type: it.Type, ClientID: it.ClientID,
		Secret:        vault.Sealed{EncryptedKey: it.SecretKey, Nonce: it.SecretNonce, Ciphertext: it.SecretCt},
		SecretVersion: it.SecretVersion, AuthorizeURL: it.AuthorizeURL, TokenURL: it.TokenURL, Scopes: it.Scopes,
		AuthStyle: it.AuthStyle, DirectoryTenant: it.DirectoryTenant, CertificateThumbprint: it.CertThumbprint,
		SecretExpiresAt: fromEpoch(it.SecretExpiresAt), SecretNotice: expiry.Notice(it.SecretNotice),
		Version: it.Version, UpdatedAt: it.UpdatedAt, UpdatedBy: it.UpdatedBy,
	}
}

// DeleteOAuthClient removes the registration at version expected.
func (s *Store) DeleteOAuthClient(ctx context.Context, tenant, typ string, expected int64) error {
	if !validKeyPart(tenant) || !validKeyPart(typ) {
		return apperr.NotFoundf("no OAuth client is registered for this type")
	}
	expr, err := expression.NewBuilder().WithCondition(*versionIs(expected)).Build()
	if err != nil {
		return fmt.Errorf("store.DeleteOAuthClient: %w", err)
	}
	_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table), Key: key(oauthClientPK(tenant, typ), skOAuthClient),
		ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if err == nil {
		return nil
	}
	if conditionFailed(err) {
		if _, gerr := s.GetOAuthClient(ctx, tenant, typ); apperr.Is(gerr, apperr.NotFound) {
			return gerr
		}
		return apperr.Wrap(apperr.PreconditionFailed, "version_mismatch", "the OAuth client was changed by someone else; read it again", err)
	}
	return fmt.Errorf("store.DeleteOAuthClient %s: %w", typ, classify(err))
}

// OAuthStateTTL is how long an authorization may take.
const OAuthStateTTL = 10 * time.Minute

// OAuthState is a pending authorization: created when the authorize URL is
// handed out, consumed once by the callback.
type OAuthState struct {
	Tenant       string
	User         string // who started the authorization
	ConnectionID string
	ClientID     string // the client the authorize URL was made for
	RedirectURI  string // exactly as sent to the provider
	// Verifier is the sealed PKCE code verifier, bound to
	// vault.Binding{Tenant, OAuthStateSubject(OAuthStateID(state)), 1}.
	Verifier  vault.Sealed
	CreatedAt time.Time
	ExpiresAt time.Time
}

type oauthStateItem struct {
	PK             string    `dynamodbav:"pk"`
	SK             string    `dynamodbav:"sk"`
	Tenant         string    `dynamodbav:"tenant"`
	User           string    `dynamodbav:"user"`
	Connection     string    `dynamodbav:"connection"`
	ClientID       string    `dynamodbav:"clientId"`
	RedirectURI    string    `dynamodbav:"redirectUri"`
	VerifierKey    []byte    `dynamodbav:"verifierKey"`
	VerifierNonce  []byte    `dynamodbav:"verifierNonce"`
	VerifierCt     []byte    `dynamodbav:"verifierCt"`
	CreatedAt      time.Time `dynamodbav:"createdAt"`
	ExpiresAt      int64     `dynamodbav:"expiresAt"` // TTL, epoch seconds
	ExpiresAtMilli int64     `dynamodbav:"expiresAtMs"`
}

// OAuthStateID is the key a state is stored under: the base64url SHA-256 of
// the state value, so the table never holds a usable state.
func OAuthStateID(state string) string {
	h := sha256.Sum256([]byte(state))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Errors of ConsumeOAuthState, both Invalid (the callback answers 400).
var (
	ErrStateUnknown = apperr.E(apperr.Invalid, "state_invalid", "the authorization request is unknown or was already used; start again")
	ErrStateExpired = apperr.E(apperr.Invalid, "state_expired", "the authorization request expired; start again")
)

// PutOAuthState stores a pending authorization under state (which must be
// fresh: an existing item is never overwritten).
func (s *Store) PutOAuthState(ctx context.Context, state string, st *OAuthState) error {
	it := oauthStateItem{
		PK: oauthStatePK(OAuthStateID(state)), SK: skOAuthState, Tenant: st.Tenant, User: st.User, Connection: st.ConnectionID,
		ClientID: st.ClientID, RedirectURI: st.RedirectURI,
		VerifierKey: st.Verifier.EncryptedKey, VerifierNonce: st.Verifier.Nonce, VerifierCt: st.Verifier.Ciphertext,
		CreatedAt: st.CreatedAt.UTC(), ExpiresAt: st.ExpiresAt.Unix(), ExpiresAtMilli: st.ExpiresAt.UnixMilli(),
	}
	item, err := marshal(it)
	if err != nil {
		return err
	}
	expr, err := expression.NewBuilder().WithCondition(*notExists()).Build()
	if err != nil {
		return fmt.Errorf("store.PutOAuthState: %w", err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item, ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if err != nil {
		return fmt.Errorf("store.PutOAuthState: %w", classify(err))
	}
	return nil
}

// ConsumeOAuthState deletes the state and returns what it was bound to.
// The delete is conditioned on the item existing and not having expired, so
// of any number of concurrent callbacks exactly one gets the state; the
// rest, and every later one, get ErrStateUnknown (or ErrStateExpired).
func (s *Store) ConsumeOAuthState(ctx context.Context, state string) (*OAuthState, error) {
	if state == "" || len(state) > 512 {
		return nil, ErrStateUnknown
	}
	pk := oauthStatePK(OAuthStateID(state))
	now := s.now()
	cond := expression.AttributeExists(expression.Name("pk")).And(expression.Name("expiresAtMs").GreaterThan(expression.Value(now.UnixMilli())))
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return nil, fmt.Errorf("store.ConsumeOAuthState: %w", err)
	}
	out, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table), Key: key(pk, skOAuthState), ReturnValues: types.ReturnValueAllOld,
		ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if err != nil {
		if !conditionFailed(err) {
			return nil, fmt.Errorf("store.ConsumeOAuthState: %w", classify(err))
		}
		// Say why, for the page the user sees. TTL deletes lazily (and the
		// emulator never does), so an expired item may still be there.
		got, gerr := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(pk, skOAuthState), ConsistentRead: aws.Bool(true)})
		if gerr == nil && got.Item != nil {
			return nil, ErrStateExpired
		}
		return nil, ErrStateUnknown
	}
	if out.Attributes == nil {
		return nil, ErrStateUnknown
	}
	var it oauthStateItem
	if err := attributevalue.UnmarshalMap(out.Attributes, &it); err != nil {
		return nil, fmt.Errorf("store.ConsumeOAuthState: %w", err)
	}
	return &OAuthState{
		Tenant: it.Tenant, User: it.User, ConnectionID: it.Connection, ClientID: it.ClientID, RedirectURI: it.RedirectURI,
		Verifier:  vault.Sealed{EncryptedKey: it.VerifierKey, Nonce: it.VerifierNonce, Ciphertext: it.VerifierCt},
		CreatedAt: it.CreatedAt, ExpiresAt: time.UnixMilli(it.ExpiresAtMilli).UTC(),
	}, nil
}

// conditionFailed reports a failed condition on a single-item write.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}
