// Package oauth is the OAuth 2 side of the connection manager: the provider
// configuration of a connection type for one tenant (the type's defaults
// overridden by the tenant's client registration), the authorization code
// flow with PKCE (S256) and a single-use state, the client credentials
// grant, token refresh, and the mapping of provider errors to typed errors.
//
// Who calls what:
//
//   - Registry: the tenant administrator's OAuth client registration
//     endpoints (seals the client secret, or a certificate and its private
//     key, and never returns them; names the directory tenant of the
//     Microsoft identity platform types).
//   - Authorizer.Begin / BeginFor: POST /connections/{id}/authorize and the
//     creation of an OAuth connection; returns the authorize URL. Needs
//     kms:GenerateDataKey only (it seals the PKCE verifier).
//   - Callback.Complete: on behalf of GET /oauth/callback. Consumes the
//     state, exchanges the code, stores the sealed tokens with an audit
//     entry. It opens the client secret and the PKCE verifier, so it runs
//     where kms:Decrypt is allowed: in functions/resolve (resolver.Handler,
//     op completeAuthorization), which the public callback route invokes;
//     the internet-facing function itself decrypts nothing.
//   - Provider.Refresh / ClientCredentials: the resolver, under its refresh
//     lease. ClientCredentials authenticates with the client secret or, for
//     a certificate type (sharepoint-online-app), with a fresh RFC 7523
//     client assertion signed by the certificate's private key.
//   - NewHTTPClient: the only client that should talk to token endpoints:
//     a timeout, no redirects, public addresses only (checked after DNS).
//
// What it must never do: put a token, code, verifier, client secret, private
// key or client assertion in an error, a log line or any JSON but the
// sealed plaintext. Provider error descriptions and bodies are dropped
// (providers echo request values in them); only the RFC 6749 error code
// and the HTTP status are kept. Types that hold secrets (TokenSet,
// Provider, the client certificate) redact themselves in fmt, slog and
// encoding/json.
package oauth
