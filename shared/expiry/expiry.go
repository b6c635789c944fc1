// Package expiry holds the rules of when a connection or a suspended run
// next needs attention, and the hour buckets the due index is keyed by. It
// is pure: no I/O, no clock of its own. The store files items under these
// rules (shared/store, index gsi3), the scheduled check (shared/expirycheck)
// acts on them, and the connections service uses the same password rule, so
// a fix made through the API and the check never disagree.
//
// What is due, and when:
//
//   - An OAuth connection (active or expiring, with tokens stored): the
//     access token RefreshAhead before it expires, or KeepAlive after the
//     tokens were obtained, whichever comes first, so idle refresh tokens
//     are used at least daily; never sooner than MinTokenAge after the
//     tokens were obtained, so a check overlapping the one that refreshed
//     never finds the new tokens due. When the provider said when the
//     refresh token expires (refresh_token_expires_in), also: active, at
//     the start of the ExpiringWindow before it (→ expiring); expiring, at
//     that expiry (→ expired); whichever of these comes first.
//   - A connection with a passwordExpiresAt setting: active, at the start of
//     the ExpiringWindow before it (→ expiring); expiring, at
//     passwordExpiresAt (→ expired).
//   - A suspended run: RunWarning before its termination (the Run
//     Termination Approaching event), once per suspension.
//   - A tenant's OAuth client registration with a clientSecretExpiresAt:
//     at the start of the ExpiringWindow before it (OAuth Client Expiring),
//     then at that date (OAuth Client Expired), each once per secret and
//     date (Notice records which was sent).
//
// Nothing else is due: expired, pending and failing connections wait for
// someone to fix them, and fixing them files them again.
package expiry

import (
	"fmt"
	"strconv"
	"time"

	"github.com/connmgr/connmgr/shared/connection"
)

// Defaults of Policy.
const (
	DefaultExpiringWindow = 7 * 24 * time.Hour
	// DefaultRefreshAhead exceeds the default schedule period (1 h), so a
	// token expiring before the next check is refreshed by this one.
	DefaultRefreshAhead = 75 * time.Minute
	DefaultKeepAlive    = 24 * time.Hour
	// DefaultMinTokenAge exceeds the check's longest run (its Lambda
	// timeout, 5 min): see Policy.MinTokenAge.
	DefaultMinTokenAge = 15 * time.Minute
	// RunWarning is how long before a suspended run terminates its owners
	// are warned.
	RunWarning = 24 * time.Hour
)

// Reason codes of the transitions the check makes (statusReason, event
// reason and audit details).
const (
	ReasonPasswordExpiring = "password_expiring"
	ReasonPasswordExpired  = "password_expired"
	// ReasonPasswordRenewed: passwordExpiresAt moved out of the window.
	ReasonPasswordRenewed = "password_expiry_extended"
	// The refresh token's own expiry (refresh_token_expires_in) entered
	// the window, or passed.
	ReasonRefreshTokenExpiring = "refresh_token_expiring"
	ReasonRefreshTokenExpired  = "refresh_token_expired"
	// ReasonRefreshed: a refresh returned a refresh token whose expiry is
	// beyond the window (Connection Recovered).
	ReasonRefreshed = "refreshed"
	// ReasonAuthorized: a new authorization stored new tokens.
	ReasonAuthorized = "authorized"
	// A client registration's clientSecretExpiresAt entered the window, or
	// passed (OAuth Client Expiring, OAuth Client Expired).
	ReasonClientSecretExpiring = "client_secret_expiring"
	ReasonClientSecretExpired  = "client_secret_expired"
)

// Audit actions of the check's transitions (the expired one is
// connection.ActionExpired, as when a provider rejects a refresh).
const (
	ActionExpiring  connection.Action = "connection.expiring"
	ActionRecovered connection.Action = "connection.recovered"
)

// SettingPasswordExpiresAt is the setting (RFC 3339) password types take.
const SettingPasswordExpiresAt = "passwordExpiresAt"

// Policy is when things fall due. The zero value is DefaultPolicy.
type Policy struct {
	// ExpiringWindow: a password or refresh token expiring within it makes
	// the connection expiring, a client secret expiring within it is
	// announced (the ExpiringWindowDays template parameter).
	ExpiringWindow time.Duration
	// RefreshAhead: an access token expiring within it is refreshed.
	RefreshAhead time.Duration
	// KeepAlive: tokens obtained this long ago are refreshed even when the
	// access token is still valid, so the provider sees the grant used.
	KeepAlive time.Duration
	// MinTokenAge: tokens younger than this are never due. A check that
	// overlaps the one that refreshed (it started before that run ended)
	// therefore never finds the new tokens within its horizon, which with
	// the resolver's secret-version condition gives one refresh per due
	// connection.
	MinTokenAge time.Duration
}

