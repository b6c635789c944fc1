package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/retry"
	"github.com/connmgr/connmgr/shared/store"
	"github.com/connmgr/connmgr/shared/vault"
)

// outcome is a token set after refresh; mine says this call obtained it.
type outcome struct {
	tokens *oauth.TokenSet
	mine   bool
}

// need says when stored tokens must be replaced.
type need struct {
	// within: the access token expires within it (or there is none).
	within time.Duration
	// maxAge: the tokens were obtained at least this long ago (keep-alive);
	// 0 never.
	maxAge time.Duration
	// secretVersion: refresh only the tokens of this secret version; once
	// another version is stored, someone else refreshed (0: any version).
	secretVersion int64
}

// due reports whether ts must be replaced at now.
func (n need) due(ts *oauth.TokenSet, now time.Time) bool {
	if ts.Due(now, n.within) {
		return true
	}
	return n.maxAge > 0 && !ts.ObtainedAt().After(now.Add(-n.maxAge))
}

func (r *Resolver) refresh(ctx context.Context, rec *store.Record, typ *connection.Type) (*oauth.TokenSet, error) {
	o, err := r.refreshWithin(ctx, rec, typ, need{within: r.cfg.RefreshSkew})
	if err != nil {
		return nil, err
	}
	return o.tokens, nil
}

// refreshWithin gets tokens that are not due by n: by refreshing under the
// lease, or by waiting for the instance that holds it.
func (r *Resolver) refreshWithin(ctx context.Context, rec *store.Record, typ *connection.Type, n need) (outcome, error) {
	tenant, id := rec.Conn.Tenant, rec.Conn.ID
	owner := randomID()
	seen := rec.Conn.SecretVersion
	var got outcome
	// A lease wait, not a retry of a failure (the SDK retries those): poll
	// with jittered backoff for at most MaxWait, then give up retryably.
	wait := retry.Policy{Base: firstBackoff, Max: maxBackoff, MaxWait: r.cfg.MaxWait, Sleep: r.cfg.Sleep}
	err := wait.Do(ctx, func(attempt int) (bool, error) {
		if attempt > 1 {
			// After a wait: look at what is stored.
			cur, err := r.cfg.Store.Get(ctx, tenant, id)
			if err != nil {
				return false, classify(err, id)
			}
			if f := statusFailure(&cur.Conn, typ); f != nil {
				return false, f // for example the holder was told invalid_grant and marked it expired
			}
			if cur.Conn.SecretVersion != seen {
				ts, err := r.tokens(ctx, cur)
				if err != nil {
					return false, err
				}
				if n.secretVersion != 0 || !n.due(ts, r.cfg.Now()) {
					got = outcome{tokens: ts}
					return false, nil
				}
				seen = cur.Conn.SecretVersion
			}
		}
		ok, err := r.cfg.Store.AcquireLease(ctx, tenant, id, owner, r.cfg.LeaseTTL)
		if err != nil {
			return false, classify(err, id)
		}
		if !ok {
			return true, errLeaseHeld // another instance is refreshing
		}
		got, err = r.refreshHolding(ctx, owner, typ, n, tenant, id)
		return false, err
	})
	switch {
	case errors.Is(err, errLeaseHeld) && errors.Is(err, retry.ErrExhausted):
		return outcome{}, fail(CodeRefreshInProgress, id, fmt.Errorf("waited %s for another instance's refresh", r.cfg.MaxWait))
	case errors.Is(err, errLeaseHeld):
		return outcome{}, fail(CodeRefreshInProgress, id, err) // ctx ended while waiting
	case err != nil:
		return outcome{}, err
	}
	return got, nil
}

// errLeaseHeld: another instance holds the refresh lease.
var errLeaseHeld = errors.New("the refresh lease is held by another instance")

