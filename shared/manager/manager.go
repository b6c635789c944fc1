package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/retry"
	"github.com/connmgr/connmgr/shared/runs"
	"github.com/connmgr/connmgr/shared/store"
	"github.com/connmgr/connmgr/shared/vault"
)

// Store is the persistence the service needs.
type Store interface {
	Create(ctx context.Context, r *store.Record, audit connection.AuditEntry, idem *store.Idempotency, evs ...events.Event) error
	Get(ctx context.Context, tenant, id string) (*store.Record, error)
	Update(ctx context.Context, next *store.Record, expected int64, prevOwners []string, ch store.Changes) error
	Delete(ctx context.Context, r *store.Record, expected int64, audit connection.AuditEntry, evs ...events.Event) error
	List(ctx context.Context, q store.ListQuery) ([]*store.Record, string, error)
	Audit(ctx context.Context, tenant, id, before string, limit int) ([]connection.AuditEntry, string, error)
	ActiveRuns(ctx context.Context, tenant, conn string, keep func(store.UsageItem) bool) ([]store.UsageItem, int, error)
	NoteConnectionDeleted(ctx context.Context, tenant, runID, conn string, ev func(*runs.Run) events.Event) (bool, error)
}

// Sealer encrypts credentials.
type Sealer interface {
	Seal(ctx context.Context, b vault.Binding, plaintext []byte) (vault.Sealed, error)
}

// Authorizer runs OAuth authorizations (package oauth).
type Authorizer interface {
	Ready(ctx context.Context, tenant, typeID string) error
	Begin(ctx context.Context, caller identity.Caller, id string) (*oauth.Authorization, error)
	BeginFor(ctx context.Context, caller identity.Caller, conn *connection.Connection) (*oauth.Authorization, error)
}

// Clients manages the tenant's OAuth client registrations (package oauth).
type Clients interface {
	List(ctx context.Context, caller identity.Caller) ([]*oauth.ClientView, error)
	Get(ctx context.Context, caller identity.Caller, typeID string) (*oauth.ClientView, error)
	Put(ctx context.Context, caller identity.Caller, typeID string, in oauth.ClientInput, ifMatch int64) (*oauth.ClientView, error)
	Delete(ctx context.Context, caller identity.Caller, typeID string, ifMatch int64) error
}

// Tester checks a connection's credentials through the resolver, the only
// place they are decrypted.
type Tester interface {
	Test(ctx context.Context, tenant, id, user string) (*resolver.TestResult, error)
}

// Events publishes the events a committed change wrote to the outbox.
type Events interface {
	Flush(ctx context.Context, evs []events.Event)
}

// Deps are the Service's collaborators.
type Deps struct {
	Store      Store
	Sealer     Sealer
	Authorizer Authorizer
	Clients    Clients
	Tester     Tester
	Events     Events
	Now        func() time.Time
	NewID      func() string
	// Expiry is the due policy: its password rule decides when a settings
	// change or new credentials end an expiring or expired state, as the
	// expiry check would (zero: expiry.DefaultPolicy).
	Expiry expiry.Policy
	// Settings is the deployment's policy on settings, for create and
	// update (zero: the strictest, https only).
	Settings connection.SettingsPolicy
}

// Service manages connections.
type Service struct {
	store      Store
	sealer     Sealer
	authorizer Authorizer
	clients    Clients
	tester     Tester
	events     Events
	now        func() time.Time
	newID      func() string
	expiry     expiry.Policy
	settings   connection.SettingsPolicy
}

// New returns a Service.
func New(d Deps) *Service {
	return &Service{store: d.Store, sealer: d.Sealer, authorizer: d.Authorizer, clients: d.Clients, tester: d.Tester, events: d.Events, now: d.Now, newID: d.NewID,
		expiry: d.Expiry.WithDefaults(), settings: d.Settings}
}

// CreateInput is the body of POST /connections.
type CreateInput struct {
	Type         string                   `json:"type"`
	Name         string                   `json:"name"`
	Kind         connection.Kind          `json:"kind"`
	Availability *connection.Availability `json:"availability,omitempty"`
	Settings     map[string]any           `json:"settings"`
	Credentials  connection.Credentials   `json:"credentials"`
}

// Created is the outcome of Create.
type Created struct {
	Conn     *connection.Connection
	Replayed bool // an earlier request with the same Idempotency-Key created it
	// Authorization is where the creator authorizes a new OAuth connection.
	Authorization *oauth.Authorization
}

