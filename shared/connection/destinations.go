package connection

import (
	"net/url"
	"slices"
	"strings"

	"github.com/connmgr/connmgr/shared/vault"
)

// Origin is the canonical origin of raw: lower-case scheme and host and an
// explicit port ("https://api.example.com:443"). ok is false when raw is not
// an absolute http(s) URL with a host.
func Origin(raw string) (origin string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false
	}
	return OriginOf(u)
}

// OriginOf is Origin of a parsed URL.
func OriginOf(u *url.URL) (string, bool) {
	if u == nil {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if u.Host == "" || (scheme != "http" && scheme != "https") {
		return "", false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host + ":" + port, true
}

// DestinationSettings names the type's settings that name a host (every
// setting whose schema has format "uri"): changing one of them changes
// where the connection's credentials may be sent.
func (t *Type) DestinationSettings() []string { Types(); return t.destinationSettings }

// Destinations is every origin the connection's credentials may be sent to,
// sorted: the origins of the type's fixed host and of each host-naming
// setting, and for OAuth connections the token endpoint its tokens came
// from (they are refreshed there). It is part of the secret's identity:
// each secret version is sealed to it (Binding), so a secret never opens
// for another set of hosts. A value that is not a URL stays in the set as
// it is, so a tampered setting changes the set too.
func (c *Connection) Destinations() []string {
	var out []string
	add := func(o string) {
		if o != "" && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	if t, err := Lookup(c.Type, "type"); err == nil {
		add(originOrValue(t.BaseURL))
		for _, name := range t.DestinationSettings() {
			switch v := c.Settings[name].(type) {
			case nil, string:
				add(originOrValue(v))
			default:
				add("invalid-setting:" + name)
			}
		}
	} else {
		add("invalid-type:" + c.Type)
	}
	add(originOrValue(c.TokenEndpoint))
	slices.Sort(out)
	return out
}

// RequestBaseURL is the URL the connection's requests are joined to and
// the only origin its credential is sent to: the type's fixed host, or the
// value of its base URL setting (its origin alone for BaseURLOrigin
// types). "" when the setting is missing.
func (t *Type) RequestBaseURL(settings map[string]any) string {
	if t.BaseURL != "" {
		return t.BaseURL
	}
	if t.BaseURLSetting == "" {
		return ""
	}
	s, _ := settings[t.BaseURLSetting].(string)
	if t.BaseURLOrigin {
		if o, ok := originURL(s); ok {
			return o
		}
	}
	return s
}

// Binding is the identity the connection's secret version v is sealed to:
// tenant, connection, version and destinations.
func (c *Connection) Binding(v int64) vault.Binding {
	return vault.Binding{Tenant: c.Tenant, Subject: c.ID, Version: v, Destinations: c.Destinations()}
}

// ChangedDestinations names the host-naming settings whose origin differs
// between two settings maps of a connection of type t, sorted.
func (t *Type) ChangedDestinations(before, after map[string]any) []string {
	var out []string
	for _, name := range t.DestinationSettings() {
		if originOrValue(before[name]) != originOrValue(after[name]) {
			out = append(out, name)
		}
	}
	return out
}

func originOrValue(v any) string {
	s, _ := v.(string)
	if s == "" {
		return ""
	}
	if o, ok := Origin(s); ok {
		return o
	}
	return "invalid:" + s
}