// refreshHolding runs while owner holds the lease.
func (r *Resolver) refreshHolding(ctx context.Context, owner string, typ *connection.Type, n need, tenant, id string) (outcome, error) {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := r.cfg.Store.ReleaseLease(rctx, tenant, id, owner); err != nil {
			r.log.WarnContext(ctx, "refresh lease not released; it expires by itself", slog.String("tenant", tenant), slog.String("connection", id), slog.String("error", err.Error()))
		}
	}()
	// Only real time bounds the provider call: it must end inside the lease.
	deadline := time.Now().Add(r.cfg.LeaseTTL - leaseMargin)
	// Read again under the lease: the previous holder may have just finished.
	rec, err := r.cfg.Store.Get(ctx, tenant, id)
	if err != nil {
		return outcome{}, classify(err, id)
	}
	if f := statusFailure(&rec.Conn, typ); f != nil {
		return outcome{}, f
	}
	ts, err := r.tokens(ctx, rec)
	if err != nil {
		return outcome{}, err
	}
	if n.secretVersion != 0 && rec.Conn.SecretVersion != n.secretVersion {
		return outcome{tokens: ts}, nil // refreshed by someone else meanwhile
	}
	if !n.due(ts, r.cfg.Now()) {
		return outcome{tokens: ts}, nil
	}
	p, err := r.providerFor(ctx, tenant, id, typ)
	if err != nil {
		return outcome{}, classify(err, id)
	}
	if typ.AuthMethod == connection.AuthOAuth2Code && rec.Conn.TokenEndpoint != p.TokenOrigin() {
		// The registration names another token endpoint than the one the
		// refresh token came from: it never goes there.
		return r.rejected(ctx, owner, rec, typ, n, oauth.ErrTokenEndpointChanged)
	}
	pctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var next *oauth.TokenSet
	scopes := p.ScopesFor(rec.Conn.Settings)
	if typ.AuthMethod == connection.AuthOAuth2Client {
		next, err = p.ClientCredentials(pctx, scopes)
	} else {
		next, err = p.Refresh(pctx, ts, scopes)
	}
	if err != nil {
		return r.rejected(ctx, owner, rec, typ, n, err)
	}
	if err := r.store(ctx, rec, next, p.TokenOrigin()); err != nil {
		if errors.Is(err, store.ErrSecretChanged) {
			// Someone stored other credentials (a reconnect) while we
			// refreshed; theirs stay. Ours are valid: hand them out this once.
			r.log.WarnContext(ctx, "refreshed tokens not stored: the connection was reconnected meanwhile", slog.String("tenant", tenant), slog.String("connection", id))
			return outcome{tokens: next, mine: true}, nil
		}
		// The provider may have rotated the refresh token: losing it
		// breaks the connection at the next refresh. Say so loudly.
		r.log.ErrorContext(ctx, "refreshed tokens not stored", slog.String("tenant", tenant), slog.String("connection", id), slog.String("error", err.Error()))
		return outcome{tokens: next, mine: true}, nil
	}
	r.log.InfoContext(ctx, "token refreshed", slog.String("tenant", tenant), slog.String("connection", id), slog.Int64("secretVersion", rec.Conn.SecretVersion+1),
		slog.Time("expiresAt", next.ExpiresAt()), slog.Bool("expiryAssumed", next.ExpiryAssumed()))
	return outcome{tokens: next, mine: true}, nil
}

// storeRetry bounds store's attempts at the write: a transaction that
// collided with another writer (TransactionConflict) is written again, and
// a status or version that moved on is decided again on the item as
// stored. Throttling and 5xx are not retried here: the SDK's retryer has
// already retried them (shared/app).
var storeRetry = retry.Policy{Attempts: 4, Base: 25 * time.Millisecond, Max: 200 * time.Millisecond}

// markRetry bounds rejected's attempts at marking a connection expired
// when the item moved on between its read and the conditional write.
var markRetry = retry.Policy{Attempts: 3, Base: 10 * time.Millisecond, Max: 50 * time.Millisecond}

