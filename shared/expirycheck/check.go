// Package expirycheck is the scheduled expiry check (functions/expiry-check):
// it reads the due index from its checkpoint up to now, refreshes OAuth
// tokens ahead of expiry and keeps idle ones alive through the resolver,
// moves connections whose password or OAuth refresh token expires from
// active to expiring to expired, tells a tenant's administrators once when
// a registered OAuth client secret enters the expiring window and once
// when it expires, warns once of each suspended run about to terminate,
// and publishes events a failed PutEvents left in the outbox.
//
// # Reads
//
// The check reads the checkpoint (one item), then one Query of the due
// index per hour bucket after it: the entries due by now and nothing else.
// A connection's transition is decided on the index entry's projection and
// written conditioned on the version and status it showed, so a due
// connection costs one item read; only a lost race costs a GetItem.
//
// # Exactly once
//
// Every effect is a conditional write that the first writer wins:
//   - a transition is conditioned on the version and status read, and
//     moves the connection to its next due time in the same transaction as
//     its audit entry and outbox event, so a second check (overlapping, or
//     retrying after a crash) either does not see the entry any more or
//     fails the condition, re-reads, and finds nothing to do;
//   - a refresh goes through the resolver's single-refresher lease with the
//     secret version the check saw: whoever holds the lease second finds a
//     newer version and stops; fresh tokens are not due for a refresh
//     before MinTokenAge, beyond the horizon of any check overlapping the
//     refresh (which may still find them due for their refresh token's
//     expiry: a transition, conditioned as above);
//   - a run's warning rewrites its due entry as warned, conditioned on the
//     entry read and not yet warned, with its event;
//   - a client secret's notice is recorded on the registration (and files
//     it at its next due moment), conditioned on the version and entry
//     read, with its event.
//
// An OAuth connection whose refresh token has passed the expiry the
// provider gave is marked expired without a refresh (the provider would
// refuse it). The others are refreshed when their tokens are due, and then
// moved by their refresh token's expiry: decided on the item after a
// refresh this check made (it may have brought a new expiry), on the
// entry otherwise.
//
// The checkpoint (the last bucket fully processed) advances only past
// buckets that closed at least Settle before the run started and whose
// every entry was handled or re-filed, so a check retried after a crash
// re-reads only unfinished buckets; failed entries are re-filed RetryAfter
// later, so one failing connection never holds the others back. The first
// run (no checkpoint yet) starts FirstLookback back; a run reads at most
// MaxBuckets hours and stops before its deadline, and the next one goes on
// from the checkpoint.
//
// # Failures
//
// One bad item never stops the check. Whatever keeps it from processing an
// entry (an index item that does not decode: ReasonUnreadableItem; a
// refresh that failed without the resolver recording a rejection:
// ReasonRefreshFailed; a read or write of the store: ReasonStoreError) is
// logged with the tenant and id, counted (Report.Failed) and re-filed
// RetryAfter later, so every run tries it again; the others are processed
// and the checkpoint advances as usual. A connection is reported as one
// Connection Check Failed event per streak of failures
// (store.RefileFailed): on the first, in the same transaction as its
// re-filing, which also marks the item with the entry it filed. The
// retries of that entry find the mark and only count; once the connection
// is handled (or rewritten) it is filed elsewhere, so a later failure
// begins a new streak and is reported again. Runs and OAuth client
// registrations that fail are logged, counted and re-filed the same way,
// without an event.
//
// # Outbox
//
// Each run first publishes what failed publications left in the outbox,
// once it has settled (Settled): a drain never races the publication that
// follows a commit, so an event reaches the bus twice only when a
// publication failed after PutEvents succeeded.
//
// # Never
//
// It never decrypts (no KMS permission): refreshes happen in the resolver.
// It never scans the table.
package expirycheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	awsevents "github.com/aws/aws-lambda-go/events"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/resolver/resolveclient"
	"github.com/connmgr/connmgr/shared/runs"
	"github.com/connmgr/connmgr/shared/store"
)

