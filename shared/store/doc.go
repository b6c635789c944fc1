// Package store is the DynamoDB repository: one table, every item addressed
// by a tenant-prefixed key (the OAuth state excepted, see below), every
// change a conditional write.
//
// # Key design
//
// Table keys pk (HASH), sk (RANGE); two KEYS_ONLY global secondary indexes,
// gsi1 (gsi1pk, gsi1sk) and gsi2 (gsi2pk, gsi2sk); TTL attribute expiresAt.
// Keys never contain caller input other than ids and canonical site paths,
// and ids and tenants may not contain '#'.
//
//	item             pk                          sk             gsi1pk / gsi1sk                  gsi2pk / gsi2sk
//	connection       T#<t>#C#<id>                CONN           T#<t>#A#TENANT / <id>            T#<t>#CONNS / <id>
//	                                                            T#<t>#A#SC#<collection> / <id>
//	                                                            T#<t>#A#SITE#<site> / <id>
//	                                                            (none for personal connections)
//	owner edge       T#<t>#C#<id>                OWNER#<user>   T#<t>#A#OWNER#<user> / <id>
//	audit entry      T#<t>#C#<id>                AUDIT#<ulid>
//	idempotency key  T#<t>#IDEM#<user>#<key>     IDEM                                            (expiresAt: 24 h)
//	refresh lease    T#<t>#C#<id>                LEASE#REFRESH                                   (expiresAt: lease end + 1 h)
//	OAuth client     T#<t>#OAUTHCLIENT#<type>    CLIENT
//	OAuth state      OAUTHSTATE#<sha256(state)>  STATE                                           (expiresAt: 10 min)
//
// The OAuth state is the one item without a tenant prefix: the callback
// that consumes it is unauthenticated and learns the tenant from the item.
// Its key is the base64url SHA-256 of the state, so the table never holds a
// usable state; the PKCE verifier on it is sealed with the vault (subject
// oauth-state/<key>), and a client registration's secret likewise (subject
// oauth-client/<type>).
//
// Connection attributes written outside whole-item updates (UpdateItem SET,
// never REMOVE, never an index attribute): the sealed token set with
// secretVersion, secretFields, tokenExpiresAt (epoch seconds), status and
// statusReason (PutTokens, MarkExpired); lastUsedAt (epoch seconds,
// TouchLastUsed, which changes neither version nor updatedAt). Whole-item
// updates carry them over, read with the version they are conditioned on.
//
// # Access patterns
//
//   - Get a connection: GetItem(T#t#C#id, CONN), strongly consistent. The
//     sealed secret lives on the same item, so resolving a credential is one
//     read.
//   - List what a tenant or site collection administrator sees: Query gsi2
//     on T#t#CONNS.
//   - List what anyone else sees: Query gsi1 once per audience the caller
//     belongs to (OWNER#user, TENANT, SC#c for every collection containing one
//     of their sites, SITE#s for each of their sites), merged in id order.
//     Ids are ULIDs, so every source is already sorted; the cursor is the
//     last id returned. Each page is read back with one consistent
//     BatchGetItem and checked against the permission rules again.
//   - Audit of a connection: Query pk = T#t#C#id, sk begins_with AUDIT#,
//     newest first.
//   - Idempotent create: the idempotency item is written in the same
//     transaction as the connection, its owner edges and its audit entry,
//     conditioned on not existing (or having expired).
//   - OAuth registration of a tenant and type: GetItem(T#t#OAUTHCLIENT#type,
//     CLIENT); put and delete conditioned on its version.
//   - Start an authorization: PutItem of the state, attribute_not_exists.
//     Complete it: DeleteItem conditioned on existing and expiresAtMs later
//     than now (TTL deletes lazily; the emulator never does), returning the
//     old item, so exactly one callback wins.
//   - Refresh: PutItem of the lease conditioned on attribute_not_exists or
//     leaseUntilMs <= now; release with DeleteItem conditioned on the owner.
//     New tokens: UpdateItem conditioned on the secretVersion refreshed.
//     Expiry: a transaction of the UpdateItem (conditioned on version and
//     secretVersion), a ConditionCheck that the lease is still the caller's,
//     and the audit entry.
//
// # Concurrency
//
// Every connection item carries a version. Updates rewrite the whole item
// with PutItem conditioned on the version read (never REMOVE, so an index
// attribute that must disappear does), inside a transaction with the audit
// entry and owner edge changes; a stale version cancels all of it.
//
// No code path scans the table.
package store