// DefaultPolicy is the policy with every default.
func DefaultPolicy() Policy { return Policy{}.WithDefaults() }

// WithDefaults fills zero fields with the defaults.
func (p Policy) WithDefaults() Policy {
	if p.ExpiringWindow <= 0 {
		p.ExpiringWindow = DefaultExpiringWindow
	}
	if p.RefreshAhead <= 0 {
		p.RefreshAhead = DefaultRefreshAhead
	}
	if p.KeepAlive <= 0 {
		p.KeepAlive = DefaultKeepAlive
	}
	if p.MinTokenAge <= 0 {
		p.MinTokenAge = DefaultMinTokenAge
	}
	return p
}

// Facts are what the due time of a connection depends on: the attributes
// of its item, so the store can compute it in every write path.
type Facts struct {
	// OAuth: the type's auth method obtains tokens from a provider.
	OAuth  bool
	Status connection.Status
	// HasSecret: credentials or tokens are stored (secretVersion > 0).
	HasSecret bool
	// PasswordExpiresAt is the passwordExpiresAt setting (zero: none).
	PasswordExpiresAt time.Time
	// TokenExpiresAt is when the access token expires (zero: unknown);
	// TokensAt when the tokens were stored.
	TokenExpiresAt, TokensAt time.Time
	// RefreshTokenExpiresAt is when the refresh token expires, as the
	// provider said (zero: it did not).
	RefreshTokenExpiresAt time.Time
}

// FactsOf reads the facts of a connection; tokensAt is the time its tokens
// were stored (kept on the item beside it).
func FactsOf(c *connection.Connection, tokensAt time.Time) Facts {
	f := Facts{Status: c.Status, HasSecret: c.SecretVersion > 0, TokenExpiresAt: c.TokenExpiresAt, TokensAt: tokensAt}
	if typ, err := connection.Lookup(c.Type, "type"); err == nil {
		f.OAuth = typ.AuthMethod.IsOAuth()
	}
	if f.OAuth {
		f.RefreshTokenExpiresAt = c.RefreshTokenExpiresAt
	} else {
		f.PasswordExpiresAt, _ = PasswordExpiresAt(c.Settings)
	}
	return f
}

// Due is when a connection with these facts next needs the check; false
// when nothing is due until someone changes it.
func (p Policy) Due(f Facts) (time.Time, bool) {
	p = p.WithDefaults()
	if f.Status != connection.StatusActive && f.Status != connection.StatusExpiring {
		return time.Time{}, false
	}
	if f.OAuth {
		if !f.HasSecret {
			return time.Time{}, false
		}
		due := p.RefreshDue(f)
		if rt, ok := p.windowDue(f.Status, f.RefreshTokenExpiresAt); ok && rt.Before(due) {
			due = rt
		}
		return due.UTC(), true
	}
	return p.windowDue(f.Status, f.PasswordExpiresAt)
}

// RefreshDue is when an OAuth connection's tokens are next due for a
// refresh: the access token RefreshAhead before it expires or KeepAlive
// after the tokens were stored, whichever comes first, not sooner than
// MinTokenAge after they were stored; the Unix epoch (now) when neither
// is known.
func (p Policy) RefreshDue(f Facts) time.Time {
	p = p.WithDefaults()
	due := time.Time{}
	if !f.TokensAt.IsZero() {
		due = f.TokensAt.Add(p.KeepAlive)
	}
	if !f.TokenExpiresAt.IsZero() {
		if refresh := f.TokenExpiresAt.Add(-p.RefreshAhead); due.IsZero() || refresh.Before(due) {
			due = refresh
		}
	}
	if due.IsZero() {
		// Tokens of unknown age and lifetime: look at them now.
		return time.Unix(0, 0).UTC()
	}
	if !f.TokensAt.IsZero() {
		if floor := f.TokensAt.Add(p.MinTokenAge); due.Before(floor) {
			due = floor
		}
	}
	return due.UTC()
}

// windowDue is when something expiring at exp is next due for a
// connection in status: active, when the window opens; expiring, at exp.
// False when exp is zero.
func (p Policy) windowDue(status connection.Status, exp time.Time) (time.Time, bool) {
	if exp.IsZero() {
		return time.Time{}, false
	}
	if status == connection.StatusActive {
		return exp.Add(-p.ExpiringWindow).UTC(), true
	}
	return exp.UTC(), true
}

// stage is where something expiring at exp stands at now: active before
// the window, expiring in it, expired from exp on.
func (p Policy) stage(exp, now time.Time) connection.Status {
	switch {
	case !now.Before(exp):
		return connection.StatusExpired
	case !now.Before(exp.Add(-p.ExpiringWindow)):
		return connection.StatusExpiring
	}
	return connection.StatusActive
}