// Create validates and stores a new connection. idemKey may be empty.
func (s *Service) Create(ctx context.Context, caller identity.Caller, in CreateInput, idemKey string) (Created, error) {
	name, err := validName(in.Name)
	if err != nil {
		return Created{}, err
	}
	in.Name = name // the idempotency fingerprint covers the name as stored
	typ, err := connection.Lookup(in.Type, "type")
	if err != nil {
		return Created{}, err
	}
	if err := connection.CanCreate(caller, in.Kind); err != nil {
		return Created{}, err
	}
	avail, err := s.availabilityFor(caller, in.Kind, in.Availability)
	if err != nil {
		return Created{}, err
	}
	if err := typ.CheckSettings(in.Settings, s.settings); err != nil {
		return Created{}, err
	}
	if err := typ.ValidateCredentials(in.Credentials); err != nil {
		return Created{}, err
	}
	if typ.AuthMethod.IsOAuth() {
		if err := s.authorizer.Ready(ctx, caller.Tenant, typ.ID); err != nil {
			return Created{}, err
		}
	}
	var idem *store.Idempotency
	if idemKey != "" {
		if err := validIdempotencyKey(idemKey); err != nil {
			return Created{}, err
		}
		idem = &store.Idempotency{User: caller.User, Key: idemKey, RequestHash: fingerprint(in, avail)}
	}
	now := s.now().UTC()
	c := connection.Connection{
		Tenant: caller.Tenant, ID: s.newID(), Type: typ.ID, Name: name, Kind: in.Kind,
		Availability: avail, Owners: []string{caller.User}, CreatedBy: caller.User,
		CreatedAt: now, UpdatedAt: now, Version: 1, Status: connection.StatusActive,
		Settings: in.Settings, SecretFields: fieldNames(in.Credentials),
	}
	if c.Settings == nil {
		c.Settings = map[string]any{}
	}
	if typ.AuthMethod == connection.AuthOAuth2Code {
		c.Status = connection.StatusPendingAuthorization
	}
	rec := &store.Record{Conn: c}
	if len(in.Credentials) > 0 {
		rec.Conn.SecretVersion = 1
		if rec.Secret, err = s.seal(ctx, &rec.Conn, in.Credentials); err != nil {
			return Created{}, err
		}
	}
	audit := s.audit(caller, connection.ActionCreated, 1, append([]string{"name", "kind", "availability"}, prefixed("credentials.", rec.Conn.SecretFields)...), map[string]string{
		"type": c.Type, "availability": describeAvailability(avail),
	})
	created := events.ForConnection(events.ConnectionCreated, &rec.Conn, s.newID(), caller.User, "", audit.Changes, now)
	err = s.store.Create(ctx, rec, audit, idem, created)
	var replay *store.ErrIdempotencyReplay
	if errors.As(err, &replay) {
		prev, err := s.store.Get(ctx, caller.Tenant, replay.ConnectionID)
		if err != nil {
			return Created{}, fmt.Errorf("manager.Create replay: %w", err)
		}
		return s.authorize(ctx, caller, Created{Conn: &prev.Conn, Replayed: true}), nil
	}
	if err != nil {
		return Created{}, fmt.Errorf("manager.Create: %w", err)
	}
	s.events.Flush(ctx, []events.Event{created})
	return s.authorize(ctx, caller, Created{Conn: &rec.Conn}), nil
}

// authorize starts the authorization of a new OAuth connection still
// pending it. The connection exists either way: if the authorization cannot
// start now, the creator reconnects later (POST /connections/{id}/authorize).
func (s *Service) authorize(ctx context.Context, caller identity.Caller, c Created) Created {
	if c.Conn.Status != connection.StatusPendingAuthorization {
		return c
	}
	if a, err := s.authorizer.BeginFor(ctx, caller, c.Conn); err == nil {
		c.Authorization = a
	}
	return c
}

// Authorize starts (again) the OAuth authorization of a connection.
func (s *Service) Authorize(ctx context.Context, caller identity.Caller, id string) (*oauth.Authorization, error) {
	a, err := s.authorizer.Begin(ctx, caller, id)
	if err != nil {
		return nil, fmt.Errorf("manager.Authorize %s: %w", id, err)
	}
	return a, nil
}

