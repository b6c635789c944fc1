// Package store is the DynamoDB repository: one table, every item addressed
// by a tenant-prefixed key (the OAuth state excepted, see below), every
// change a conditional write.
//
// # Key design
//
// Table keys pk (HASH), sk (RANGE); two KEYS_ONLY global secondary indexes,
// gsi1 (gsi1pk, gsi1sk) and gsi2 (gsi2pk, gsi2sk), and the sparse due index
// gsi3 (gsi3pk, gsi3sk; INCLUDE DueProjection); TTL attribute expiresAt.
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
//	request counter  T#<t>#LIMIT#<class>         W#<window start, Unix s>                        (expiresAt: window end + 1 min)
//	OAuth client     T#<t>#OAUTHCLIENT#<type>    CLIENT
//	OAuth state      OAUTHSTATE#<sha256(state)>  STATE                                           (expiresAt: 10 min)
//	run              T#<t>#R#<id>                RUN                                             T#<t>#RUNS / <id>
//	run audience     T#<t>#R#<id>                EDGE#<n>       T#<t>#RA#OWNER#<user> / <id>
//	                                                            T#<t>#RA#PATH#<path> / <id>
//	suspended edge   T#<t>#R#<id>                SUSP           T#<t>#SUSP#<connection> / <id>
//	step result      T#<t>#R#<id>                OUT#<nnn>                                       latest attempt, body included
//	stop marker      T#<t>#R#<id>                STOP                                            terminated while running
//	outbox event     EVT#<event id>              OUTBOX         OUTBOX#<n> / <event id>          n = FNV-1a(event id) mod OutboxShards (16)
//	check checkpoint EXPIRYCHECK                 CHECKPOINT
//
// The due index, gsi3, holds what the scheduled expiry check must look at,
// keyed by the hour of the moment it falls due (package expiry has the
// rules):
//
//	item             gsi3pk                      gsi3sk
//	connection       DUE#<yyyymmddhh>            <yyyymmddThhmmssZ>#C#<t>#<id>    OAuth refresh or keep-alive; password or refresh token expiring or expired
//	suspended edge   DUE#<yyyymmddhh>            <yyyymmddThhmmssZ>#R#<t>#<run>   24 h before the run terminates; until warned
//	OAuth client     DUE#<yyyymmddhh>            <yyyymmddThhmmssZ>#O#<t>#<type>  client secret entering the window, then expiring; until both told
//	(nothing due)    absent, or DUE#NONE#<n>     C#<t>#<id>, R#<t>#<run>, O#<t>#<type>   never read; n = FNV-1a(gsi3sk) mod 16
//
// The bucket is the hour of the due time, or of the write when that is
// later (expiry.FileAt): no write ever lands in an hour that has closed, so
// once the check has read a closed hour (plus a settling margin for clocks
// and index propagation) it never needs to read it again. Whole-item writes
// (Create, Update, UpdateRun's edge) compute the attributes from the item
// (toItem); UpdateItem writes (PutTokens, MarkExpired, the check's
// transitions) set them. A password connection that was never due has
// none; one that was due and has nothing due any more is parked in
// DUE#NONE#<n>, by every path: UpdateItem never REMOVEs (the emulator ignores
// REMOVE), and a PutItem that drops index attributes corrupts the
// emulator's index once the item is later deleted. OAuth connections are
// filed (parked until they hold tokens) from creation: the emulator also
// corrupts its index when an UpdateItem adds index attributes to an item
// outside the index. OAuth client registrations are likewise always
// filed (parked without a clientSecretExpiresAt) by their whole-item
// write, and the check's notice moves them on by UpdateItem. Tests in
// due_test.go catch each of these. The projection (DueProjection) carries
// what the check needs to decide a transition or a notice and describe it
// in an event, so a due connection or registration costs one index read
// and no item read.
//
// The OAuth state is the one item without a tenant prefix: the callback
// that consumes it is unauthenticated and learns the tenant from the item.
// Its key is the base64url SHA-256 of the state, so the table never holds a
// usable state; the PKCE verifier on it is sealed with the vault (subject
// oauth-state/<key>), and a client registration's secret likewise (subject
// oauth-client/<type>).
//
// Connection attributes written outside whole-item updates (UpdateItem SET,
// never REMOVE, never an availability index attribute): the sealed token
// set with secretVersion, secretFields, tokenExpiresAt and tokensAt (epoch
// seconds), refreshTokenExpiresAt (epoch seconds, 0 when the provider did
// not say), status and statusReason (PutTokens, MarkExpired, the check's
// ApplyStatusChanges), always with gsi3pk and gsi3sk; lastUsedAt (epoch
// seconds, TouchLastUsed, which changes neither version nor updatedAt).
// Whole-item updates carry them over, read with the version they are
// conditioned on. passwordExpiresAt (epoch seconds) mirrors the setting for
// the due index's projection.
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
//     of their sites, SITE#s for each of their sites), all at once (up to
//     16 concurrently), merged in id order. Ids are ULIDs, so every source
//     is already sorted; the cursor is the last id returned. Each page is
//     read back with one consistent BatchGetItem and checked against the
//     permission rules again: two round trips a page, however many sites.
//     (gsi1 stays KEYS_ONLY: a listed connection shows its settings and
//     owners, too much to project, and the read back is also what makes
//     the page strongly consistent.)
//   - Audit of a connection: Query pk = T#t#C#id, sk begins_with AUDIT#,
//     newest first.
//   - Idempotent create: the idempotency item is written in the same
//     transaction as the connection, its owner edges and its audit entry,
//     conditioned on not existing (or having expired).
//   - OAuth registration of a tenant and type: GetItem(T#t#OAUTHCLIENT#type,
//     CLIENT); put and delete conditioned on its version. Its secret's
//     expiry (secretExpiresAt, epoch seconds) and what the check told of it
//     (secretNotice) file it in gsi3; the check's notice is an UpdateItem
//     conditioned on the version and entry read that bumps the version, so
//     an administrator's write based on the version before never erases it.
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
//   - Scheduled expiry check: GetItem of the checkpoint (the last hour it
//     processed completely); one Query of gsi3 per hour from the one after
//     it up to now (gsi3pk = DUE#<hour>, gsi3sk < the due key of now + 1 s),
//     so it reads the due entries and nothing else; no Scan, no item reads
//     for connections (the projection suffices). Transitions: UpdateItem
//     conditioned on version and status, with the audit entry and the
//     outbox events, up to 25 connections per transaction. A run's warning:
//     PutItem of its SUSP edge marked warned, conditioned on still carrying
//     the entry read and not being warned, with a ConditionCheck of the
//     run's version and the outbox event. A client secret's notice:
//     UpdateItem of the registration, with the outbox event. A failed item
//     is re-filed an hour later (UpdateItem conditioned on the entry); a
//     failed connection also keeps its failure streak (RefileFailed:
//     checkFailedEntry, the sort key the failure filed it under,
//     checkFailures and checkFailingSince), and the first failure of a
//     streak writes Connection Check Failed in the same transaction. An
//     index item that does not decode is handed to the check as an entry
//     with Err, never fails the read of its bucket. The checkpoint moves
//     forward only (PutItem conditioned on a smaller bucket).
//
// # Hot partitions
//
// No partition key is written by every change of the stack: a partition of
// a global secondary index takes about 1,000 writes a second. So outbox
// entries are spread over OutboxShards gsi1 partitions by a hash of the
// event id (the drain, Pending, queries each for its oldest entries, four
// at a time, merges them in id order, and also reads OUTBOX, the single
// partition of entries written before the shards); parked due entries over
// sixteen DUE#NONE#<n> partitions by a hash of their sort key (write-only:
// nothing reads them, so items parked before the shards may stay in
// DUE#NONE). The due buckets DUE#<hour> are per hour by design: an hour
// takes only what falls due in it.
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
