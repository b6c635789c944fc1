// Package resolver turns a workflow step's request for a connection into the
// credential the connector needs, or a typed failure saying whether the run
// must suspend (authentication failure) or the step may retry (transient).
//
// # The hot path
//
// One strongly consistent GetItem of the connection (the sealed secret is on
// the item) and, while the data key is in the kmsvault.KeyCache, no KMS call.
// Last-used time is recorded at most once per connection per
// LastUsedInterval per instance, inside the resolution (a 250 ms budget,
// skipped on failure): Lambda freezes an instance when its handler
// returns, so nothing is left running in the background.
//
// # Refresh
//
// An OAuth access token expiring within RefreshSkew (60 s) is refreshed
// before it is handed out. Exactly one instance refreshes: it must hold the
// connection's lease (a conditional DynamoDB item with an expiry, see
// store.AcquireLease); the others poll with jittered backoff (shared/retry)
// for at most MaxWait and re-read the stored token. A holder that dies leaves a lease that simply
// expires; the next caller takes over. The holder re-reads the item after
// taking the lease (someone may have just finished), calls the provider
// with a deadline inside its lease, and stores the new tokens conditioned on
// the secret version it refreshed, so nothing it does can overwrite a newer
// token, and on the status it read. A refresh leaves a connection expiring
// for its refresh token so unless the new one expires beyond the window
// (then active, with Connection Recovered), anything else active; when the
// expiry check changed the status meanwhile, the write is decided again on
// the item, so new tokens are never lost to it. When the provider answers
// invalid_grant the item is read again: if another process stored a new
// token meanwhile, that token is used and the connection stays active; only
// when the rejected token is still the stored one is the connection marked
// expired (with the provider's error code, and only while the lease is
// still held).
//
// # What it must never do
//
// Put a secret in a log line, an error, a failure or any JSON but the
// explicit wire form (Credential.MarshalWire, Resolver.Invoke). Credential
// redacts itself in fmt, slog and encoding/json.
package resolver