// store seals and writes the new tokens, conditioned on the secret version
// refreshed and on the status the write was decided on (storeRetry). The
// status written is the policy's AfterRefresh: a connection expiring for
// its refresh token stays so unless the new one expires beyond the window,
// anything else is active; a move to active from another status is an
// audited write with Connection Recovered (reason refreshed). When the
// status or version moved on meanwhile (the expiry check's transition),
// the write is decided again on the connection as stored, so the new
// tokens are never lost to a status change.
func (r *Resolver) store(ctx context.Context, rec *store.Record, next *oauth.TokenSet, tokenOrigin string) error {
	c := rec.Conn
	pt, err := next.Encode()
	if err != nil {
		return err
	}
	c.TokenEndpoint = tokenOrigin
	sealed, err := r.cfg.Sealer.Seal(ctx, c.Binding(c.SecretVersion+1), pt)
	clear(pt)
	if err != nil {
		return err
	}
	p := storeRetry
	p.Sleep = r.cfg.Sleep
	reread := false
	return p.Do(ctx, func(int) (bool, error) {
		if reread {
			cur, err := r.cfg.Store.Get(ctx, c.Tenant, c.ID)
			if err != nil {
				return false, err
			}
			if cur.Conn.SecretVersion != c.SecretVersion {
				return false, &apperr.Error{Kind: store.ErrSecretChanged.Kind, Code: store.ErrSecretChanged.Code, Message: store.ErrSecretChanged.Message,
					Err: fmt.Errorf("secret version %d stored meanwhile", cur.Conn.SecretVersion)}
			}
			c = cur.Conn
			c.TokenEndpoint = tokenOrigin
			reread = false
		}
		w := r.tokenWrite(&c, sealed, next)
		err := r.cfg.Store.PutTokens(ctx, w)
		switch {
		case err == nil:
			if len(w.Events) > 0 {
				r.log.InfoContext(ctx, "connection recovered by a refresh", slog.String("tenant", c.Tenant), slog.String("connection", c.ID),
					slog.String("from", string(c.Status)), slog.Time("refreshTokenExpiresAt", next.RefreshExpiresAt()))
				if r.cfg.Events != nil {
					r.cfg.Events.Flush(ctx, w.Events)
				}
			}
			return false, nil
		case errors.Is(err, store.ErrSecretChanged):
			return false, err
		case errors.Is(err, store.ErrConcurrentChange):
			return true, err // the same write again
		case apperr.Is(err, apperr.PreconditionFailed):
			reread = true // the status or version changed, not the secret: decide again
			return true, err
		}
		return false, err
	})
}

// tokenWrite is the write of refreshed tokens over connection c as read.
func (r *Resolver) tokenWrite(c *connection.Connection, sealed vault.Sealed, next *oauth.TokenSet) store.TokenWrite {
	now := r.cfg.Now().UTC()
	rte := next.RefreshExpiresAt()
	to, reason, recovered := r.cfg.Store.Policy().AfterRefresh(c.Status, c.StatusReason, rte, now)
	w := store.TokenWrite{Tenant: c.Tenant, ID: c.ID, FromSecretVersion: c.SecretVersion, Secret: sealed, TokenEndpoint: c.TokenEndpoint,
		SecretFields: next.SecretFields(), TokenExpiresAt: next.ExpiresAt(), RefreshTokenExpiresAt: rte,
		Status: to, StatusReason: reason, ExpectedStatus: c.Status}
	if !recovered {
		return w
	}
	after := *c
	after.Version, after.SecretVersion, after.Status, after.StatusReason, after.UpdatedAt = c.Version+1, c.SecretVersion+1, to, "", now
	after.TokenExpiresAt, after.RefreshTokenExpiresAt = next.ExpiresAt(), rte
	details := map[string]string{"reason": expiry.ReasonRefreshed, "from": string(c.Status), "secretVersion": fmt.Sprint(c.SecretVersion + 1)}
	if !rte.IsZero() {
		details["refreshTokenExpiresAt"] = rte.Format(time.RFC3339)
	}
	w.ExpectedVersion = c.Version
	w.Audit = &connection.AuditEntry{ID: r.cfg.NewID(), At: now, Actor: "system:resolver", Action: expiry.ActionRecovered,
		Version: c.Version + 1, Changes: []string{"status"}, Details: details}
	w.Events = []events.Event{events.ForConnection(events.ConnectionRecovered, &after, r.cfg.NewID(), "", expiry.ReasonRefreshed, []string{"status"}, now)}
	return w
}