// Store is what the check needs of the store.
type Store interface {
	Checkpoint(ctx context.Context) (expiry.Bucket, bool, error)
	AdvanceCheckpoint(ctx context.Context, b expiry.Bucket) error
	EachDue(ctx context.Context, b expiry.Bucket, until time.Time, fn func([]store.DueEntry) error) error
	Get(ctx context.Context, tenant, id string) (*store.Record, error)
	DueEntryOf(r *store.Record) (store.DueEntry, bool)
	ApplyStatusChanges(ctx context.Context, chs []store.StatusChange) []error
	Refile(ctx context.Context, e store.DueEntry, at time.Time) error
	RefileFailed(ctx context.Context, e store.DueEntry, at time.Time, ev events.Event) (bool, error)
	GetRun(ctx context.Context, tenant, id string) (*runs.Run, error)
	WarnTermination(ctx context.Context, e store.DueEntry, r *runs.Run, ev events.Event) error
	NoteClientSecret(ctx context.Context, e store.DueEntry, n expiry.Notice, ev events.Event) error
}

var _ Store = (*store.Store)(nil)

// Refresher refreshes OAuth tokens: resolveclient.Client, the resolve function.
type Refresher interface {
	RefreshIfDue(ctx context.Context, tenant, id string, o resolver.RefreshOptions) (resolver.Refreshed, error)
}

var _ Refresher = (*resolveclient.Client)(nil)

// Events publishes the events a committed change wrote to the outbox.
type Events interface {
	Flush(ctx context.Context, evs []events.Event)
}

// Drainer publishes what earlier publications left in the outbox.
type Drainer interface {
	Drain(ctx context.Context, limit int) (int, error)
}

// Defaults of Config.
const (
	DefaultWorkers       = 8
	DefaultSettle        = 5 * time.Minute
	DefaultFirstLookback = 31 * 24 * time.Hour
	DefaultMaxBuckets    = 90 * 24
	DefaultRetryAfter    = time.Hour
	DefaultDrainLimit    = 100
	// deadlineMargin: a run stops starting buckets this long before its
	// context's deadline (the Lambda timeout).
	deadlineMargin = 10 * time.Second
	// Actor is the audit actor of the check's transitions.
	Actor = "system:expiry-check"
)

// Reasons of Connection Check Failed: what kept the check from processing
// a connection.
const (
	// ReasonUnreadableItem: its item in the due index does not decode.
	ReasonUnreadableItem = "unreadable_item"
	// ReasonRefreshFailed: the proactive refresh failed, and the resolver
	// did not record a rejection (that is Connection Refresh Failed).
	ReasonRefreshFailed = "refresh_failed"
	// ReasonStoreError: a read or write of the store failed.
	ReasonStoreError = "store_error"
)

// Config builds a Check. Store, Refresher and Events are required.
type Config struct {
	Store     Store
	Refresher Refresher
	Events    Events
	// Outbox, if set, is drained each run.
	Outbox Drainer
	Policy expiry.Policy
	Now    func() time.Time
	NewID  func() string
	Log    *slog.Logger
	// Workers bounds concurrent refreshes.
	Workers int
	// Settle: a bucket counts as closed this long after it ends (clock
	// skew between writers, index propagation).
	Settle time.Duration
	// FirstLookback: the first run (no checkpoint yet) starts this far back.
	FirstLookback time.Duration
	// MaxBuckets bounds the hours one run reads; a check further behind
	// catches up over several runs (Report.Behind).
	MaxBuckets int
	// RetryAfter: a failed entry is looked at again this much later.
	RetryAfter time.Duration
	// DrainLimit bounds the outbox events published per run.
	DrainLimit int
}

