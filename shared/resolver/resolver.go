package resolver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/retry"
	"github.com/connmgr/connmgr/shared/store"
)

// Store is what the resolver needs of the store.
type Store interface {
	Get(ctx context.Context, tenant, id string) (*store.Record, error)
	GetOAuthClient(ctx context.Context, tenant, typ string) (*store.OAuthClient, error)
	AcquireLease(ctx context.Context, tenant, id, owner string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, tenant, id, owner string) (bool, error)
	PutTokens(ctx context.Context, w store.TokenWrite) error
	MarkExpired(ctx context.Context, m store.ExpiredMark) error
	TouchLastUsed(ctx context.Context, tenant, id string, at time.Time) error
	// Policy is the due policy the store files by: a refresh decides the
	// status it leaves by the same window.
	Policy() expiry.Policy
}

var _ Store = (*store.Store)(nil)

// Defaults.
const (
	DefaultRefreshSkew      = 60 * time.Second
	DefaultLeaseTTL         = 30 * time.Second
	DefaultMaxWait          = 10 * time.Second
	DefaultLastUsedInterval = 15 * time.Minute
	// leaseMargin: the provider call must finish this long before the lease
	// ends, so a live holder never outlives its lease.
	leaseMargin     = 5 * time.Second
	firstBackoff    = 25 * time.Millisecond
	maxBackoff      = 400 * time.Millisecond
	lastUsedEntries = 10000
	// lastUsedBudget bounds the last-used write inside a resolution.
	lastUsedBudget = 250 * time.Millisecond
)

// Config builds a Resolver. Store, Opener and Sealer are required.
type Config struct {
	Store Store
	// Opener decrypts secrets: kmsvault.NewOpener(kms, kmsvault.NewKeyCache(...))
	// so warm resolutions skip KMS.
	Opener oauth.Opener
	// Sealer seals refreshed tokens (kms:GenerateDataKey).
	Sealer oauth.Sealer
	// HTTPClient calls token endpoints (default: oauth.NewHTTPClient, public
	// addresses only, no redirects, 10 s timeout).
	HTTPClient *http.Client
	Now        func() time.Time
	Log        *slog.Logger
	// NewID makes audit entry ids for expiry marks (default: random).
	NewID func() string
	// RefreshSkew: tokens expiring within it are refreshed first (60 s).
	RefreshSkew time.Duration
	// LeaseTTL is how long a refresher holds the lease (30 s); a dead
	// holder blocks refresh for at most this long.
	LeaseTTL time.Duration
	// MaxWait bounds the total time one call sleeps waiting for another
	// instance's refresh (10 s) before failing refresh_in_progress.
	MaxWait time.Duration
	// LastUsedInterval: at most one last-used write per connection per
	// interval per instance (15 min); negative disables recording.
	LastUsedInterval time.Duration
	// Sleep waits between polls and between attempts at storing refreshed
	// tokens (default: retry.Sleep, a timer honouring ctx); tests replace
	// it. MaxWait counts the waits asked of it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Events, if set, publishes the events a mark wrote to the outbox.
	Events interface {
		Flush(ctx context.Context, evs []events.Event)
	}
	// OnExpired, if set, is called once after this instance marked a
	// connection expired (the provider's code in reason), for the change
	// event that notifies owners; called synchronously, keep it short.
	OnExpired func(ctx context.Context, tenant, id, reason string)
}

// Resolver resolves credentials. Safe for concurrent use; build one per
// cold start.
type Resolver struct {
	cfg Config
	log *slog.Logger

	usedMu   sync.Mutex
	lastUsed map[string]time.Time
}

