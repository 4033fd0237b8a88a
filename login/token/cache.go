package token

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// TokenVerifier checks a compact JWS and returns its claims. Verifier,
// MultiVerifier and Cache implement it.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*Claims, error)
}

// DefaultCacheSize is the number of verified tokens a Cache keeps when
// tokens.cache_size is not set.
const DefaultCacheSize = 65536

// cacheShards spreads the entries over independently locked maps so that
// concurrent requests on different tokens rarely wait on one another.
const cacheShards = 64

// Cache remembers tokens its inner verifier accepted, so that a token seen
// before skips signature verification (an RSA-2048 check costs about 100 µs;
// a cache hit well under a microsecond).
//
// What is cached is only the outcome of the cryptographic and claim checks,
// which cannot change during a token's life: an entry ends at the token's
// exp. Everything that can change is applied by the caller on every request:
// revocation (logout, per-user cutoff) and the policy that maps roles to
// capabilities. Refusals are never cached, so a flood of invalid tokens
// cannot evict valid ones, and inserting needs a token that verified.
//
// Entries are keyed by a 128-bit keyed hash of the token (two maphash
// sums with secret per-process seeds) rather than the token itself, so the
// cache holds no bearer credentials. SHA-256 would cost more than the rest
// of the hot path on machines without SHA extensions; with secret seeds an
// attacker can neither precompute nor observe the hash, and a chance
// collision of 128 bits is out of reach.
type Cache struct {
	inner      TokenVerifier
	now        func() time.Time
	generation func() uint64
	seeds      [2]maphash.Seed
	perShard   int
	shards     [cacheShards]cacheShard

	hits, misses atomic.Uint64
}

type cacheKey struct{ a, b uint64 }

type cacheEntry struct {
	claims *Claims
	// expires is the token's exp: the entry is dead from then on.
	expires int64 // unix nanoseconds
	// generation is the key generation the token was verified under.
	generation uint64
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[cacheKey]cacheEntry
}

// CacheOptions configures NewCache.
type CacheOptions struct {
	// Size bounds the number of cached tokens; 0 means DefaultCacheSize.
	Size int
	// Generation, when set, returns a number that changes whenever a
	// verification key is withdrawn (KeyRing.Version does). An entry made
	// under another generation is verified again, so that a key removed
	// from the JWKS stops vouching for cached tokens at once.
	Generation func() uint64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewCache returns a Cache in front of inner.
func NewCache(inner TokenVerifier, opts CacheOptions) *Cache {
	size := opts.Size
	if size <= 0 {
		size = DefaultCacheSize
	}
	per := (size + cacheShards - 1) / cacheShards
	c := &Cache{
		inner:      inner,
		now:        opts.Now,
		generation: opts.Generation,
		seeds:      [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		perShard:   per,
	}
	if c.now == nil {
		c.now = time.Now
	}
	for i := range c.shards {
		c.shards[i].entries = make(map[cacheKey]cacheEntry)
	}
	return c
}

// Verify returns the claims of raw, from the cache when raw verified before
// and has not expired, else from the inner verifier. The returned Claims
// are shared between callers: do not modify them.
func (c *Cache) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > MaxTokenLen {
		return c.inner.Verify(ctx, raw)
	}
	key := cacheKey{maphash.String(c.seeds[0], raw), maphash.String(c.seeds[1], raw)}
	sh := &c.shards[key.a%cacheShards]
	var gen uint64
	if c.generation != nil {
		gen = c.generation()
	}
	now := c.now().UnixNano()

	sh.mu.RLock()
	e, ok := sh.entries[key]
	sh.mu.RUnlock()
	if ok && now < e.expires && e.generation == gen {
		c.hits.Add(1)
		return e.claims, nil
	}
	c.misses.Add(1)

	claims, err := c.inner.Verify(ctx, raw)
	if err != nil {
		if ok {
			sh.mu.Lock()
			delete(sh.entries, key)
			sh.mu.Unlock()
		}
		return nil, err
	}
	exp := claims.ExpiresAt.UnixNano()
	if now >= exp {
		// Accepted within the leeway after exp: valid, but not worth keeping.
		return claims, nil
	}
	sh.mu.Lock()
	if len(sh.entries) >= c.perShard {
		sh.evict(now)
	}
	sh.entries[key] = cacheEntry{claims: claims, expires: exp, generation: gen}
	sh.mu.Unlock()
	return claims, nil
}

// evict makes room in a full shard: it drops the expired entries, or when
// none has expired, one arbitrary entry (Go's map iteration order is
// randomised). Only verified tokens are inserted, each after a signature
// check that costs far more than this scan, so the scan cannot be abused.
func (sh *cacheShard) evict(now int64) {
	dropped := false
	for k, e := range sh.entries {
		if now >= e.expires {
			delete(sh.entries, k)
			dropped = true
		}
	}
	if dropped {
		return
	}
	for k := range sh.entries {
		delete(sh.entries, k)
		return
	}
}

// CacheStats are a Cache's counters since it was made.
type CacheStats struct {
	Hits, Misses uint64
	Entries      int
}

// Stats returns the hit and miss counts and the number of entries held.
func (c *Cache) Stats() CacheStats {
	s := CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load()}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		s.Entries += len(sh.entries)
		sh.mu.RUnlock()
	}
	return s
}