// Test checks a connection's credentials against its own host.
func (s *Service) Test(ctx context.Context, caller identity.Caller, id string) (*resolver.TestResult, error) {
	r, err := s.Get(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	if !connection.CanConfigure(caller, &r.Conn) {
		return nil, errNotConfigurer(&r.Conn)
	}
	res, err := s.tester.Test(ctx, caller.Tenant, id, caller.User)
	if err != nil {
		return nil, fmt.Errorf("manager.Test %s: %w", id, err)
	}
	return res, nil
}

func (s *Service) availabilityFor(caller identity.Caller, kind connection.Kind, requested *connection.Availability) (connection.Availability, error) {
	if kind == connection.Personal {
		if requested != nil {
			return connection.Availability{}, apperr.InvalidField("availability", "personal_availability", "a personal connection is available only to its creator; omit availability")
		}
		return connection.Availability{Scope: connection.ScopePersonal}, nil
	}
	if requested == nil {
		return connection.DefaultAvailability(caller)
	}
	a, err := requested.Normalize("availability")
	if err != nil {
		return connection.Availability{}, err
	}
	if !connection.WithinAuthority(caller, a) {
		return connection.Availability{}, apperr.E(apperr.Forbidden, "availability_not_allowed", "that availability is beyond your authority")
	}
	return a, nil
}

func (s *Service) seal(ctx context.Context, c *connection.Connection, creds connection.Credentials) (vault.Sealed, error) {
	pt, err := json.Marshal(creds)
	if err != nil {
		return vault.Sealed{}, fmt.Errorf("manager: encode credentials: %w", err)
	}
	defer clear(pt)
	sealed, err := s.sealer.Seal(ctx, c.Binding(c.SecretVersion), pt)
	if err != nil {
		return vault.Sealed{}, fmt.Errorf("manager: seal credentials of %s: %w", c.ID, err)
	}
	return sealed, nil
}

// Get returns a connection the caller may see.
func (s *Service) Get(ctx context.Context, caller identity.Caller, id string) (*store.Record, error) {
	r, err := s.store.Get(ctx, caller.Tenant, id)
	if err != nil {
		return nil, err
	}
	if !connection.CanSee(caller, &r.Conn) {
		// Exactly the answer for a connection that does not exist.
		return nil, apperr.NotFoundf("connection not found")
	}
	return r, nil
}

// errNotConfigurer is the refusal to change where conn's secret goes, or
// to use it, for a caller who may see it but not configure it.
func errNotConfigurer(conn *connection.Connection) error {
	if conn.Kind == connection.Personal {
		return apperr.E(apperr.Forbidden, "forbidden", "only the creator of a personal connection changes its settings or credentials, tests or uses it")
	}
	return apperr.E(apperr.Forbidden, "forbidden", "only the connection's owners and administrators may change it")
}

func (s *Service) getManaged(ctx context.Context, caller identity.Caller, id string) (*store.Record, error) {
	r, err := s.Get(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	if !connection.CanManage(caller, &r.Conn) {
		return nil, apperr.E(apperr.Forbidden, "forbidden", "only the connection's owners and administrators may change it")
	}
	return r, nil
}

// ListFilter narrows a listing.
type ListFilter struct {
	Type   string
	Scope  connection.Scope
	Status connection.Status
	// UsableAt, a site path, turns the list into a connection picker:
	// exactly the connections a run owned by the caller at that site may
	// use (connection.CanUse, the resolver's rule), whatever the caller's
	// administrator roles.
	UsableAt string
	Cursor   string
	Limit    int
}

// List returns the connections the caller may see, in id (creation) order.
func (s *Service) List(ctx context.Context, caller identity.Caller, f ListFilter) ([]*connection.Connection, string, error) {
	q := store.ListQuery{Tenant: caller.Tenant, Limit: f.Limit}
	if f.Cursor != "" {
		after, err := listScope(caller, f).Decode(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q.After = after
	}
	allowed := func(c *connection.Connection) bool { return connection.CanSee(caller, c) }
	switch {
	case f.UsableAt != "":
		site, err := identity.CanonicalPath(f.UsableAt)
		if err != nil {
			return nil, "", apperr.InvalidField("usableAt", "invalid_site", "usableAt must be a site path such as /sites/hr")
		}
		if !caller.CanAccessSite(site) {
			return nil, "", apperr.E(apperr.Forbidden, "site_not_accessible", "you cannot access that site")
		}
		use := connection.Use{Tenant: caller.Tenant, Site: site, RunOwner: caller.User}
		allowed = func(c *connection.Connection) bool { return connection.CanUse(use, c) }
		q.Audiences = append([]store.Audience{store.AudienceOwner(caller.User), store.AudienceTenant()}, siteAudiences(site)...)
	case caller.SeesAll():
		q.All = true
	default:
		q.Audiences = audiences(caller)
	}
	q.Keep = func(r *store.Record) bool {
		c := &r.Conn
		return allowed(c) &&
			(f.Type == "" || c.Type == f.Type) &&
			(f.Status == "" || c.Status == f.Status) &&
			(f.Scope == "" || c.Availability.Scope == f.Scope)
	}
	recs, next, err := s.store.List(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("manager.List: %w", err)
	}
	out := make([]*connection.Connection, len(recs))
	for i, r := range recs {
		out[i] = &r.Conn
	}
	if next != "" {
		next = listScope(caller, f).Encode(next)
	}
	return out, next, nil
}

// audiences is every gsi1 partition holding connections a caller who is not
// an administrator may see: their own, tenant-wide ones, and those available
// to a site they can reach or a collection containing one.
func audiences(c identity.Caller) []store.Audience {
	out := []store.Audience{store.AudienceOwner(c.User), store.AudienceTenant()}
	for _, site := range c.AccessibleSites() {
		out = append(out, siteAudiences(site)...)
	}
	return out
}

// siteAudiences are the gsi1 partitions of shared connections available at
// site: the site's own and its collections'.
func siteAudiences(site string) []store.Audience {
	out := []store.Audience{store.AudienceSite(site)}
	for _, col := range identity.CollectionsOf(site) {
		out = append(out, store.AudienceCollection(col))
	}
	return out
}

// UpdateInput is the body of PATCH /connections/{id}. Settings are a JSON
// merge patch (null removes a setting); credentials replace the stored set
// entirely, since nobody can read the old values back to merge them.
type UpdateInput struct {
	Name        *string                `json:"name,omitempty"`
	Settings    map[string]any         `json:"settings,omitempty"`
	Credentials connection.Credentials `json:"credentials,omitempty"`
	// Disabled true stops every run and test from using the connection;
	// false enables it again.
	Disabled *bool `json:"disabled,omitempty"`
}

// Update changes name, settings or credentials. ifMatch is the version the
// caller read (0: none given, retry on concurrent change).
func (s *Service) Update(ctx context.Context, caller identity.Caller, id string, in UpdateInput, ifMatch int64) (*connection.Connection, error) {
	if in.Name == nil && in.Settings == nil && in.Credentials == nil && in.Disabled == nil {
		return nil, apperr.E(apperr.Invalid, "empty_update", "name, settings, credentials or disabled is required")
	}
	return s.mutate(ctx, caller, id, ifMatch, func(r *store.Record) ([]connection.AuditEntry, error) {
		c := &r.Conn
		typ, err := connection.Lookup(c.Type, "type")
		if err != nil {
			return nil, err
		}
		if (in.Settings != nil || in.Credentials != nil) && !connection.CanConfigure(caller, c) {
			return nil, errNotConfigurer(c)
		}
		var changes []string
		if in.Disabled != nil && *in.Disabled != c.Disabled {
			// Named by the new state: "enabled" resumes runs suspended on
			// the connection (the resume rule matches it), "disabled" not.
			c.Disabled = *in.Disabled
			changes = append(changes, map[bool]string{true: "disabled", false: "enabled"}[c.Disabled])
		}
		if in.Name != nil {
			name, err := validName(*in.Name)
			if err != nil {
				return nil, err
			}
			if name != c.Name {
				c.Name = name
				changes = append(changes, "name")
			}
		}
		var audits []connection.AuditEntry
		if in.Settings != nil {
			next, changed := mergePatch(c.Settings, in.Settings)
			if len(changed) > 0 {
				if err := typ.CheckSettings(next, s.settings); err != nil {
					return nil, err
				}
				// The stored secret never follows a new host.
				if moved := typ.ChangedDestinations(c.Settings, next); len(moved) > 0 {
					switch {
					case typ.AuthMethod.IsOAuth():
						audits = append(audits, s.dropTokens(caller, r, typ))
					case in.Credentials == nil:
						return nil, apperr.ConflictField("settings."+moved[0], "credentials_required",
							"changing where settings.%s points needs new credentials in the same request: stored credentials never follow a new host", moved[0])
					}
				}
				c.Settings = next
				changes = append(changes, prefixed("settings.", changed)...)
			}
		}
		if in.Credentials != nil {
			if typ.AuthMethod.IsOAuth() {
				return nil, apperr.InvalidField("credentials", "oauth_credentials", "OAuth connections get their tokens from the provider; reconnect instead")
			}
			if err := typ.ValidateCredentials(in.Credentials); err != nil {
				return nil, err
			}
			c.SecretVersion++
			c.SecretFields = fieldNames(in.Credentials)
			if r.Secret, err = s.seal(ctx, c, in.Credentials); err != nil {
				return nil, err
			}
			// New credentials are the fix for an expired or failing connection.
			if c.Status != connection.StatusPendingAuthorization {
				c.Status, c.StatusReason = connection.StatusActive, ""
			}
			// A password expiry that makes the new password expiring or
			// expired at once described the old one: unless this request
			// sets it, it goes, so the expiry check does not undo the fix.
			if _, given := in.Settings[expiry.SettingPasswordExpiresAt]; !given {
				if pe, ok := expiry.PasswordExpiresAt(c.Settings); ok {
					if st, _ := s.expiry.PasswordStatus(pe, s.now()); st != connection.StatusActive {
						c.Settings = maps.Clone(c.Settings)
						delete(c.Settings, expiry.SettingPasswordExpiresAt)
						changes = append(changes, "settings."+expiry.SettingPasswordExpiresAt)
					}
				}
			}
			audits = append(audits, s.audit(caller, connection.ActionCredentialsChanged, c.Version+1, prefixed("credentials.", c.SecretFields), map[string]string{"secretVersion": strconv.FormatInt(c.SecretVersion, 10)}))
		}
		var details map[string]string
		if !typ.AuthMethod.IsOAuth() && in.Settings != nil && c.Status != connection.StatusPendingAuthorization {
			// A later (or no) password expiry ends an expiring or expired
			// state by the expiry check's own rule; an earlier one is left
			// to the check, which writes that transition with its event.
			pe, _ := expiry.PasswordExpiresAt(c.Settings)
			if next, _, ok := s.expiry.Transition(c.Status, c.StatusReason, pe, s.now()); ok && expiry.Better(next, c.Status) {
				c.Status, c.StatusReason = next, ""
				if next != connection.StatusActive {
					_, c.StatusReason = s.expiry.PasswordStatus(pe, s.now())
				}
				details = map[string]string{"status": string(next)}
			}
		}
		if len(changes) > 0 {
			audits = append([]connection.AuditEntry{s.audit(caller, connection.ActionUpdated, c.Version+1, changes, details)}, audits...)
		}
		return audits, nil
	})
}

// dropTokens forgets an OAuth connection's tokens because its destinations
// change: they were issued for the old hosts. An authorization-code
// connection waits for a new authorization; a client-credentials one gets
// new tokens at its next use. Returns the audit entry; the caller's write
// stores the change.
func (s *Service) dropTokens(caller identity.Caller, r *store.Record, typ *connection.Type) connection.AuditEntry {
	c := &r.Conn
	dropped := prefixed("credentials.", c.SecretFields)
	c.SecretVersion++
	r.Secret, r.TokensAt = vault.Sealed{}, time.Time{}
	c.SecretFields, c.TokenEndpoint = nil, ""
	c.TokenExpiresAt, c.RefreshTokenExpiresAt = time.Time{}, time.Time{}
	if typ.AuthMethod == connection.AuthOAuth2Code {
		c.Status, c.StatusReason = connection.StatusPendingAuthorization, ReasonDestinationChanged
	}
	return s.audit(caller, connection.ActionCredentialsChanged, c.Version+1, dropped,
		map[string]string{"secretVersion": strconv.FormatInt(c.SecretVersion, 10), "reason": ReasonDestinationChanged})
}

// ReasonDestinationChanged: an OAuth connection's tokens were dropped
// because a setting naming a host changed; it needs a new authorization.
const ReasonDestinationChanged = "destination_changed"

// SetAvailability changes where a shared connection is available.
func (s *Service) SetAvailability(ctx context.Context, caller identity.Caller, id string, a connection.Availability, ifMatch int64) (*connection.Connection, error) {
	return s.mutate(ctx, caller, id, ifMatch, func(r *store.Record) ([]connection.AuditEntry, error) {
		c := &r.Conn
		if c.Kind == connection.Personal {
			return nil, apperr.E(apperr.Conflict, "personal_connection", "a personal connection is available only to its creator and never becomes shared")
		}
		if !connection.CanChangeAvailability(caller, c) {
			return nil, apperr.E(apperr.Forbidden, "forbidden", "only tenant administrators and owners who are site collection administrators change availability")
		}
		next, err := a.Normalize("availability")
		if err != nil {
			return nil, err
		}
		if !connection.CanMoveAvailability(caller, c, next) {
			return nil, apperr.E(apperr.Forbidden, "availability_not_allowed", "both the current and the new availability must be within your authority")
		}
		if next == c.Availability {
			return nil, nil
		}
		from := describeAvailability(c.Availability)
		c.Availability = next
		return []connection.AuditEntry{s.audit(caller, connection.ActionAvailabilityChanged, c.Version+1, []string{"availability"},
			map[string]string{"from": from, "to": describeAvailability(next)})}, nil
	})
}

// SetOwners replaces a shared connection's owners.
func (s *Service) SetOwners(ctx context.Context, caller identity.Caller, id string, owners []string, ifMatch int64) (*connection.Connection, error) {
	return s.mutate(ctx, caller, id, ifMatch, func(r *store.Record) ([]connection.AuditEntry, error) {
		c := &r.Conn
		if c.Kind == connection.Personal {
			return nil, apperr.E(apperr.Conflict, "personal_connection", "a personal connection belongs to its creator alone")
		}
		next, err := connection.ValidateOwners(owners)
		if err != nil {
			return nil, err
		}
		var added, removed []string
		for _, o := range next {
			if !c.IsOwner(o) {
				added = append(added, o)
			}
		}
		for _, o := range c.Owners {
			if !slices.Contains(next, o) {
				removed = append(removed, o)
			}
		}
		if len(added) == 0 && len(removed) == 0 {
			return nil, nil
		}
		previous := strings.Join(c.Owners, " ")
		c.Owners = next
		return []connection.AuditEntry{s.audit(caller, connection.ActionOwnersChanged, c.Version+1, []string{"owners"},
			map[string]string{"added": strings.Join(added, " "), "removed": strings.Join(removed, " "), "previous": previous})}, nil
	})
}

// writeRetry bounds mutate's re-reads after losing a race to another
// writer: up to 8 attempts, jittered waits of at most 10, 20, 40, 80 ms and
// then 100 ms (under half a second in all).
var writeRetry = retry.Policy{Attempts: 8, Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}

// errContention answers a change that lost the race to other writers on
// every attempt: 503, to be retried, never 412 (no version was named).
var errContention = apperr.E(apperr.Unavailable, "contention", "the connection is being changed by other requests; retry shortly")

// mutate is the one read-check-modify-write loop: load, check the caller may
// manage, apply change, write conditioned on the version read. change returns
// no audit entries when nothing changed (no write happens). A write that
// loses the race to another is retried from the read (writeRetry): with
// If-Match the re-read answers 412 once the version named is gone; without,
// the change applies to the new version, or, should others keep winning,
// the answer is 503 contention, never 412.
func (s *Service) mutate(ctx context.Context, caller identity.Caller, id string, ifMatch int64, change func(*store.Record) ([]connection.AuditEntry, error)) (*connection.Connection, error) {
	var out *connection.Connection
	err := writeRetry.Do(ctx, func(int) (bool, error) {
		r, err := s.getManaged(ctx, caller, id)
		if err != nil {
			return false, err
		}
		if ifMatch != 0 && r.Conn.Version != ifMatch {
			return false, apperr.E(apperr.PreconditionFailed, "version_mismatch", "the connection was changed by someone else; read it again")
		}
		prevOwners := slices.Clone(r.Conn.Owners)
		prevStatus := r.Conn.Status
		expected := r.Conn.Version
		audits, err := change(r)
		if err != nil {
			return false, err
		}
		if len(audits) == 0 {
			out = &r.Conn
			return false, nil
		}
		r.Conn.Version = expected + 1
		r.Conn.UpdatedAt = s.now().UTC()
		evs := s.changeEvents(caller, &r.Conn, prevStatus, audits)
		err = s.store.Update(ctx, r, expected, prevOwners, store.Changes{Audits: audits, Events: evs})
		if err == nil {
			s.events.Flush(ctx, evs)
			out = &r.Conn
			return false, nil
		}
		if lostRace(err) {
			return true, err
		}
		return false, fmt.Errorf("manager: update %s: %w", id, err)
	})
	// Out of attempts, or out of time while waiting for the next: the
	// lost race behind it must not answer 412 or 409.
	if errors.Is(err, retry.ErrExhausted) || errors.Is(err, retry.ErrInterrupted) {
		return nil, apperr.Wrap(errContention.Kind, errContention.Code, errContention.Message, fmt.Errorf("manager: update %s: %w", id, err))
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lostRace reports a conditional write that failed because another writer
// changed the connection first, or was changing it at the same moment.
func lostRace(err error) bool {
	return apperr.Is(err, apperr.PreconditionFailed) || errors.Is(err, store.ErrConcurrentChange)
}

// InUse is the detail of a refused delete: the runs running or suspended
// on the connection that the caller may see, and how many others.
type InUse struct {
	Runs   []store.UsageItem `json:"runs"`
	Hidden int               `json:"hidden"`
}

// maxInUseListed bounds the runs a refused delete lists.
const maxInUseListed = 100

// Delete removes a connection the caller manages. While runs are running
// or suspended on it the answer is 409 connection_in_use naming the runs
// the caller may see, unless force: then it goes, and the runs suspended
// on it wait with reason connection_deleted (a Run Suspended event tells
// their owners) until someone rebinds them or they time out.
func (s *Service) Delete(ctx context.Context, caller identity.Caller, id string, ifMatch int64, force bool) error {
	r, err := s.getManaged(ctx, caller, id)
	if err != nil {
		return err
	}
	if ifMatch != 0 && r.Conn.Version != ifMatch {
		return apperr.E(apperr.PreconditionFailed, "version_mismatch", "the connection was changed by someone else; read it again")
	}
	active, hidden, err := s.store.ActiveRuns(ctx, caller.Tenant, id, func(u store.UsageItem) bool {
		return runs.CanSee(caller, &runs.Run{Tenant: caller.Tenant, Owner: u.Owner, Site: u.Site})
	})
	if err != nil {
		return fmt.Errorf("manager: delete %s: %w", id, err)
	}
	if len(active)+hidden > 0 && !force {
		e := apperr.E(apperr.Conflict, "connection_in_use", "runs are running or suspended on this connection: rebind them first, or delete with force=true")
		e.Details = InUse{Runs: active[:min(len(active), maxInUseListed)], Hidden: hidden + max(len(active)-maxInUseListed, 0)}
		return e
	}
	audit := s.audit(caller, connection.ActionDeleted, r.Conn.Version+1, nil, map[string]string{"name": r.Conn.Name})
	deleted := events.ForConnection(events.ConnectionDeleted, &r.Conn, s.newID(), caller.User, "", nil, audit.At)
	if err := s.store.Delete(ctx, r, r.Conn.Version, audit, deleted); err != nil {
		return fmt.Errorf("manager: delete %s: %w", id, err)
	}
	s.events.Flush(ctx, []events.Event{deleted})
	if force && len(active)+hidden > 0 {
		s.noteDeleted(ctx, caller.Tenant, id)
	}
	return nil
}

// noteDeleted marks every run suspended on the deleted connection
// connection_deleted, each with its Run Suspended event. A failure leaves
// that run's older reason (it still waits, and rebinding still repairs it).
func (s *Service) noteDeleted(ctx context.Context, tenant, id string) {
	all, _, err := s.store.ActiveRuns(ctx, tenant, id, nil)
	if err != nil {
		return
	}
	var evs []events.Event
	for _, u := range all {
		if u.Status != runs.StatusSuspended {
			continue
		}
		var last events.Event
		if ok, _ := s.store.NoteConnectionDeleted(ctx, tenant, u.RunID, id, func(r *runs.Run) events.Event {
			last = events.ForRun(events.RunSuspended, r, s.newID(), runs.ReasonConnectionDeleted, s.now())
			return last
		}); ok {
			evs = append(evs, last) // only what was committed
		}
	}
	s.events.Flush(ctx, evs)
}

// changeEvents reports a committed change: Connection Updated with every
// field touched (credentials.*, settings.*, name, availability, owners),
// and Connection Recovered when new credentials end an expired, expiring
// or failing state.
func (s *Service) changeEvents(caller identity.Caller, c *connection.Connection, prevStatus connection.Status, audits []connection.AuditEntry) []events.Event {
	var changes []string
	for _, a := range audits {
		changes = append(changes, a.Changes...)
	}
	at := c.UpdatedAt
	updated := events.ForConnection(events.ConnectionUpdated, c, s.newID(), caller.User, "", changes, at)
	for _, a := range audits {
		if a.Action == connection.ActionOwnersChanged {
			updated = updated.WithPreviousOwners(strings.Fields(a.Details["previous"]))
		}
	}
	evs := []events.Event{updated}
	reason := "settings_updated"
	if slices.ContainsFunc(audits, func(a connection.AuditEntry) bool { return a.Action == connection.ActionCredentialsChanged }) {
		reason = "credentials_updated"
	}
	switch prevStatus {
	case connection.StatusExpired, connection.StatusExpiring, connection.StatusError:
		if c.Status == connection.StatusActive {
			evs = append(evs, events.ForConnection(events.ConnectionRecovered, c, s.newID(), caller.User, reason, changes, at))
		}
	}
	return evs
}

// Audit lists the audit entries of a connection the caller may see.
func (s *Service) Audit(ctx context.Context, caller identity.Caller, id, cursor string, limit int) ([]connection.AuditEntry, string, error) {
	if _, err := s.Get(ctx, caller, id); err != nil {
		return nil, "", err
	}
	before := ""
	if cursor != "" {
		var err error
		if before, err = auditScope(caller, id).Decode(cursor); err != nil {
			return nil, "", err
		}
	}
	entries, next, err := s.store.Audit(ctx, caller.Tenant, id, before, limit)
	if err != nil {
		return nil, "", err
	}
	if next != "" {
		next = auditScope(caller, id).Encode(next)
	}
	return entries, next, nil
}

func (s *Service) audit(caller identity.Caller, action connection.Action, version int64, changes []string, details map[string]string) connection.AuditEntry {
	return connection.AuditEntry{ID: s.newID(), At: s.now().UTC(), Actor: caller.User, Action: action, Version: version, Changes: changes, Details: details}
}

// validName is the connection name rule (connection.ValidName): the
// name returned is the one to store.
func validName(n string) (string, error) { return connection.ValidName(n) }

func validIdempotencyKey(k string) error {
	if len(k) > 255 || strings.ContainsFunc(k, func(r rune) bool { return r <= 0x20 || r >= 0x7f || r == '#' }) {
		return apperr.InvalidField("Idempotency-Key", "invalid_idempotency_key", "Idempotency-Key is 1 to 255 visible ASCII characters other than #")
	}
	return nil
}

// fingerprint identifies a create request for idempotency. It covers every
// non-secret part and only the names of the credential fields: no derivative
// of a secret value is ever stored outside its envelope, so a retry that
// changes nothing but a secret value replays the first result.
func fingerprint(in CreateInput, avail connection.Availability) string {
	b, _ := json.Marshal(struct {
		Type, Name   string
		Kind         connection.Kind
		Availability connection.Availability
		Settings     map[string]any
		Credentials  []string
	}{in.Type, strings.TrimSpace(in.Name), in.Kind, avail, in.Settings, fieldNames(in.Credentials)})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func fieldNames(m connection.Credentials) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// mergePatch applies an RFC 7396 merge patch to settings, returning the
// result and the top-level keys it changed.
func mergePatch(cur, patch map[string]any) (map[string]any, []string) {
	next := make(map[string]any, len(cur))
	for k, v := range cur {
		next[k] = v
	}
	var changed []string
	for k, v := range patch {
		old, had := cur[k]
		if v == nil {
			if had {
				delete(next, k)
				changed = append(changed, k)
			}
			continue
		}
		if had && jsonEqual(old, v) {
			continue
		}
		next[k] = v
		changed = append(changed, k)
	}
	slices.Sort(changed)
	return next, changed
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func describeAvailability(a connection.Availability) string {
	switch a.Scope {
	case connection.ScopeSiteCollection:
		return "siteCollection:" + a.SiteCollection
	case connection.ScopeSite:
		return "site:" + a.Site
	}
	return string(a.Scope)
}
