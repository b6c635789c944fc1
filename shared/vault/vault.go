// Package vault is envelope encryption for secrets: a fresh KMS data key per
// secret version, AES-256-GCM, with the KMS encryption context and the GCM
// associated data both binding the ciphertext to its tenant, subject,
// version and destinations (the origins it may be sent to), so a ciphertext
// moved to another item, altered, or read for other hosts fails to open.
//
// Plaintext data keys live only for the duration of one Seal or Open (or, in
// the resolver, in its bounded cache) and are never logged or returned.
//
// This package is what a sealed secret is (Sealed) and what it is bound to
// (Binding), which the store, the domain and the OAuth flows handle; it
// calls no AWS service. Sealing and opening with KMS data keys is
// kmsvault, which only the functions that hold a KMS permission link.
package vault

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/connmgr/connmgr/shared/apperr"
)

// Binding is the identity a ciphertext is bound to.
type Binding struct {
	Tenant string
	// Subject is what the secret belongs to: a connection id, or for OAuth
	// client registrations "oauth-client/<type>".
	Subject string
	Version int64
	// Destinations are the origins (scheme://host:port) the secret may be
	// sent to, sorted; empty for secrets that go nowhere (a PKCE verifier).
	Destinations []string
}

// Context is the KMS encryption context: tenant, subject and the digest of
// the destinations. The version lives in the associated data, so the IAM
// condition on kms:EncryptionContextKeys stays a fixed set of keys.
func (b Binding) Context() map[string]string {
	return map[string]string{"tenant": b.Tenant, "connection": b.Subject, "destinations": b.DestinationsDigest()}
}

// DestinationsDigest is the base64url SHA-256 of the destinations, one per
// line: short enough for an encryption context whatever the hosts.
func (b Binding) DestinationsDigest() string {
	sum := sha256.Sum256([]byte(strings.Join(b.Destinations, "\n")))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// AAD is the GCM associated data of a secret bound to b: the binding and
// the version.
func (b Binding) AAD() []byte {
	return []byte("connmgr/v2\x00" + b.Tenant + "\x00" + b.Subject + "\x00" + strconv.FormatInt(b.Version, 10) + "\x00" + b.DestinationsDigest())
}

// Sealed is a secret at rest: the KMS-encrypted data key, the GCM nonce and
// the ciphertext (with its tag). It holds nothing usable without KMS.
type Sealed struct {
	EncryptedKey []byte
	Nonce        []byte
	Ciphertext   []byte
}

// IsZero reports whether nothing is sealed.
func (s Sealed) IsZero() bool { return len(s.EncryptedKey) == 0 }

// Error codes.
var (
	// ErrKeyUnavailable: KMS refused or failed (key disabled, deleted, access
	// denied, KMS down). local-kms answers AccessDenied for a disabled key
	// where KMS answers Disabled; both land here.
	ErrKeyUnavailable = apperr.E(apperr.Unavailable, "key_unavailable", "the encryption key is unavailable")
	// ErrUnreadable: the ciphertext or its binding does not verify (tampered,
	// swapped between items, or encrypted under another key).
	ErrUnreadable = apperr.E(apperr.Internal, "secret_unreadable", "the stored secret cannot be decrypted")
	// ErrThrottled: KMS throttled the request; retry later.
	ErrThrottled = apperr.E(apperr.Throttled, "kms_throttled", "the key service is throttling requests")
)
