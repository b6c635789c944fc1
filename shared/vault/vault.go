// Package vault is envelope encryption for secrets: a fresh KMS data key per
// secret version, AES-256-GCM, with the KMS encryption context and the GCM
// associated data both binding the ciphertext to its tenant, subject,
// version and destinations (the origins it may be sent to), so a ciphertext
// moved to another item, altered, or read for other hosts fails to open.
//
// Plaintext data keys live only for the duration of one Seal or Open (or, in
// the resolver, in its bounded cache) and are never logged or returned.
package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

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

func (b Binding) aad() []byte {
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

// DataKeyGenerator is the KMS call Seal needs (the connections function's
// role allows kms:GenerateDataKey and never kms:Decrypt).
type DataKeyGenerator interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, opts ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
}

// Decrypter is the KMS call Open needs; only the resolver's role allows it.
type Decrypter interface {
	Decrypt(ctx context.Context, in *kms.DecryptInput, opts ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// Sealer encrypts secrets under one KMS key.
type Sealer struct {
	kms   DataKeyGenerator
	keyID string
}

// NewSealer returns a Sealer using the KMS key keyID (id, ARN or alias).
func NewSealer(k DataKeyGenerator, keyID string) *Sealer { return &Sealer{kms: k, keyID: keyID} }

// Seal encrypts plaintext under a new data key bound to b.
func (s *Sealer) Seal(ctx context.Context, b Binding, plaintext []byte) (Sealed, error) {
	out, err := s.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(s.keyID),
		KeySpec:           kmstypes.DataKeySpecAes256,
		EncryptionContext: b.Context(),
	})
	if err != nil {
		return Sealed{}, fmt.Errorf("vault.Seal %s/%s: %w", b.Tenant, b.Subject, classify(err))
	}
	defer clear(out.Plaintext)
	gcm, err := newGCM(out.Plaintext)
	if err != nil {
		return Sealed{}, fmt.Errorf("vault.Seal: %w", err)
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("vault.Seal nonce: %w", err)
	}
	return Sealed{
		EncryptedKey: out.CiphertextBlob,
		Nonce:        nonce,
		Ciphertext:   gcm.Seal(nil, nonce, plaintext, b.aad()),
	}, nil
}

// Opener decrypts sealed secrets.
type Opener struct {
	kms   Decrypter
	cache *KeyCache // nil: no caching, one Decrypt per Open
}

// NewOpener returns an Opener; cache may be nil.
func NewOpener(k Decrypter, cache *KeyCache) *Opener { return &Opener{kms: k, cache: cache} }

// Open decrypts s, verifying it is bound to b.
func (o *Opener) Open(ctx context.Context, b Binding, s Sealed) ([]byte, error) {
	if s.IsZero() || len(s.Nonce) == 0 {
		return nil, fmt.Errorf("vault.Open %s/%s: %w", b.Tenant, b.Subject, ErrUnreadable)
	}
	var gcm cipher.AEAD
	if o.cache != nil {
		gcm = o.cache.get(b, s.EncryptedKey)
	}
	if gcm == nil {
		out, err := o.kms.Decrypt(ctx, &kms.DecryptInput{
			CiphertextBlob:    s.EncryptedKey,
			EncryptionContext: b.Context(),
		})
		if err != nil {
			return nil, fmt.Errorf("vault.Open %s/%s: %w", b.Tenant, b.Subject, classify(err))
		}
		gcm, err = newGCM(out.Plaintext)
		clear(out.Plaintext)
		if err != nil {
			return nil, fmt.Errorf("vault.Open: %w", err)
		}
		if o.cache != nil {
			o.cache.put(b, s.EncryptedKey, gcm)
		}
	}
	if len(s.Nonce) != gcm.NonceSize() {
		return nil, fmt.Errorf("vault.Open %s/%s: bad nonce: %w", b.Tenant, b.Subject, ErrUnreadable)
	}
	pt, err := gcm.Open(nil, s.Nonce, s.Ciphertext, b.aad())
	if err != nil {
		return nil, fmt.Errorf("vault.Open %s/%s: %w", b.Tenant, b.Subject, ErrUnreadable)
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("data key is %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// classify maps KMS failures to the vault's errors, keeping the cause.
func classify(err error) error {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return apperr.Wrap(apperr.Unavailable, ErrKeyUnavailable.Code, ErrKeyUnavailable.Message, err)
	}
	switch api.ErrorCode() {
	case "InvalidCiphertextException", "IncorrectKeyException":
		return &apperr.Error{Kind: ErrUnreadable.Kind, Code: ErrUnreadable.Code, Message: ErrUnreadable.Message, Err: err}
	case "ThrottlingException", "LimitExceededException":
		return &apperr.Error{Kind: ErrThrottled.Kind, Code: ErrThrottled.Code, Message: ErrThrottled.Message, Err: err}
	}
	return &apperr.Error{Kind: ErrKeyUnavailable.Kind, Code: ErrKeyUnavailable.Code, Message: ErrKeyUnavailable.Message, Err: err}
}
