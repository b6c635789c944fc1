package connection

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
)

// The rules on settings that a type's JSON Schema does not state, by the
// schema a setting is declared with:
//
//   - format "uri" (baseUrl, siteUrl, instanceUrl, testUrl, ...): an
//     absolute http(s) URL with a host, no user info and no fragment;
//     https unless the deployment's policy allows http;
//   - format "date-time" (passwordExpiresAt, ...): ValidTimestamp;
//   - pathSchema (testPath): no dot segment (HasDotSegment);
//   - a type's SharePointSiteSetting (siteUrl): an https URL on
//     <name>.sharepoint.com, even where the policy allows http.

// SettingsPolicy is what a deployment allows in settings beyond the rules
// every deployment applies. The zero value is the strictest.
type SettingsPolicy struct {
	// AllowHTTP admits http:// URLs: deployments whose target networks
	// include loopback or private addresses (make dev, tests), where
	// targets listen on plain HTTP. Public deployments require https.
	AllowHTTP bool
}

// CheckSettings checks settings against the type's schema, then against
// the rules above under policy p. Errors name the setting
// (settings.baseUrl) and never repeat its value.
func (t *Type) CheckSettings(settings map[string]any, p SettingsPolicy) error {
	if err := validate(t.settings, "settings", settings, false); err != nil {
		return err
	}
	kinds := settingKindsOf(t)
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		v, ok := settings[name].(string)
		if !ok {
			continue // the schema has checked the type
		}
		field := "settings." + name
		var err error
		switch kinds[name] {
		case kindURL:
			err = checkURL(field, v, p)
			if err == nil && name == t.SharePointSiteSetting {
				err = checkSharePointSite(field, v)
			}
		case kindTimestamp:
			_, err = ValidTimestamp(field, v)
		case kindPath:
			if HasDotSegment(v) {
				err = apperr.InvalidField(field, "invalid_path", "%s may not hold a '.' or '..' segment, raw or percent-encoded", field)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkURL(field, raw string, p SettingsPolicy) error {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Hostname() == "" {
		return apperr.InvalidField(field, "invalid_url", "%s must be an absolute http(s) URL with a host", field)
	}
	switch scheme := strings.ToLower(u.Scheme); {
	case scheme != "https" && scheme != "http":
		return apperr.InvalidField(field, "invalid_url", "%s must be an absolute http(s) URL with a host", field)
	case u.User != nil:
		return apperr.InvalidField(field, "invalid_url", "%s may not hold user info: credentials go in credentials", field)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return apperr.InvalidField(field, "invalid_url", "%s may not hold a fragment", field)
	case scheme == "http" && !p.AllowHTTP:
		return apperr.InvalidField(field, "https_required", "%s must be an https URL", field)
	}
	return nil
}

// The range of timestamps a request may set, inclusive: the zero time,
// the Unix epoch and other placeholders never pass for a real date, and
// every accepted one formats back as RFC 3339.
var (
	MinTimestamp = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTimestamp = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// ValidTimestamp parses a timestamp a request sets (a setting, a
// registration's clientSecretExpiresAt): RFC 3339 with a zone, between
// MinTimestamp and MaxTimestamp as an instant. field names it in errors.
func ValidTimestamp(field, raw string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, raw)
	if err != nil || len(raw) > 64 {
		return time.Time{}, apperr.InvalidField(field, "invalid_format", "%s must be an RFC 3339 date-time, e.g. 2027-03-01T00:00:00Z", field)
	}
	if t.Before(MinTimestamp) || t.After(MaxTimestamp) {
		return time.Time{}, apperr.InvalidField(field, "out_of_range", "%s must be between 2000-01-01T00:00:00Z and 9999-12-31T23:59:59Z", field)
	}
	return t.UTC(), nil
}

// HasDotSegment reports whether a path on a connection's host has a "."
// or ".." segment, raw or with its dots percent-encoded (%2e, %2E, mixed):
// joined to the base URL and resolved by a server, either would leave the
// path the connection names. Every request path a caller gives (a run
// step's path, testPath) is refused when it has one.
func HasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if len(seg) > len("%2e%2e") {
			continue
		}
		if d := dotDecoder.Replace(seg); d == "." || d == ".." {
			return true
		}
	}
	return false
}

var dotDecoder = strings.NewReplacer("%2e", ".", "%2E", ".")

type settingKind int

const (
	kindOther settingKind = iota
	kindURL
	kindTimestamp
	kindPath
)

var (
	settingKindsOnce sync.Once
	settingKinds     map[*Type]map[string]settingKind
)

// settingKindsOf classifies t's settings by the schema each is declared
// with (see the rules above).
func settingKindsOf(t *Type) map[string]settingKind {
	settingKindsOnce.Do(func() {
		settingKinds = map[*Type]map[string]settingKind{}
		for _, typ := range Types() {
			settingKinds[typ] = classifySettings(typ.Settings)
		}
	})
	if k, ok := settingKinds[t]; ok {
		return k
	}
	return classifySettings(t.Settings) // a type outside the catalogue (tests)
}

func classifySettings(schema json.RawMessage) map[string]settingKind {
	var decl struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	out := map[string]settingKind{}
	if json.Unmarshal(schema, &decl) != nil {
		return out
	}
	for name, raw := range decl.Properties {
		var prop struct {
			Format string `json:"format"`
		}
		_ = json.Unmarshal(raw, &prop)
		switch {
		case prop.Format == "uri":
			out[name] = kindURL
		case prop.Format == "date-time":
			out[name] = kindTimestamp
		case string(raw) == pathSchema:
			out[name] = kindPath
		}
	}
	return out
}