// PasswordStatus is the status a password expiring at pe implies at now,
// with its reason code ("" for active).
func (p Policy) PasswordStatus(pe, now time.Time) (connection.Status, string) {
	switch p.WithDefaults().stage(pe, now) {
	case connection.StatusExpired:
		return connection.StatusExpired, ReasonPasswordExpired
	case connection.StatusExpiring:
		return connection.StatusExpiring, ReasonPasswordExpiring
	}
	return connection.StatusActive, ""
}

// Transition is what the check writes for a password connection in status
// cur whose password expires at pe, at now: the new status and reason, or
// false when nothing changes. Only active, expiring and password-expired
// connections move; pending and failing ones wait for a person.
func (p Policy) Transition(cur connection.Status, curReason string, pe, now time.Time) (connection.Status, string, bool) {
	switch cur {
	case connection.StatusActive, connection.StatusExpiring:
	case connection.StatusExpired:
		if curReason != ReasonPasswordExpired {
			return "", "", false
		}
	default:
		return "", "", false
	}
	if pe.IsZero() {
		if cur == connection.StatusActive {
			return "", "", false
		}
		return connection.StatusActive, ReasonPasswordRenewed, true
	}
	to, reason := p.PasswordStatus(pe, now)
	if to == cur {
		return "", "", false
	}
	if to == connection.StatusActive {
		reason = ReasonPasswordRenewed
	}
	return to, reason, true
}

// RefreshTokenStatus is the status an OAuth connection whose refresh token
// expires at rte implies at now, with its reason code ("" for active). A
// zero rte (the provider did not say) implies active.
func (p Policy) RefreshTokenStatus(rte, now time.Time) (connection.Status, string) {
	if rte.IsZero() {
		return connection.StatusActive, ""
	}
	switch p.WithDefaults().stage(rte, now) {
	case connection.StatusExpired:
		return connection.StatusExpired, ReasonRefreshTokenExpired
	case connection.StatusExpiring:
		return connection.StatusExpiring, ReasonRefreshTokenExpiring
	}
	return connection.StatusActive, ""
}

// RefreshTokenTransition is what the check writes for an OAuth connection
// in status cur whose refresh token expires at rte, at now: the new status
// and reason, or false when nothing changes. Active and expiring
// connections move, and those the check expired for their refresh token;
// pending, failing and provider-expired ones wait for a person. A move
// back to active (the stored refresh token expires later than when the
// connection was marked) has reason ReasonRefreshed.
func (p Policy) RefreshTokenTransition(cur connection.Status, curReason string, rte, now time.Time) (connection.Status, string, bool) {
	switch cur {
	case connection.StatusActive, connection.StatusExpiring:
	case connection.StatusExpired:
		if curReason != ReasonRefreshTokenExpired {
			return "", "", false
		}
	default:
		return "", "", false
	}
	to, reason := p.RefreshTokenStatus(rte, now)
	if to == cur {
		return "", "", false
	}
	if to == connection.StatusActive {
		reason = ReasonRefreshed
	}
	return to, reason, true
}

// AfterRefresh is the status a successful refresh leaves an OAuth
// connection in, read in status cur, when the stored refresh token now
// expires at rte (zero: the provider did not say). A connection expiring
// for its refresh token stays so unless the new expiry is beyond the
// window; anything else becomes active, as new tokens from the provider
// prove the grant works: recovered reports a move to active from another
// status (Connection Recovered, reason ReasonRefreshed). A refresh never
// makes a connection worse: the check does that, with its event.
func (p Policy) AfterRefresh(cur connection.Status, curReason string, rte, now time.Time) (to connection.Status, reason string, recovered bool) {
	if cur == connection.StatusExpiring && curReason == ReasonRefreshTokenExpiring {
		if st, _ := p.RefreshTokenStatus(rte, now); st != connection.StatusActive {
			return cur, curReason, false
		}
	}
	return connection.StatusActive, "", cur != connection.StatusActive
}

// Notice is what was announced of a client secret's expiry: nothing yet,
// that it is expiring (OAuth Client Expiring), or that it expired (OAuth
// Client Expired).
type Notice string

// Notices, in the order they are sent.
const (
	NoticeNone     Notice = ""
	NoticeExpiring Notice = "expiring"
	NoticeExpired  Notice = "expired"
)

func (n Notice) rank() int {
	switch n {
	case NoticeExpiring:
		return 1
	case NoticeExpired:
		return 2
	}
	return 0
}

