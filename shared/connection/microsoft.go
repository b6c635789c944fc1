package connection

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/connmgr/connmgr/shared/apperr"
)

// SharePoint Online and the Microsoft identity platform.
//
// A SharePoint Online site lives at https://<name>.sharepoint.com/...:
// <name> is the Microsoft 365 tenant's SharePoint name (<name>-my for
// OneDrive). Tokens for it are requested with the scope
// https://<name>.sharepoint.com/.default from the tenant-specific
// authority https://login.microsoftonline.com/<directory>/oauth2/v2.0,
// <directory> being the Entra ID directory (a GUID or a verified domain).
// The directory is not derived from <name>: multi-geo satellites
// (contosoeur.sharepoint.com) and renamed tenants break that guess.

// sharePointHost matches one DNS label under sharepoint.com.
var sharePointHost = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.sharepoint\.com$`)

// checkSharePointSite accepts https://<name>.sharepoint.com[:443]/... with
// no query; CheckSettings has already checked it is a URL.
func checkSharePointSite(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, "https") || !sharePointHost.MatchString(strings.ToLower(u.Hostname())) ||
		(u.Port() != "" && u.Port() != "443") || u.RawQuery != "" || u.ForceQuery {
		return apperr.InvalidField(field, "invalid_sharepoint_site", "%s must be a SharePoint Online site URL: https://<name>.sharepoint.com/sites/<site>, without a query", field)
	}
	return nil
}

// ResourceScope is the ".default" scope of the resource the connection's
// tokens are for: the origin of the type's OAuth ResourceSetting, e.g.
// https://contoso.sharepoint.com/.default. ok is false when the type has
// no resource setting or the setting is not a URL.
func (t *Type) ResourceScope(settings map[string]any) (scope string, ok bool) {
	if t.OAuth == nil || t.OAuth.ResourceSetting == "" {
		return "", false
	}
	raw, _ := settings[t.OAuth.ResourceSetting].(string)
	base, ok := originURL(raw)
	if !ok {
		return "", false
	}
	return base + "/.default", true
}

// originURL is raw's scheme and host as a URL without path, the default
// port dropped: "https://contoso.sharepoint.com".
func originURL(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" && !(scheme == "https" && port == "443") && !(scheme == "http" && port == "80") {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// directoryTenantGUID and directoryTenantDomain are the two forms of a
// directory tenant in a Microsoft identity platform authority.
var (
	directoryTenantGUID   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	directoryTenantDomain = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
)

// CanonicalDirectoryTenant checks a directory tenant (a GUID, or a domain
// verified in the directory such as contoso.onmicrosoft.com) and returns
// it lower-cased. The multi-tenant aliases (common, organizations,
// consumers) name no directory and are refused: SharePoint needs the
// tenant-specific authority. field names it in errors.
func CanonicalDirectoryTenant(field, raw string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(raw))
	if len(v) <= 253 && (directoryTenantGUID.MatchString(v) || directoryTenantDomain.MatchString(v)) {
		return v, nil
	}
	return "", apperr.InvalidField(field, "invalid_directory_tenant", "%s must be the directory (tenant) ID, a GUID, or a domain verified in the directory such as contoso.onmicrosoft.com", field)
}
