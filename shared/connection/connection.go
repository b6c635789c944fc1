package connection

import (
	"slices"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/identity"
)

// Kind says whether a connection is shared by availability or personal to its creator.
type Kind string

const (
	Shared   Kind = "shared"
	Personal Kind = "personal"
)

// Status is where a connection stands for the workflows that use it.
type Status string

const (
	StatusActive               Status = "active"
	StatusPendingAuthorization Status = "pending_authorization"
	StatusExpiring             Status = "expiring"
	StatusExpired              Status = "expired"
	StatusError                Status = "error"
)

// Statuses lists every status, for validating filters.
var Statuses = []Status{StatusActive, StatusPendingAuthorization, StatusExpiring, StatusExpired, StatusError}

// Scope is the breadth of a shared connection's availability.
type Scope string

const (
	ScopeTenant         Scope = "tenant"
	ScopeSiteCollection Scope = "siteCollection"
	ScopeSite           Scope = "site"
	ScopePersonal       Scope = "personal" // personal connections only; never chosen by a caller
)

// Availability says where a shared connection may be seen and used.
type Availability struct {
	Scope          Scope  `json:"scope"`
	SiteCollection string `json:"siteCollection,omitempty"`
	Site           string `json:"site,omitempty"`
}

// Limits on what a connection may hold.
const (
	MaxNameLength = 128
	MaxOwners     = 20
	MaxUserIDLen  = identity.MaxUserLen
)

// Connection is a stored connection without its secret values.
type Connection struct {
	Tenant       string
	ID           string
	Type         string
	Name         string
	Kind         Kind
	Availability Availability
	Owners       []string
	CreatedBy    string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Version      int64
	Status       Status
	// StatusReason is a stable code explaining a non-active status (for
	// example the provider's OAuth error code); never a secret.
	StatusReason string
	Settings     map[string]any
	// SecretFields names the credential fields that hold a value.
	SecretFields []string
	// SecretVersion counts credential changes; it binds the sealed secret.
	SecretVersion int64
	// TokenExpiresAt is when the stored OAuth access token expires (zero:
	// no token, or not an OAuth connection). Not a secret: the resolver and
	// the expiry check read it without decrypting.
	TokenExpiresAt time.Time
	// RefreshTokenExpiresAt is when the stored OAuth refresh token expires,
	// when the provider said so (refresh_token_expires_in; zero: it did
	// not). Not a secret either: the expiry check files and moves the
	// connection by it.
	RefreshTokenExpiresAt time.Time
	// TokenEndpoint is the origin of the token endpoint the stored OAuth
	// tokens came from (empty: none stored). The refresh token goes only
	// there: it is one of the secret's destinations.
	TokenEndpoint string
	// Disabled connections are kept, visible and manageable, but no
	// workflow run or test may use them until they are enabled again.
	Disabled bool
	// LastUsedAt is when a workflow run last resolved the connection, to
	// within the resolver's sampling interval (zero: never recorded).
	LastUsedAt time.Time
}

// IsOwner reports whether user is one of the connection's owners.
func (c *Connection) IsOwner(user string) bool { return slices.Contains(c.Owners, user) }

// Normalize validates an availability chosen by a caller for a shared
// connection and returns it with canonical paths. field names the request
// field for errors.
func (a Availability) Normalize(field string) (Availability, error) {
	switch a.Scope {
	case ScopeTenant:
		if a.SiteCollection != "" || a.Site != "" {
			return Availability{}, apperr.InvalidField(field, "invalid_availability", "tenant availability takes no siteCollection or site")
		}
		return Availability{Scope: ScopeTenant}, nil
	case ScopeSiteCollection:
		if a.Site != "" {
			return Availability{}, apperr.InvalidField(field+".site", "invalid_availability", "siteCollection availability takes no site")
		}
		p, err := identity.CanonicalPath(a.SiteCollection)
		if err != nil {
			return Availability{}, apperr.InvalidField(field+".siteCollection", "invalid_availability", "siteCollection must be a path such as /sites/hr")
		}
		return Availability{Scope: ScopeSiteCollection, SiteCollection: p}, nil
	case ScopeSite:
		if a.SiteCollection != "" {
			return Availability{}, apperr.InvalidField(field+".siteCollection", "invalid_availability", "site availability takes no siteCollection")
		}
		p, err := identity.CanonicalPath(a.Site)
		if err != nil {
			return Availability{}, apperr.InvalidField(field+".site", "invalid_availability", "site must be a path such as /sites/hr/payroll")
		}
		return Availability{Scope: ScopeSite, Site: p}, nil
	case "":
		return Availability{}, apperr.InvalidField(field+".scope", "required", "scope is required")
	default:
		return Availability{}, apperr.InvalidField(field+".scope", "invalid_availability", "scope must be tenant, siteCollection or site")
	}
}

// Covers reports whether a shared availability includes site (canonical).
func (a Availability) Covers(site string) bool {
	switch a.Scope {
	case ScopeTenant:
		return true
	case ScopeSiteCollection:
		return identity.InCollection(site, a.SiteCollection)
	case ScopeSite:
		return site == a.Site
	}
	return false
}

// ValidateOwners checks an owners list and returns it without duplicates.
func ValidateOwners(owners []string) ([]string, error) {
	if len(owners) == 0 {
		return nil, apperr.InvalidField("owners", "owner_required", "a connection keeps at least one owner")
	}
	var out []string
	for i, o := range owners {
		if o == "" || len(o) > MaxUserIDLen || !validID(o) {
			return nil, apperr.InvalidField("owners", "invalid_owner", "owner %d is not a valid user id", i)
		}
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	if len(out) > MaxOwners {
		return nil, apperr.InvalidField("owners", "too_many_owners", "a connection has at most %d owners", MaxOwners)
	}
	return out, nil
}

// validID rejects characters that have meaning in storage keys or are invisible.
func validID(s string) bool {
	for _, r := range s {
		if r == '#' || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
