// Package store is the DynamoDB repository: one table, every item addressed
// by a tenant-prefixed key, every change a conditional write.
//
// # Key design
//
// Table keys pk (HASH), sk (RANGE); two KEYS_ONLY global secondary indexes,
// gsi1 (gsi1pk, gsi1sk) and gsi2 (gsi2pk, gsi2sk); TTL attribute expiresAt.
// Keys never contain caller input other than ids and canonical site paths,
// and ids and tenants may not contain '#'.
//
//	item              pk                      sk             gsi1pk / gsi1sk                      gsi2pk / gsi2sk
//	connection        T#<t>#C#<id>            CONN           T#<t>#A#TENANT / <id>                T#<t>#CONNS / <id>
//	                                                         T#<t>#A#SC#<collection> / <id>
//	                                                         T#<t>#A#SITE#<site> / <id>
//	                                                         (none for personal connections)
//	owner edge        T#<t>#C#<id>            OWNER#<user>   T#<t>#A#OWNER#<user> / <id>
//	audit entry       T#<t>#C#<id>            AUDIT#<ulid>
//	idempotency key   T#<t>#IDEM#<user>#<key> IDEM                                                  (expiresAt: 24 h)
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
