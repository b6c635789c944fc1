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
//     never finds the new tokens due.
//   - A connection with a passwordExpiresAt setting: active, at the start of
//     the ExpiringWindow before it (→ expiring); expiring, at
//     passwordExpiresAt (→ expired).
//   - A suspended run: RunWarning before its termination (the Run
//     Termination Approaching event), once per suspension.
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
	// ExpiringWindow: a password expiring within it makes the connection
	// expiring (the ExpiringWindowDays template parameter).
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
}

// FactsOf reads the facts of a connection; tokensAt is the time its tokens
// were stored (kept on the item beside it).
func FactsOf(c *connection.Connection, tokensAt time.Time) Facts {
	f := Facts{Status: c.Status, HasSecret: c.SecretVersion > 0, TokenExpiresAt: c.TokenExpiresAt, TokensAt: tokensAt}
	if typ, err := connection.Lookup(c.Type, "type"); err == nil {
		f.OAuth = typ.AuthMethod.IsOAuth()
	}
	if !f.OAuth {
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
			return time.Unix(0, 0).UTC(), true
		}
		if !f.TokensAt.IsZero() {
			if floor := f.TokensAt.Add(p.MinTokenAge); due.Before(floor) {
				due = floor
			}
		}
		return due.UTC(), true
	}
	pe := f.PasswordExpiresAt
	if pe.IsZero() {
		return time.Time{}, false
	}
	if f.Status == connection.StatusActive {
		return pe.Add(-p.ExpiringWindow).UTC(), true
	}
	return pe.UTC(), true
}

// PasswordStatus is the status a password expiring at pe implies at now,
// with its reason code ("" for active).
func (p Policy) PasswordStatus(pe, now time.Time) (connection.Status, string) {
	p = p.WithDefaults()
	switch {
	case !now.Before(pe):
		return connection.StatusExpired, ReasonPasswordExpired
	case !now.Before(pe.Add(-p.ExpiringWindow)):
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
