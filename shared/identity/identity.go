// Package identity turns the claims that API Gateway's JWT authorizer hands a
// Lambda into the Caller every permission rule is written against.
//
// It trusts the claims: signature, issuer, audience and expiry are checked by
// the authorizer (or by the local gateway in development), never here.
package identity

import (
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/connmgr/connmgr/shared/apperr"
)

// Claim names in the identity token.
const (
	ClaimSubject         = "sub"
	ClaimTenant          = "tid"
	ClaimRoles           = "roles"
	ClaimSiteCollections = "sca"
	ClaimOwnedSites      = "owns"
	ClaimSites           = "sites"

	RoleTenantAdmin = "tenant_admin"
)

// Caller is an authenticated user of one tenant and what they administer.
// Site paths are canonical (see CanonicalPath).
type Caller struct {
	Tenant          string
	User            string
	TenantAdmin     bool
	SiteCollections []string // site collections the caller administers
	OwnedSites      []string // sites where the caller has Full Control
	Sites           []string // sites the caller can access
}

// Bounds on the identity claims that key stored items: with the fixed key
// prefixes and a canonical site path (at most 1,024 bytes) every key stays
// far below DynamoDB's 2,048-byte partition key limit.
const (
	MaxTenantLen = 128
	MaxUserLen   = 256
)

// FromClaims builds a Caller from authorizer claims in API Gateway's string
// form. A missing subject or tenant is Unauthenticated.
func FromClaims(claims map[string]string) (Caller, error) {
	c := Caller{Tenant: claims[ClaimTenant], User: claims[ClaimSubject]}
	if c.Tenant == "" || c.User == "" {
		return Caller{}, apperr.E(apperr.Unauthenticated, "unauthenticated", "the token must carry sub and tid claims")
	}
	if strings.ContainsAny(c.Tenant, "#\x00") || strings.ContainsAny(c.User, "#\x00") ||
		len(c.Tenant) > MaxTenantLen || len(c.User) > MaxUserLen {
		// Both become parts of DynamoDB keys (2,048 bytes at most for a
		// partition key): bounded here, before any request reaches the table.
		return Caller{}, apperr.E(apperr.Unauthenticated, "unauthenticated", "the token's sub or tid claim is malformed or too long")
	}
	c.TenantAdmin = slices.Contains(ParseList(claims[ClaimRoles]), RoleTenantAdmin)
	var err error
	if c.SiteCollections, err = canonicalList(claims[ClaimSiteCollections]); err != nil {
		return Caller{}, err
	}
	if c.OwnedSites, err = canonicalList(claims[ClaimOwnedSites]); err != nil {
		return Caller{}, err
	}
	if c.Sites, err = canonicalList(claims[ClaimSites]); err != nil {
		return Caller{}, err
	}
	return c, nil
}

func canonicalList(raw string) ([]string, error) {
	var out []string
	for _, p := range ParseList(raw) {
		cp, err := CanonicalPath(p)
		if err != nil {
			return nil, apperr.Wrap(apperr.Unauthenticated, "unauthenticated", "the token carries a malformed site path", err)
		}
		if !slices.Contains(out, cp) {
			out = append(out, cp)
		}
	}
	return out, nil
}

// ParseList reads a claim that may hold an array. API Gateway's HTTP API JWT
// authorizer flattens an array claim to "[a b c]": one bracketed,
// space-separated string. A claim without brackets is a single value.
func ParseList(raw string) []string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil
	}
	if strings.HasPrefix(raw, "[") && strings.HasSuffix(raw, "]") {
		// API Gateway separates with ASCII spaces only; other Unicode
		// spaces belong to the values.
		var out []string
		for _, v := range strings.Split(raw[1:len(raw)-1], " ") {
			if v != "" {
				out = append(out, v)
			}
		}
		return out
	}
	return []string{raw}
}

// FormatList is ParseList's inverse: the form API Gateway gives an array claim.
func FormatList(values []string) string {
	return "[" + strings.Join(values, " ") + "]"
}

// CanonicalPath returns the one spelling of a site or site collection path used
// for every comparison: percent-encoded segments, lower case (SharePoint URLs
// are case-insensitive), no trailing slash. "/sites/My%20Site/" and
// "/sites/my site" are the same path.
func CanonicalPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || p == "/" {
		return "", apperr.E(apperr.Invalid, "invalid_path", "a site path must start with / and name at least one segment")
	}
	if len(p) > maxPath {
		return "", apperr.E(apperr.Invalid, "invalid_path", "a site path is at most 1024 characters")
	}
	segs := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
	for i, s := range segs {
		dec, err := url.PathUnescape(s)
		if err != nil {
			return "", apperr.Wrap(apperr.Invalid, "invalid_path", "a site path has a malformed percent-encoding", err)
		}
		if dec == "" || dec == "." || dec == ".." || strings.ContainsAny(dec, "#\x00") {
			return "", apperr.E(apperr.Invalid, "invalid_path", "a site path has an empty, '.' or '..' segment or a reserved character")
		}
		segs[i] = strings.ToLower(url.PathEscape(dec))
	}
	out := "/" + strings.Join(segs, "/")
	// The bound is on the canonical form, so a canonical path always
	// canonicalizes to itself.
	if len(out) > maxPath {
		return "", apperr.E(apperr.Invalid, "invalid_path", "a site path is at most 1024 characters")
	}
	return out, nil
}

// maxPath bounds a canonical site path.
const maxPath = 1024

// InCollection reports whether site equals collection or lies inside it.
// Both must be canonical.
func InCollection(site, collection string) bool {
	return site == collection || strings.HasPrefix(site, collection+"/")
}

// CollectionsOf lists every path that could be a site collection containing
// site: site itself and each of its ancestors ("/sites/hr/payroll" →
// "/sites/hr/payroll", "/sites/hr", "/sites").
func CollectionsOf(site string) []string {
	var out []string
	for p := site; p != "/" && p != "."; p = path.Dir(p) {
		out = append(out, p)
	}
	return out
}

// IsSiteCollectionAdmin reports whether the caller administers any collection.
func (c Caller) IsSiteCollectionAdmin() bool { return len(c.SiteCollections) > 0 }

// SeesAll reports whether the caller may view and manage every connection of
// the tenant: tenant administrators and site collection administrators.
func (c Caller) SeesAll() bool { return c.TenantAdmin || c.IsSiteCollectionAdmin() }

// AdministersCollection reports whether collection is one the caller administers.
func (c Caller) AdministersCollection(collection string) bool {
	return slices.Contains(c.SiteCollections, collection)
}

// AdministersSite reports whether site lies in a collection the caller administers.
func (c Caller) AdministersSite(site string) bool {
	return slices.ContainsFunc(c.SiteCollections, func(col string) bool { return InCollection(site, col) })
}

// OwnsSite reports whether the caller has Full Control of site.
func (c Caller) OwnsSite(site string) bool { return slices.Contains(c.OwnedSites, site) }

// AccessibleSites is every site the caller can reach: those listed as
// accessible plus those they own.
func (c Caller) AccessibleSites() []string {
	out := slices.Clone(c.Sites)
	for _, s := range c.OwnedSites {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// CanAccessSite reports whether the caller can reach site, including sites in
// collections they administer.
func (c Caller) CanAccessSite(site string) bool {
	return c.TenantAdmin || slices.Contains(c.Sites, site) || c.OwnsSite(site) || c.AdministersSite(site)
}
