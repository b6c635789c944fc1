// Package kmsvault seals and opens vault secrets with KMS: a fresh data key
// per secret version (kms:GenerateDataKey, the connections and resolve
// functions), opened with kms:Decrypt (the resolve function alone), and
// AES-256-GCM bound to the secret's vault.Binding through both the
// encryption context and the associated data. KeyCache keeps recently
// opened data keys so warm resolutions skip KMS.
//
// Only the functions whose role may call KMS import it; everything else
// handles sealed secrets through package vault, which calls nothing.
package kmsvault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/vault"
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
func (s *Sealer) Seal(ctx context.Context, b vault.Binding, plaintext []byte) (vault.Sealed, error) {
	out, err := s.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(s.keyID),
		KeySpec:           kmstypes.DataKeySpecAes256,
		EncryptionContext: b.Context(),
	})
	if err != nil {
		return vault.Sealed{}, fmt.Errorf("vault.Seal %s/%s: %w", b.Tenant, b.Subject, classify(err))
	}
	defer clear(out.Plaintext)
	gcm, err := newGCM(out.Plaintext)
	if err != nil {
		return vault.Sealed{}, fmt.Errorf("vault.Seal: %w", err)
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return vault.Sealed{}, fmt.Errorf("vault.Seal nonce: %w", err)
	}
	return vault.Sealed{
		EncryptedKey: out.CiphertextBlob,
		Nonce:        nonce,
		Ciphertext:   gcm.Seal(nil, nonce, plaintext, b.AAD()),
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
func (o *Opener) Open(ctx context.Context, b vault.Binding, s vault.Sealed) ([]byte, error) {
	if s.IsZero() || len(s.Nonce) == 0 {
		return nil, fmt.Errorf("vault.Open %s/%s: %w", b.Tenant, b.Subject, vault.ErrUnreadable)
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
		return nil, fmt.Errorf("vault.Open %s/%s: bad nonce: %w", b.Tenant, b.Subject, vault.ErrUnreadable)
	}
	pt, err := gcm.Open(nil, s.Nonce, s.Ciphertext, b.AAD())
	if err != nil {
		return nil, fmt.Errorf("vault.Open %s/%s: %w", b.Tenant, b.Subject, vault.ErrUnreadable)
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
		return apperr.Wrap(apperr.Unavailable, vault.ErrKeyUnavailable.Code, vault.ErrKeyUnavailable.Message, err)
	}
	switch api.ErrorCode() {
	case "InvalidCiphertextException", "IncorrectKeyException":
		return &apperr.Error{Kind: vault.ErrUnreadable.Kind, Code: vault.ErrUnreadable.Code, Message: vault.ErrUnreadable.Message, Err: err}
	case "ThrottlingException", "LimitExceededException":
		return &apperr.Error{Kind: vault.ErrThrottled.Kind, Code: vault.ErrThrottled.Code, Message: vault.ErrThrottled.Message, Err: err}
	}
	return &apperr.Error{Kind: vault.ErrKeyUnavailable.Kind, Code: vault.ErrKeyUnavailable.Code, Message: vault.ErrKeyUnavailable.Message, Err: err}
}