// rejected handles a failed provider call made under the lease.
func (r *Resolver) rejected(ctx context.Context, owner string, rec *store.Record, typ *connection.Type, n need, cause error) (outcome, error) {
	id := rec.Conn.ID
	f := classify(cause, id)
	pe, ok := oauth.AsError(cause)
	if !ok || !pe.Rejected {
		return outcome{}, f // transient: nothing to mark, the lease is released
	}
	// The mark is conditioned on the version read: when the item moved on
	// (an edit or a new secret) it is read and decided again (markRetry).
	var got outcome
	p := markRetry
	p.Sleep = r.cfg.Sleep
	err := p.Do(ctx, func(int) (bool, error) {
		// Another process may have stored a new token while ours was being
		// refused (a reconnect, or a refresher whose lease we outlived).
		cur, err := r.cfg.Store.Get(ctx, rec.Conn.Tenant, id)
		if err != nil {
			return false, classify(err, id)
		}
		if cur.Conn.SecretVersion != rec.Conn.SecretVersion {
			if sf := statusFailure(&cur.Conn, typ); sf != nil {
				return false, sf
			}
			ts, err := r.tokens(ctx, cur)
			if err != nil {
				return false, err
			}
			if !n.due(ts, r.cfg.Now()) {
				r.log.InfoContext(ctx, "refresh rejected, but a newer token is stored: using it", slog.String("tenant", rec.Conn.Tenant),
					slog.String("connection", id), slog.String("providerCode", pe.Code))
				got = outcome{tokens: ts}
				return false, nil
			}
			return false, f
		}
		if !pe.RevokesGrant() || cur.Conn.Status == connection.StatusExpired {
			return false, f
		}
		now := r.cfg.Now().UTC()
		after := cur.Conn
		after.Version, after.Status, after.StatusReason, after.UpdatedAt = cur.Conn.Version+1, connection.StatusExpired, pe.Code, now
		evs := []events.Event{
			events.ForConnection(events.ConnectionRefreshFailed, &after, r.cfg.NewID(), "", pe.Code, nil, now),
			events.ForConnection(events.ConnectionExpired, &after, r.cfg.NewID(), "", pe.Code, []string{"status"}, now),
		}
		err = r.cfg.Store.MarkExpired(ctx, store.ExpiredMark{
			Tenant: rec.Conn.Tenant, ID: id, SecretVersion: rec.Conn.SecretVersion, ExpectedVersion: cur.Conn.Version,
			Reason: pe.Code, LeaseOwner: owner, Events: evs,
			Audit: connection.AuditEntry{ID: r.cfg.NewID(), At: now, Actor: "system:resolver", Action: connection.ActionExpired,
				Version: cur.Conn.Version + 1, Changes: []string{"status"},
				Details: map[string]string{"reason": pe.Code, "secretVersion": fmt.Sprint(rec.Conn.SecretVersion)}},
		})
		if err == nil {
			r.log.WarnContext(ctx, "connection marked expired", slog.String("tenant", rec.Conn.Tenant), slog.String("connection", id),
				slog.String("providerCode", pe.Code), slog.Int64("secretVersion", rec.Conn.SecretVersion))
			if r.cfg.Events != nil {
				r.cfg.Events.Flush(ctx, evs)
			}
			if r.cfg.OnExpired != nil {
				r.cfg.OnExpired(ctx, rec.Conn.Tenant, id, pe.Code)
			}
			return false, f
		}
		if !apperr.Is(err, apperr.PreconditionFailed) {
			r.log.WarnContext(ctx, "connection not marked expired", slog.String("tenant", rec.Conn.Tenant), slog.String("connection", id), slog.String("error", err.Error()))
			return false, f
		}
		return true, err // the item moved on: look again
	})
	if errors.Is(err, retry.ErrExhausted) || errors.Is(err, retry.ErrInterrupted) {
		return outcome{}, f // moved on at every attempt, or out of time
	}
	return got, err
}
