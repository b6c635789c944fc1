package kmsvault

import (
	"crypto/cipher"
	"sync"
	"time"

	"github.com/connmgr/connmgr/shared/vault"
)

// KeyCache keeps recently decrypted data keys (as ready AEADs) so warm
// resolutions skip KMS. It is bounded by entries, age and uses, keyed by the
// exact encrypted data key together with the tenant and subject it is bound
// to, so an entry can never serve another tenant or item.
type KeyCache struct {
	mu      sync.Mutex
	now     func() time.Time
	max     int
	maxAge  time.Duration
	maxUses int
	entries map[cacheKey]*cacheEntry
}

type cacheKey struct {
	tenant, subject, encryptedKey string
}

type cacheEntry struct {
	aead    cipher.AEAD
	created time.Time
	uses    int
}

// Cache limits: at most 5 minutes old, as the issue demands.
const (
	DefaultCacheEntries = 1000
	DefaultCacheMaxAge  = 5 * time.Minute
	DefaultCacheMaxUses = 10000
)

// NewKeyCache returns a cache; zero limits take the defaults. now is the clock.
func NewKeyCache(maxEntries int, maxAge time.Duration, maxUses int, now func() time.Time) *KeyCache {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	if maxAge <= 0 || maxAge > DefaultCacheMaxAge {
		maxAge = DefaultCacheMaxAge
	}
	if maxUses <= 0 {
		maxUses = DefaultCacheMaxUses
	}
	if now == nil {
		now = time.Now
	}
	return &KeyCache{now: now, max: maxEntries, maxAge: maxAge, maxUses: maxUses, entries: map[cacheKey]*cacheEntry{}}
}

func (c *KeyCache) get(b vault.Binding, encryptedKey []byte) cipher.AEAD {
	k := cacheKey{b.Tenant, b.Subject, string(encryptedKey)}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return nil
	}
	if c.now().Sub(e.created) >= c.maxAge || e.uses >= c.maxUses {
		delete(c.entries, k)
		return nil
	}
	e.uses++
	return e.aead
}

func (c *KeyCache) put(b vault.Binding, encryptedKey []byte, aead cipher.AEAD) {
	k := cacheKey{b.Tenant, b.Subject, string(encryptedKey)}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.entries) >= c.max {
		// Drop expired entries first, then the oldest one.
		var oldest cacheKey
		var oldestAt time.Time
		for key, e := range c.entries {
			if now.Sub(e.created) >= c.maxAge {
				delete(c.entries, key)
				continue
			}
			if oldestAt.IsZero() || e.created.Before(oldestAt) {
				oldest, oldestAt = key, e.created
			}
		}
		if len(c.entries) >= c.max {
			delete(c.entries, oldest)
		}
	}
	c.entries[k] = &cacheEntry{aead: aead, created: now, uses: 1}
}

// Len reports how many keys are cached.
func (c *KeyCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