// Check is the scheduled expiry check. Build one per cold start.
type Check struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and returns a Check.
func New(cfg Config) (*Check, error) {
	if cfg.Store == nil || cfg.Refresher == nil || cfg.Events == nil {
		return nil, errors.New("expirycheck.New: Store, Refresher and Events are required")
	}
	cfg.Policy = cfg.Policy.WithDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		return nil, errors.New("expirycheck.New: NewID is required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.FirstLookback <= 0 {
		cfg.FirstLookback = DefaultFirstLookback
	}
	if cfg.MaxBuckets <= 0 {
		cfg.MaxBuckets = DefaultMaxBuckets
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.DrainLimit <= 0 {
		cfg.DrainLimit = DefaultDrainLimit
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Check{cfg: cfg, log: log}, nil
}

// Report is what one run did.
type Report struct {
	// From and To are the first and last buckets read (yyyymmddhh).
	From string `json:"from"`
	To   string `json:"to"`
	// Checkpoint is the last bucket fully processed after the run.
	Checkpoint string `json:"checkpoint"`
	Buckets    int    `json:"buckets"`
	// Behind: more buckets are due than one run reads; the next run
	// continues from the checkpoint.
	Behind bool `json:"behind,omitempty"`
	// Checked counts the due entries handled.
	Checked   int `json:"checked"`
	Refreshed int `json:"refreshed"`
	Expiring  int `json:"expiring"`
	Expired   int `json:"expired"`
	Recovered int `json:"recovered"`
	Warned    int `json:"warned"`
	// ClientSecretsExpiring and ClientSecretsExpired count the OAuth
	// client notices sent.
	ClientSecretsExpiring int `json:"clientSecretsExpiring"`
	ClientSecretsExpired  int `json:"clientSecretsExpired"`
	// Failed counts entries that could not be handled (re-filed for
	// later) and refreshes the provider rejected.
	Failed int `json:"failed"`
	// Reported counts the Connection Check Failed events sent: failed
	// connections whose streak of failures began in this run.
	Reported int `json:"reported"`
	// Skipped counts entries with nothing to do (another writer got
	// there first).
	Skipped int `json:"skipped"`
	// Drained counts outbox events published.
	Drained int `json:"drained"`
}

// Handle is the Lambda handler of the schedule's events.
func (c *Check) Handle(ctx context.Context, ev awsevents.EventBridgeEvent) (Report, error) {
	c.log.InfoContext(ctx, "expiry check started", slog.String("eventId", ev.ID), slog.Time("scheduledAt", ev.Time))
	return c.Run(ctx)
}

// counts is a Report under a lock.
type counts struct {
	mu sync.Mutex
	r  Report
}

func (k *counts) add(f func(r *Report)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	f(&k.r)
}

// Run checks every bucket from the checkpoint to now. Its error says the
// run could not finish (a bucket is left for the next run); the entries it
// handled stay handled.
func (c *Check) Run(ctx context.Context) (Report, error) {
	start := c.cfg.Now().UTC()
	k := &counts{}
	if c.cfg.Outbox != nil {
		n, err := c.cfg.Outbox.Drain(ctx, c.cfg.DrainLimit)
		k.r.Drained = n
		if err != nil {
			c.log.WarnContext(ctx, "outbox drain failed; the next run retries", slog.String("error", err.Error()))
		}
	}
	cp, ok, err := c.cfg.Store.Checkpoint(ctx)
	if err != nil {
		return k.r, fmt.Errorf("expirycheck: %w", err)
	}
	last := expiry.BucketOf(start)
	first := expiry.BucketOf(start.Add(-c.cfg.FirstLookback))
	if ok {
		first = cp.Next()
		k.r.Checkpoint = cp.String()
	}
	if n := int(last-first) + 1; n > c.cfg.MaxBuckets {
		last, k.r.Behind = first+expiry.Bucket(c.cfg.MaxBuckets)-1, true
	}
	k.r.From, k.r.To = first.String(), last.String()
	advancing, pending := true, expiry.Bucket(0)
	var runErr error
	for b := first; b <= last; b++ {
		if err := ctx.Err(); err != nil {
			runErr = err
			break
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < deadlineMargin {
			k.r.Behind = true // out of time: the next run goes on from the checkpoint
			break
		}
		had, err := c.bucket(ctx, b, start, k)
		k.r.Buckets++
		if err != nil {
			c.log.WarnContext(ctx, "bucket not finished; the next run reads it again", slog.String("bucket", b.String()), slog.String("error", err.Error()))
			advancing = false
			runErr = err
			continue
		}
		closed := !b.End().Add(c.cfg.Settle).After(start)
		if !advancing || !closed {
			continue
		}
		pending = b
		if had { // empty buckets cost nothing to read again: save the writes
			if err := c.cfg.Store.AdvanceCheckpoint(ctx, b); err != nil {
				advancing, runErr = false, err
				continue
			}
			k.r.Checkpoint, pending = b.String(), 0
		}
	}
	if advancing && pending != 0 {
		if err := c.cfg.Store.AdvanceCheckpoint(ctx, pending); err != nil {
			runErr = err
		} else {
			k.r.Checkpoint = pending.String()
		}
	}
	r := k.r
	level := slog.LevelInfo
	if runErr != nil {
		level = slog.LevelWarn
	}
	c.log.Log(ctx, level, "expiry check done", slog.String("from", r.From), slog.String("to", r.To), slog.String("checkpoint", r.Checkpoint),
		slog.Int("buckets", r.Buckets), slog.Int("checked", r.Checked), slog.Int("refreshed", r.Refreshed), slog.Int("expiring", r.Expiring),
		slog.Int("expired", r.Expired), slog.Int("recovered", r.Recovered), slog.Int("warned", r.Warned),
		slog.Int("clientSecretsExpiring", r.ClientSecretsExpiring), slog.Int("clientSecretsExpired", r.ClientSecretsExpired), slog.Int("failed", r.Failed),
		slog.Int("reported", r.Reported),
		slog.Int("skipped", r.Skipped), slog.Int("drained", r.Drained), slog.Bool("behind", r.Behind), slog.Duration("took", c.cfg.Now().Sub(start)))
	if runErr != nil {
		return r, fmt.Errorf("expirycheck: %w", runErr)
	}
	return r, nil
}

// bucket handles the entries of b due by until; had reports entries. An
// error means some entry was neither handled nor re-filed.
func (c *Check) bucket(ctx context.Context, b expiry.Bucket, until time.Time, k *counts) (had bool, err error) {
	seen := map[string]bool{}
	var failed error
	err = c.cfg.Store.EachDue(ctx, b, until, func(page []store.DueEntry) error {
		had = true
		var pw, oauth, runEntries, clients []store.DueEntry
		var retry []retryEntry
		for _, e := range page {
			id := string(e.Kind) + "#" + e.Tenant + "#" + e.ID
			if e.Err != nil {
				id = e.SortKey
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			k.add(func(r *Report) { r.Checked++ })
			switch {
			case e.Err != nil:
				c.failed(ctx, k, e, ReasonUnreadableItem, e.Err)
				retry = append(retry, retryEntry{e, ReasonUnreadableItem})
			case e.Kind == store.DueRun:
				runEntries = append(runEntries, e)
			case e.Kind == store.DueOAuthClient:
				clients = append(clients, e)
			case e.Facts(e.Conn.Status).OAuth:
				oauth = append(oauth, e)
			default:
				pw = append(pw, e)
			}
		}
		retry = append(retry, c.passwords(ctx, pw, until, k)...)
		retry = append(retry, c.oauth(ctx, oauth, until, k)...)
		for _, e := range runEntries {
			if reason, again := c.warn(ctx, e, until, k); again {
				retry = append(retry, retryEntry{e, reason})
			}
		}
		retry = append(retry, c.clients(ctx, clients, until, k)...)
		for _, r := range retry {
			if err := c.refile(ctx, r, until, k); err != nil {
				failed = err
			}
		}
		return nil
	})
	if err == nil {
		err = failed
	}
	return had, err
}

// retryEntry is an entry to look at again RetryAfter later: one that
// failed (reason, a Reason* code), or one with nothing to do yet (reason
// "").
type retryEntry struct {
	e      store.DueEntry
	reason string
}

// refile files an entry for the next run; a failed connection with its
// Connection Check Failed event if its failure begins a streak. An error
// leaves the entry where it was (the bucket is read again).
func (c *Check) refile(ctx context.Context, re retryEntry, now time.Time, k *counts) error {
	e, at := re.e, now.Add(c.cfg.RetryAfter)
	if e.Tenant == "" || e.ID == "" {
		// A due key that names nothing: nothing to re-file it under.
		c.log.ErrorContext(ctx, "due entry names no item; left behind", slog.String("entry", e.SortKey), slog.String("bucket", e.Bucket.String()))
		return nil
	}
	if re.reason == "" || e.Kind != store.DueConnection {
		return c.cfg.Store.Refile(ctx, e, at)
	}
	var conn *connection.Connection
	if e.Err == nil {
		conn = &e.Conn
	}
	ev := events.ForCheckFailure(e.Tenant, e.ID, conn, c.cfg.NewID(), re.reason, now, at, now)
	reported, err := c.cfg.Store.RefileFailed(ctx, e, at, ev)
	if err != nil {
		c.log.WarnContext(ctx, "failed connection not re-filed; its bucket is read again", slog.String("tenant", e.Tenant), slog.String("connection", e.ID),
			slog.String("error", err.Error()))
		return err
	}
	if reported {
		c.cfg.Events.Flush(ctx, []events.Event{ev})
		k.add(func(r *Report) { r.Reported++ })
		c.log.WarnContext(ctx, "connection check failed: reported", slog.String("tenant", e.Tenant), slog.String("connection", e.ID),
			slog.String("reason", re.reason), slog.String("eventId", ev.ID()), slog.Time("retryAt", at))
	}
	return nil
}

// passwords writes the transitions of password connections; it returns the
// entries to retry later.
func (c *Check) passwords(ctx context.Context, entries []store.DueEntry, now time.Time, k *counts) []retryEntry {
	var chs []store.StatusChange
	for _, e := range entries {
		if ch, ok := c.transition(e, now); ok {
			chs = append(chs, ch)
		} else {
			k.add(func(r *Report) { r.Skipped++ })
		}
	}
	return c.apply(ctx, chs, now, k)
}

// oauth handles OAuth connections: a refresh token past its expiry makes
// the connection expired without a refresh; the others are refreshed when
// their tokens are due, then moved by their refresh token's expiry. It
// returns the entries to retry later.
func (c *Check) oauth(ctx context.Context, entries []store.DueEntry, now time.Time, k *counts) []retryEntry {
	p := c.cfg.Policy
	var decide, refresh []store.DueEntry
	for _, e := range entries {
		if s := e.Conn.Status; s != connection.StatusActive && s != connection.StatusExpiring {
			k.add(func(r *Report) { r.Skipped++ })
			continue
		}
		switch to, _, ok := p.RefreshTokenTransition(e.Conn.Status, e.Conn.StatusReason, e.Conn.RefreshTokenExpiresAt, now); {
		case ok && to == connection.StatusExpired:
			decide = append(decide, e) // the provider would refuse the refresh
		case p.RefreshDue(e.Facts(e.Conn.Status)).After(now):
			decide = append(decide, e) // due for its refresh token's expiry only
		default:
			refresh = append(refresh, e)
		}
	}
	var retry []retryEntry
	quiet := map[string]bool{} // entries that count as skipped if nothing else happens
	for _, e := range decide {
		quiet[e.SortKey] = true
	}
	var chs []store.StatusChange
	for i, o := range c.refreshes(ctx, refresh, k) {
		e := refresh[i]
		switch {
		case o.failed:
			// A rejection the resolver recorded moved the connection on
			// (its re-filing then does nothing, and reports nothing).
			retry = append(retry, retryEntry{e, ReasonRefreshFailed})
		case o.retry:
			retry = append(retry, retryEntry{e, ""})
		}
		switch {
		case o.refreshed && !e.Conn.RefreshTokenExpiresAt.IsZero():
			// The refresh may have brought a new expiry: decide on the item.
			ch, ok, err := c.reread(ctx, e, now)
			switch {
			case err != nil:
				c.failed(ctx, k, e, ReasonStoreError, err)
				retry = append(retry, retryEntry{e, ReasonStoreError})
			case ok:
				chs = append(chs, ch)
			}
		case o.refreshed:
		default:
			decide = append(decide, e)
			quiet[e.SortKey] = !o.failed
		}
	}
	for _, e := range decide {
		if ch, ok := c.transition(e, now); ok {
			chs = append(chs, ch)
		} else if quiet[e.SortKey] {
			k.add(func(r *Report) { r.Skipped++ })
		}
	}
	return append(retry, c.apply(ctx, chs, now, k)...)
}

// apply writes status changes, deciding again on the item those whose
// connection moved on; it returns the entries to retry later.
func (c *Check) apply(ctx context.Context, chs []store.StatusChange, now time.Time, k *counts) []retryEntry {
	if len(chs) == 0 {
		return nil
	}
	var retry []retryEntry
	var done []store.StatusChange
	for i, err := range c.cfg.Store.ApplyStatusChanges(ctx, chs) {
		switch {
		case err == nil:
			done = append(done, chs[i])
		case errors.Is(err, store.ErrMovedOn) || apperr.Is(err, apperr.PreconditionFailed):
			// Another writer moved it: decide again on the item itself.
			ch, ok, rerr := c.reread(ctx, chs[i].Entry, now)
			switch {
			case rerr != nil:
				c.failed(ctx, k, chs[i].Entry, ReasonStoreError, rerr)
				retry = append(retry, retryEntry{chs[i].Entry, ReasonStoreError})
			case !ok:
				k.add(func(r *Report) { r.Skipped++ })
			default:
				if errs := c.cfg.Store.ApplyStatusChanges(ctx, []store.StatusChange{ch}); errs[0] == nil {
					done = append(done, ch)
				} else if errors.Is(errs[0], store.ErrMovedOn) {
					k.add(func(r *Report) { r.Skipped++ }) // it keeps moving: the next run sees where it lands
				} else {
					c.failed(ctx, k, ch.Entry, ReasonStoreError, errs[0])
					retry = append(retry, retryEntry{ch.Entry, ReasonStoreError})
				}
			}
		default:
			c.failed(ctx, k, chs[i].Entry, ReasonStoreError, err)
			retry = append(retry, retryEntry{chs[i].Entry, ReasonStoreError})
		}
	}
	var evs []events.Event
	for _, ch := range done {
		evs = append(evs, ch.Events...)
		k.add(func(r *Report) {
			switch ch.To {
			case connection.StatusExpiring:
				r.Expiring++
			case connection.StatusExpired:
				r.Expired++
			case connection.StatusActive:
				r.Recovered++
			}
		})
		c.log.InfoContext(ctx, "connection status changed", slog.String("tenant", ch.Entry.Tenant), slog.String("connection", ch.Entry.ID),
			slog.String("from", string(ch.Entry.Conn.Status)), slog.String("to", string(ch.To)), slog.String("reason", ch.Reason))
	}
	c.cfg.Events.Flush(ctx, evs)
	return retry
}

// reread decides a transition again on the connection as stored, if it is
// still due by now.
func (c *Check) reread(ctx context.Context, e store.DueEntry, now time.Time) (store.StatusChange, bool, error) {
	rec, err := c.cfg.Store.Get(ctx, e.Tenant, e.ID)
	if apperr.Is(err, apperr.NotFound) {
		return store.StatusChange{}, false, nil
	}
	if err != nil {
		return store.StatusChange{}, false, err
	}
	cur, ok := c.cfg.Store.DueEntryOf(rec)
	if !ok || cur.Due.After(now) || cur.Kind != store.DueConnection {
		return store.StatusChange{}, false, nil
	}
	ch, ok := c.transition(cur, now)
	return ch, ok, nil
}

// transition is the status change a connection's entry calls for at now,
// by its password's expiry or, for OAuth, its refresh token's, with its
// audit entry and event.
func (c *Check) transition(e store.DueEntry, now time.Time) (store.StatusChange, bool) {
	to, reason, ok := c.cfg.Policy.Transition(e.Conn.Status, e.Conn.StatusReason, e.PasswordExpiresAt, now)
	exp, expName := e.PasswordExpiresAt, "passwordExpiresAt"
	if e.Facts(e.Conn.Status).OAuth {
		to, reason, ok = c.cfg.Policy.RefreshTokenTransition(e.Conn.Status, e.Conn.StatusReason, e.Conn.RefreshTokenExpiresAt, now)
		exp, expName = e.Conn.RefreshTokenExpiresAt, "refreshTokenExpiresAt"
	}
	if !ok {
		return store.StatusChange{}, false
	}
	after := e.Conn
	after.Status, after.Version, after.UpdatedAt = to, e.Conn.Version+1, now
	after.StatusReason = reason
	action, detailType := expiry.ActionExpiring, events.ConnectionExpiring
	switch to {
	case connection.StatusExpired:
		action, detailType = connection.ActionExpired, events.ConnectionExpired
	case connection.StatusActive:
		action, detailType, after.StatusReason = expiry.ActionRecovered, events.ConnectionRecovered, ""
	}
	details := map[string]string{"reason": reason, "from": string(e.Conn.Status)}
	if !exp.IsZero() {
		details[expName] = exp.Format(time.RFC3339)
	}
	ev := events.ForConnection(detailType, &after, c.cfg.NewID(), "", reason, []string{"status"}, now).WithExpiresAt(exp)
	return store.StatusChange{
		Entry: e, To: to, Reason: after.StatusReason,
		Audit: connection.AuditEntry{ID: c.cfg.NewID(), At: now.UTC(), Actor: Actor, Action: action, Version: after.Version,
			Changes: []string{"status"}, Details: details},
		Events: []events.Event{ev},
	}, true
}

// refreshOutcome is what asking for one entry's refresh came to.
type refreshOutcome struct {
	// refreshed: this check's request obtained new tokens.
	refreshed bool
	// failed: the refresh failed (a rejection the resolver recorded, or a
	// transient failure).
	failed bool
	// retry: look at the entry again later.
	retry bool
}

// refreshes asks the resolver to refresh each OAuth entry's tokens, a few
// at a time; out[i] is what entries[i] came to.
func (c *Check) refreshes(ctx context.Context, entries []store.DueEntry, k *counts) []refreshOutcome {
	out := make([]refreshOutcome, len(entries))
	var wg sync.WaitGroup
	sem := make(chan struct{}, c.cfg.Workers)
	for i, e := range entries {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = c.refresh(ctx, e, k)
		}()
	}
	wg.Wait()
	return out
}

// refresh handles one OAuth entry's refresh.
func (c *Check) refresh(ctx context.Context, e store.DueEntry, k *counts) refreshOutcome {
	p := c.cfg.Policy
	res, err := c.cfg.Refresher.RefreshIfDue(ctx, e.Tenant, e.ID, resolver.RefreshOptions{
		Within: p.RefreshAhead, MaxAge: p.KeepAlive, SecretVersion: e.Conn.SecretVersion})
	if err != nil {
		f := resolver.AsFailure(err)
		k.add(func(r *Report) { r.Failed++ })
		c.log.WarnContext(ctx, "proactive refresh failed", slog.String("tenant", e.Tenant), slog.String("connection", e.ID),
			slog.String("code", string(f.Code)), slog.String("providerCode", f.ProviderCode), slog.Bool("authFailure", f.AuthFailure))
		// A rejection the resolver recorded moved the connection out of
		// the index (the re-file then finds another entry and does
		// nothing); anything else is tried again later.
		return refreshOutcome{failed: true, retry: true}
	}
	if res.Refreshed {
		k.add(func(r *Report) { r.Refreshed++ })
		c.log.InfoContext(ctx, "token refreshed ahead of expiry", slog.String("tenant", e.Tenant), slog.String("connection", e.ID),
			slog.Time("expiresAt", res.ExpiresAt))
		return refreshOutcome{refreshed: true}
	}
	// Not due by the tokens themselves, or refreshed by someone else (then
	// the item is filed elsewhere and the re-file does nothing).
	return refreshOutcome{retry: true}
}

// clients sends the notices of registered OAuth client secrets that
// entered the expiring window or expired, each once per secret and date;
// it returns the entries to retry later.
func (c *Check) clients(ctx context.Context, entries []store.DueEntry, now time.Time, k *counts) []retryEntry {
	var retry []retryEntry
	for _, e := range entries {
		cl := e.Client
		n, reason, ok := c.cfg.Policy.ClientSecretNotice(cl.SecretExpiresAt, cl.Notice, now)
		if !ok {
			k.add(func(r *Report) { r.Skipped++ })
			continue
		}
		detailType, status := events.OAuthClientExpiring, connection.StatusExpiring
		if n == expiry.NoticeExpired {
			detailType, status = events.OAuthClientExpired, connection.StatusExpired
		}
		ev := events.ForOAuthClient(detailType, e.Tenant, cl.Type, cl.ClientID, c.cfg.NewID(), string(status), reason, cl.SecretExpiresAt, now)
		err := c.cfg.Store.NoteClientSecret(ctx, e, n, ev)
		switch {
		case err == nil:
			c.cfg.Events.Flush(ctx, []events.Event{ev})
			k.add(func(r *Report) {
				if n == expiry.NoticeExpired {
					r.ClientSecretsExpired++
				} else {
					r.ClientSecretsExpiring++
				}
			})
			c.log.InfoContext(ctx, "OAuth client secret notice sent", slog.String("notice", string(n)), slog.String("tenant", e.Tenant), slog.String("type", cl.Type),
				slog.String("clientId", cl.ClientID), slog.Time("expiresAt", cl.SecretExpiresAt))
		case errors.Is(err, store.ErrMovedOn):
			// Another check sent it, or an administrator changed the
			// registration, which filed it anew.
			k.add(func(r *Report) { r.Skipped++ })
		default:
			c.failed(ctx, k, e, ReasonStoreError, err)
			retry = append(retry, retryEntry{e, ReasonStoreError})
		}
	}
	return retry
}

// warn sends a suspended run's termination warning once; it reports
// whether to look again later, and why.
func (c *Check) warn(ctx context.Context, e store.DueEntry, now time.Time, k *counts) (reason string, retry bool) {
	run, err := c.cfg.Store.GetRun(ctx, e.Tenant, e.ID)
	if apperr.Is(err, apperr.NotFound) {
		k.add(func(r *Report) { r.Skipped++ })
		return "", false
	}
	if err != nil {
		c.failed(ctx, k, e, ReasonStoreError, err)
		return ReasonStoreError, true
	}
	s := run.Suspension
	if run.Status != runs.StatusSuspended || s == nil || expiry.DueKey(expiry.RunDue(s.TerminatesAt)) != expiry.DueKey(e.Due) {
		k.add(func(r *Report) { r.Skipped++ }) // resumed, finished, or suspended again since
		return "", false
	}
	if !s.TerminatesAt.After(now) {
		k.add(func(r *Report) { r.Skipped++ }) // too late to warn: the state machine terminates it
		return "", false
	}
	ev := events.ForRun(events.RunTerminationApproaching, run, c.cfg.NewID(), "", now)
	err = c.cfg.Store.WarnTermination(ctx, e, run, ev)
	switch {
	case err == nil:
		c.cfg.Events.Flush(ctx, []events.Event{ev})
		k.add(func(r *Report) { r.Warned++ })
		c.log.InfoContext(ctx, "run termination approaching: owners warned", slog.String("tenant", e.Tenant), slog.String("run", e.ID),
			slog.String("connection", s.Connection), slog.Time("terminatesAt", s.TerminatesAt))
		return "", false
	case errors.Is(err, store.ErrAlreadyWarned) || apperr.Is(err, apperr.Conflict):
		k.add(func(r *Report) { r.Skipped++ })
		return "", false
	}
	c.failed(ctx, k, e, ReasonStoreError, err)
	return ReasonStoreError, true
}

// failed counts and logs an entry the check could not handle; the caller
// re-files it. The error names ids and attributes, never a secret (the
// due index projects none).
func (c *Check) failed(ctx context.Context, k *counts, e store.DueEntry, reason string, err error) {
	k.add(func(r *Report) { r.Failed++ })
	c.log.WarnContext(ctx, "due entry not handled; retried later", slog.String("kind", string(e.Kind)), slog.String("tenant", e.Tenant),
		slog.String("id", e.ID), slog.String("reason", reason), slog.String("entry", e.SortKey), slog.String("error", err.Error()))
}

// String renders a report for logs and tests.
func (r Report) String() string {
	return "buckets " + strconv.Itoa(r.Buckets) + " checked " + strconv.Itoa(r.Checked) + " refreshed " + strconv.Itoa(r.Refreshed) +
		" expiring " + strconv.Itoa(r.Expiring) + " expired " + strconv.Itoa(r.Expired) + " recovered " + strconv.Itoa(r.Recovered) +
		" warned " + strconv.Itoa(r.Warned) + " client secrets expiring " + strconv.Itoa(r.ClientSecretsExpiring) +
		" expired " + strconv.Itoa(r.ClientSecretsExpired) + " failed " + strconv.Itoa(r.Failed) + " reported " + strconv.Itoa(r.Reported) +
		" skipped " + strconv.Itoa(r.Skipped) +
		" drained " + strconv.Itoa(r.Drained)
}