// New checks cfg and returns a Resolver.
func New(cfg Config) (*Resolver, error) {
	if cfg.Store == nil || cfg.Opener == nil || cfg.Sealer == nil {
		return nil, errors.New("resolver.New: Store, Opener and Sealer are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = oauth.NewHTTPClient(oauth.HTTPOptions{})
	}
	if cfg.NewID == nil {
		cfg.NewID = randomID
	}
	if cfg.RefreshSkew <= 0 {
		cfg.RefreshSkew = DefaultRefreshSkew
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.LastUsedInterval == 0 {
		cfg.LastUsedInterval = DefaultLastUsedInterval
	}
	if cfg.Sleep == nil {
		cfg.Sleep = retry.Sleep
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Resolver{cfg: cfg, log: log, lastUsed: map[string]time.Time{}}, nil
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Invoke is the resolve function's handler: the wire response, with the
// credential's secrets on success:
//
//	{"ok": true, "credential": {...}}
//	{"ok": false, "failure": {"code": ..., "authFailure": ..., "retryable": ..., ...}}
func (r *Resolver) Invoke(ctx context.Context, in Input) (json.RawMessage, error) {
	cred, err := r.Resolve(ctx, in)
	if err != nil {
		return json.Marshal(struct {
			OK      bool     `json:"ok"`
			Failure *Failure `json:"failure"`
		}{false, AsFailure(err)})
	}
	w, err := cred.MarshalWire()
	if err != nil {
		return nil, err
	}
	defer clear(w)
	return json.Marshal(struct {
		OK         bool            `json:"ok"`
		Credential json.RawMessage `json:"credential"`
	}{true, w})
}

// Resolve returns the credential of in.ConnectionID for the run described
// by in, or a *Failure.
func (r *Resolver) Resolve(ctx context.Context, in Input) (*Credential, error) {
	cred, err := r.resolve(ctx, in)
	if err != nil {
		f := classify(err, in.ConnectionID)
		level := slog.LevelInfo
		if f.Code == CodeInternal || f.Code == CodeSecretUnreadable {
			level = slog.LevelError
		} else if f.Retryable {
			level = slog.LevelWarn
		}
		r.log.Log(ctx, level, "credential not resolved", append(in.LogAttrs(), slog.String("code", string(f.Code)),
			slog.String("providerCode", f.ProviderCode), slog.Bool("authFailure", f.AuthFailure), slog.String("error", f.Error()))...)
		return nil, f
	}
	r.log.DebugContext(ctx, "credential resolved", append(in.LogAttrs(), slog.Any("credential", cred))...)
	r.noteUse(ctx, in.Tenant, in.ConnectionID)
	return cred, nil
}

// ResolveForTest resolves the connection for POST /connections/{id}/test:
// as Resolve, but without a workflow run, so without the run's CanUse
// check. The caller must already have checked that the user may manage
// the connection (connection.CanManage), and must send the credential only
// through Credential.Apply (the connection's own host).
func (r *Resolver) ResolveForTest(ctx context.Context, tenant, id, user string) (*Credential, error) {
	in := Input{Tenant: tenant, ConnectionID: id, RunOwner: user, RunID: "connection-test"}
	cred, err := r.resolveUse(ctx, in, false)
	if err != nil {
		f := classify(err, id)
		r.log.InfoContext(ctx, "test credential not resolved", append(in.LogAttrs(), slog.String("code", string(f.Code)), slog.String("error", f.Error()))...)
		return nil, f
	}
	return cred, nil
}

func (r *Resolver) resolve(ctx context.Context, in Input) (*Credential, error) {
	return r.resolveUse(ctx, in, true)
}

func (r *Resolver) resolveUse(ctx context.Context, in Input, checkUse bool) (*Credential, error) {
	if in.Tenant == "" || in.ConnectionID == "" {
		return nil, fail(CodeInvalidInput, in.ConnectionID, errors.New("tenant and connectionId are required"))
	}
	use := connection.Use{Tenant: in.Tenant, RunOwner: in.RunOwner}
	if in.Site != "" {
		site, err := identity.CanonicalPath(in.Site)
		if err != nil {
			return nil, fail(CodeInvalidInput, in.ConnectionID, errors.New("site is not a site path"))
		}
		use.Site = site
	}
	rec, err := r.cfg.Store.Get(ctx, in.Tenant, in.ConnectionID)
	if err != nil {
		return nil, classify(err, in.ConnectionID)
	}
	if checkUse && !connection.CanUse(use, &rec.Conn) {
		return nil, fail(CodeNotUsable, in.ConnectionID, nil)
	}
	if rec.Conn.Disabled {
		return nil, fail(CodeDisabled, in.ConnectionID, nil)
	}
	typ, err := connection.Lookup(rec.Conn.Type, "type")
	if err != nil {
		return nil, fail(CodeInternal, in.ConnectionID, err)
	}
	if f := statusFailure(&rec.Conn, typ); f != nil {
		return nil, f
	}
	cred := &Credential{ConnectionID: rec.Conn.ID, Type: typ.ID, BaseURL: baseURL(typ, rec.Conn.Settings), Settings: rec.Conn.Settings}
	if !typ.AuthMethod.IsOAuth() {
		pt, err := r.open(ctx, rec)
		if err != nil {
			return nil, err
		}
		defer clear(pt)
		var fields map[string]string
		if err := json.Unmarshal(pt, &fields); err != nil {
			return nil, fail(CodeSecretUnreadable, rec.Conn.ID, errors.New("the stored credentials are not a JSON object"))
		}
		switch typ.AuthMethod {
		case connection.AuthBasic:
			cred.SetBasic(fields["username"], fields["password"])
		case connection.AuthAPIKey:
			header, _ := rec.Conn.Settings["headerName"].(string)
			cred.SetAPIKey(header, fields["apiKey"])
		default:
			return nil, fail(CodeInternal, rec.Conn.ID, fmt.Errorf("auth method %s", typ.AuthMethod))
		}
		return cred, nil
	}
	tokens, err := r.tokens(ctx, rec)
	if err != nil {
		return nil, err
	}
	if tokens.Due(r.cfg.Now(), r.cfg.RefreshSkew) {
		if tokens, err = r.refresh(ctx, rec, typ); err != nil {
			return nil, err
		}
	}
	cred.SetBearer(tokens.AccessToken(), tokens.TokenType(), tokens.ExpiresAt())
	return cred, nil
}

// statusFailure is the failure a connection's status implies, or nil.
func statusFailure(c *connection.Connection, typ *connection.Type) *Failure {
	switch c.Status {
	case connection.StatusActive, connection.StatusExpiring:
		if typ.AuthMethod == connection.AuthOAuth2Code && c.SecretVersion == 0 {
			return fail(CodeAuthorizationPending, c.ID, nil)
		}
		if !typ.AuthMethod.IsOAuth() && c.SecretVersion == 0 {
			return fail(CodeSecretUnreadable, c.ID, errors.New("no credentials stored"))
		}
		return nil
	case connection.StatusPendingAuthorization:
		return fail(CodeAuthorizationPending, c.ID, nil)
	case connection.StatusExpired:
		return fail(CodeExpired, c.ID, nil).WithProvider(c.StatusReason)
	default:
		return fail(CodeConnectionError, c.ID, nil).WithProvider(c.StatusReason)
	}
}

// baseURL is the URL the credential's requests are joined to; its origin
// is the only one the credential may go to.
func baseURL(typ *connection.Type, settings map[string]any) string {
	return typ.RequestBaseURL(settings)
}

func (r *Resolver) open(ctx context.Context, rec *store.Record) ([]byte, error) {
	pt, err := r.cfg.Opener.Open(ctx, rec.Conn.Binding(rec.Conn.SecretVersion), rec.Secret)
	if err != nil {
		return nil, classify(err, rec.Conn.ID)
	}
	return pt, nil
}

// tokens opens the stored token set (empty before the first token of a
// client credentials connection).
func (r *Resolver) tokens(ctx context.Context, rec *store.Record) (*oauth.TokenSet, error) {
	if rec.Conn.SecretVersion == 0 || rec.Secret.IsZero() {
		return oauth.DecodeTokenSet(nil)
	}
	pt, err := r.open(ctx, rec)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	ts, err := oauth.DecodeTokenSet(pt)
	if err != nil {
		return nil, fail(CodeSecretUnreadable, rec.Conn.ID, err)
	}
	return ts, nil
}

// noteUse records the use before the handler returns (Lambda freezes the
// instance once it has: nothing may run after), at most once per
// connection per interval per instance. The write gets a short budget of
// its own and is skipped on failure: a missed sample is harmless, a
// resolution that waits long for it is not.
func (r *Resolver) noteUse(ctx context.Context, tenant, id string) {
	if r.cfg.LastUsedInterval < 0 {
		return
	}
	now := r.cfg.Now()
	key := tenant + "\x00" + id
	r.usedMu.Lock()
	if last, ok := r.lastUsed[key]; ok && now.Sub(last) < r.cfg.LastUsedInterval {
		r.usedMu.Unlock()
		return
	}
	if len(r.lastUsed) >= lastUsedEntries {
		clear(r.lastUsed)
	}
	r.lastUsed[key] = now
	r.usedMu.Unlock()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lastUsedBudget)
	defer cancel()
	if err := r.cfg.Store.TouchLastUsed(wctx, tenant, id, now); err != nil {
		r.log.WarnContext(ctx, "last-used not recorded", slog.String("tenant", tenant), slog.String("connection", id), slog.String("error", err.Error()))
	}
}

// RefreshIfDue refreshes the connection's token if it expires within
// `within` (at least the resolver's skew), under the same lease as
// resolution. A connection whose stored expiry is far off costs one
// GetItem and no KMS call. Failures are *Failure; a rejected refresh marks
// the connection expired exactly as resolution does.
func (r *Resolver) RefreshIfDue(ctx context.Context, tenant, id string, within time.Duration) (Refreshed, error) {
	return r.RefreshIfDueWith(ctx, tenant, id, RefreshOptions{Within: within})
}

// RefreshIfDueWith is RefreshIfDue with a keep-alive age and a secret
// version condition: the scheduled expiry check's refresh. Two checks that
// found the same tokens due give one refresh: the second, holding the
// lease after the first, sees a newer secret version and stops.
func (r *Resolver) RefreshIfDueWith(ctx context.Context, tenant, id string, o RefreshOptions) (Refreshed, error) {
	n := need{within: max(o.Within, r.cfg.RefreshSkew), maxAge: max(o.MaxAge, 0), secretVersion: o.SecretVersion}
	rec, err := r.cfg.Store.Get(ctx, tenant, id)
	if err != nil {
		return Refreshed{}, classify(err, id)
	}
	typ, err := connection.Lookup(rec.Conn.Type, "type")
	if err != nil {
		return Refreshed{}, fail(CodeInternal, id, err)
	}
	if !typ.AuthMethod.IsOAuth() {
		return Refreshed{}, nil
	}
	if f := statusFailure(&rec.Conn, typ); f != nil {
		return Refreshed{}, f
	}
	if n.secretVersion != 0 && rec.Conn.SecretVersion != n.secretVersion {
		return Refreshed{ExpiresAt: rec.Conn.TokenExpiresAt}, nil
	}
	now := r.cfg.Now()
	if exp := rec.Conn.TokenExpiresAt; n.maxAge == 0 && !exp.IsZero() && exp.After(now.Add(n.within)) {
		return Refreshed{ExpiresAt: exp}, nil
	}
	tokens, err := r.tokens(ctx, rec)
	if err != nil {
		return Refreshed{}, err
	}
	if !n.due(tokens, now) {
		return Refreshed{ExpiresAt: tokens.ExpiresAt()}, nil
	}
	next, err := r.refreshWithin(ctx, rec, typ, n)
	if err != nil {
		f := classify(err, id)
		r.log.Log(ctx, slog.LevelWarn, "proactive refresh failed", slog.String("tenant", tenant), slog.String("connection", id),
			slog.String("code", string(f.Code)), slog.String("providerCode", f.ProviderCode))
		return Refreshed{}, f
	}
	return Refreshed{Refreshed: next.mine, ExpiresAt: next.tokens.ExpiresAt()}, nil
}

func (r *Resolver) providerFor(ctx context.Context, tenant, id string, typ *connection.Type) (*oauth.Provider, error) {
	reg, err := r.cfg.Store.GetOAuthClient(ctx, tenant, typ.ID)
	if apperr.Is(err, apperr.NotFound) {
		return nil, fail(CodeOAuthClientMissing, id, err)
	}
	if err != nil {
		return nil, err
	}
	sec, err := r.cfg.Opener.Open(ctx, reg.SecretBinding(), reg.Secret)
	if err != nil {
		return nil, err
	}
	defer clear(sec)
	return oauth.NewProvider(typ, reg, sec, oauth.ProviderOptions{HTTPClient: r.cfg.HTTPClient, Now: r.cfg.Now})
}