// ClientSecretDue is when a client registration whose secret expires at
// exp, with notice sent, next needs the check: the window's start before
// any notice, exp after the expiring one; false when exp is zero or both
// were sent.
func (p Policy) ClientSecretDue(exp time.Time, sent Notice) (time.Time, bool) {
	p = p.WithDefaults()
	switch {
	case exp.IsZero() || sent == NoticeExpired:
		return time.Time{}, false
	case sent == NoticeExpiring:
		return exp.UTC(), true
	}
	return exp.Add(-p.ExpiringWindow).UTC(), true
}

// ClientSecretNotice is the notice to send at now for a client secret
// expiring at exp after sent, with its reason code; false when there is
// none. A late check past exp with nothing sent sends only the expired
// notice.
func (p Policy) ClientSecretNotice(exp time.Time, sent Notice, now time.Time) (Notice, string, bool) {
	if exp.IsZero() {
		return NoticeNone, "", false
	}
	next, reason := NoticeNone, ""
	switch p.WithDefaults().stage(exp, now) {
	case connection.StatusExpired:
		next, reason = NoticeExpired, ReasonClientSecretExpired
	case connection.StatusExpiring:
		next, reason = NoticeExpiring, ReasonClientSecretExpiring
	}
	if next.rank() <= sent.rank() {
		return NoticeNone, "", false
	}
	return next, reason, true
}

// ClientSecretCurrent reports whether a client secret expiring at exp is
// still outside the window at now (or has no expiry): a date that is past
// or inside the window described a secret that was just replaced.
func (p Policy) ClientSecretCurrent(exp, now time.Time) bool {
	return exp.IsZero() || p.WithDefaults().stage(exp, now) == connection.StatusActive
}

// Better reports whether status a is healthier than b, on the password
// scale active > expiring > expired.
func Better(a, b connection.Status) bool { return rank(a) > rank(b) }

func rank(s connection.Status) int {
	switch s {
	case connection.StatusActive:
		return 2
	case connection.StatusExpiring:
		return 1
	}
	return 0
}

// PasswordExpiresAt reads the passwordExpiresAt setting.
func PasswordExpiresAt(settings map[string]any) (time.Time, bool) {
	s, ok := settings[SettingPasswordExpiresAt].(string)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// RunDue is when a suspended run that terminates at terminatesAt is due
// for its warning.
func RunDue(terminatesAt time.Time) time.Time { return terminatesAt.Add(-RunWarning).UTC() }

// Bucket is one hour of the due index: hours since the Unix epoch, UTC.
type Bucket int64

// BucketOf is the bucket holding t.
func BucketOf(t time.Time) Bucket {
	s := t.Unix()
	b := s / 3600
	if s < 0 && s%3600 != 0 {
		b-- // floor, not truncation, before 1970
	}
	return Bucket(b)
}

// Start is the first instant of the bucket.
func (b Bucket) Start() time.Time { return time.Unix(int64(b)*3600, 0).UTC() }

// End is the first instant after the bucket.
func (b Bucket) End() time.Time { return b.Next().Start() }

// Next is the following bucket.
func (b Bucket) Next() Bucket { return b + 1 }

// bucketLayout is the bucket's text form, which sorts as the buckets do.
const bucketLayout = "2006010215"

// String is the bucket as yyyymmddhh (UTC).
func (b Bucket) String() string { return b.Start().Format(bucketLayout) }

// ParseBucket reads String's form.
func ParseBucket(s string) (Bucket, error) {
	if len(s) != len(bucketLayout) {
		return 0, fmt.Errorf("expiry: bucket %q is not yyyymmddhh", s)
	}
	if _, err := strconv.Atoi(s); err != nil {
		return 0, fmt.Errorf("expiry: bucket %q is not yyyymmddhh", s)
	}
	t, err := time.Parse(bucketLayout, s)
	if err != nil {
		return 0, fmt.Errorf("expiry: bucket %q: %w", s, err)
	}
	return BucketOf(t), nil
}

// FileAt is the bucket an item due at due is filed in when written at now:
// its own, or now's when that is later. A writer never files into a bucket
// that has closed, so a bucket the check read after it closed (and a
// settling margin) never receives another item.
func FileAt(due, now time.Time) Bucket {
	return max(BucketOf(due), BucketOf(now))
}

// dueLayout is a due time in the index's sort key: fixed width, sorting
// as the times do, to the second.
const dueLayout = "20060102T150405Z"

// DueKey is t in the sort key's form.
func DueKey(t time.Time) string { return t.UTC().Format(dueLayout) }

// ParseDueKey reads DueKey's form.
func ParseDueKey(s string) (time.Time, error) {
	t, err := time.Parse(dueLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("expiry: due time %q: %w", s, err)
	}
	return t.UTC(), nil
}
