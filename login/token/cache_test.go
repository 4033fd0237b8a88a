package token

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingVerifier accepts tokens listed in valid and counts its calls.
type countingVerifier struct {
	mu    sync.Mutex
	valid map[string]*Claims
	calls atomic.Int64
}

func (v *countingVerifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	v.calls.Add(1)
	v.mu.Lock()
	defer v.mu.Unlock()
	if c, ok := v.valid[raw]; ok {
		return c, nil
	}
	return nil, &VerifyError{Reason: ReasonSignature}
}

func (v *countingVerifier) set(raw string, c *Claims) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if c == nil {
		delete(v.valid, raw)
		return
	}
	v.valid[raw] = c
}

func TestCache(t *testing.T) {
	clk := newClock(t0)
	inner := &countingVerifier{valid: map[string]*Claims{}}
	var gen atomic.Uint64
	c := NewCache(inner, CacheOptions{Now: clk.Now, Generation: gen.Load})
	ctx := context.Background()
	claims := &Claims{Subject: "42", ExpiresAt: t0.Add(time.Hour)}
	inner.set("good", claims)

	verify := func(raw string, wantCalls int64, wantOK bool) {
		t.Helper()
		got, err := c.Verify(ctx, raw)
		if wantOK && (err != nil || got != claims) {
			t.Fatalf("Verify(%s) = %v, %v; want the claims", raw, got, err)
		}
		if !wantOK && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Verify(%s) err = %v; want ErrInvalid", raw, err)
		}
		if n := inner.calls.Load(); n != wantCalls {
			t.Fatalf("after Verify(%s): inner called %d times, want %d", raw, n, wantCalls)
		}
	}

	verify("good", 1, true)
	verify("good", 1, true) // cached: the inner verifier is not asked again
	verify("bad", 2, false)
	verify("bad", 3, false) // refusals are never cached

	// The cache vouches only for the outcome of verification: withdrawing a
	// verification key (a new generation) sends the token back to the inner
	// verifier, which now refuses it, and the entry is dropped.
	gen.Add(1)
	inner.set("good", nil)
	verify("good", 4, false)
	inner.set("good", claims)
	verify("good", 5, true)
	verify("good", 5, true)

	// An entry ends at the token's exp even though the inner verifier would
	// still accept it within its leeway.
	clk.Set(claims.ExpiresAt.Add(-time.Nanosecond))
	verify("good", 5, true)
	clk.Set(claims.ExpiresAt)
	verify("good", 6, true)
	verify("good", 7, true) // accepted past exp: not cached again

	st := c.Stats()
	if st.Hits != 3 || st.Misses != 7 {
		t.Fatalf("Stats = %+v, want 3 hits and 7 misses", st)
	}
}

func TestCacheBounded(t *testing.T) {
	clk := newClock(t0)
	inner := &countingVerifier{valid: map[string]*Claims{}}
	const size = 256
	c := NewCache(inner, CacheOptions{Size: size, Now: clk.Now})
	ctx := context.Background()
	for i := range 10 * size {
		raw := fmt.Sprintf("tok-%d", i)
		inner.set(raw, &Claims{Subject: "1", ExpiresAt: t0.Add(time.Hour)})
		if _, err := c.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
		if n := c.Stats().Entries; n > size {
			t.Fatalf("after %d tokens the cache holds %d entries, more than its size %d", i+1, n, size)
		}
	}
	// The most recent token was just inserted, so it is a hit.
	before := inner.calls.Load()
	if _, err := c.Verify(ctx, fmt.Sprintf("tok-%d", 10*size-1)); err != nil {
		t.Fatal(err)
	}
	if inner.calls.Load() != before {
		t.Fatal("the newest token was evicted at once")
	}
}

func TestCacheShardEvict(t *testing.T) {
	now := t0.UnixNano()
	live := cacheKey{1, 1}
	sh := cacheShard{entries: map[cacheKey]cacheEntry{
		{2, 2}: {expires: now - 1},
		live:   {expires: now + 1},
		{3, 3}: {expires: now},
	}}
	// A full shard drops its expired entries, not a live one.
	sh.evict(now)
	if _, ok := sh.entries[live]; !ok || len(sh.entries) != 1 {
		t.Fatalf("after evict: %v, want only the live entry", sh.entries)
	}
	// With nothing expired, one entry goes.
	sh.entries[cacheKey{4, 4}] = cacheEntry{expires: now + 1}
	sh.evict(now)
	if len(sh.entries) != 1 {
		t.Fatalf("after evict: %d entries, want 1", len(sh.entries))
	}
}

func TestCacheConcurrent(t *testing.T) {
	inner := &countingVerifier{valid: map[string]*Claims{}}
	c := NewCache(inner, CacheOptions{Size: 128})
	for i := range 64 {
		inner.set(fmt.Sprint(i), &Claims{Subject: fmt.Sprint(i), ExpiresAt: time.Now().Add(time.Hour)})
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				raw := fmt.Sprint((i * (w + 1)) % 80) // 64 valid, 16 invalid
				got, err := c.Verify(context.Background(), raw)
				if valid := (i*(w+1))%80 < 64; valid != (err == nil) {
					t.Errorf("Verify(%s): err = %v", raw, err)
					return
				}
				if err == nil && got.Subject != raw {
					t.Errorf("Verify(%s) returned the claims of %s", raw, got.Subject)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestCacheRealTokens puts a Cache in front of the real Verifier: a hit
// returns the same claims, and a token whose key is withdrawn is refused
// at once although it was cached.
func TestCacheRealTokens(t *testing.T) {
	ks := &fakeKeyStore{}
	e := newEnv(t, ks, newClock(t0))
	c := NewCache(e.ver, CacheOptions{Now: e.clock.Now, Generation: e.ring.Version})
	ctx := context.Background()
	m := e.mint(t, MintRequest{Subject: "42", Roles: []string{"editor"}})
	first, err := c.Verify(ctx, m.Token)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Verify(ctx, m.Token)
	if err != nil || second != first {
		t.Fatalf("second Verify = %v, %v; want the cached claims", second, err)
	}
	if st := c.Stats(); st.Hits != 1 {
		t.Fatalf("Stats = %+v, want 1 hit", st)
	}
	// A tampered token differs in its hash and goes to the verifier.
	if _, err := c.Verify(ctx, m.Token[:len(m.Token)-2]+"AA"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("tampered token: err = %v", err)
	}

	// Withdraw every key: rotate twice and delete the retired ones, as an
	// operator removing a compromised key would. The cached token's key is
	// gone, so the cache must not vouch for it any more.
	if _, err := e.ring.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(MaxAccessTTL + Leeway + time.Minute)
	if err := e.ring.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, m.Token); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token of a withdrawn key: err = %v, want it refused", err)
	}
}

// BenchmarkCacheHit is the per-request cost of authenticating a token seen
// before: hashing it and one shard lookup. Compare BenchmarkVerify.
func BenchmarkCacheHit(b *testing.B) {
	e := newEnv(b, &fakeKeyStore{}, newClock(t0))
	m := e.mint(b, MintRequest{Subject: "42", Roles: []string{"editor"}, AMR: []string{"pwd"}})
	c := NewCache(e.ver, CacheOptions{Now: e.clock.Now, Generation: e.ring.Version})
	ctx := context.Background()
	if _, err := c.Verify(ctx, m.Token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Verify(ctx, m.Token); err != nil {
			b.Fatal(err)
		}
	}
	if st := c.Stats(); st.Misses != 1 {
		b.Fatalf("Stats = %+v: the benchmark missed the cache", st)
	}
}

// BenchmarkCacheHitParallel is BenchmarkCacheHit from every core at once,
// on 1,000 distinct tokens, as a busy replica sees them.
func BenchmarkCacheHitParallel(b *testing.B) {
	e := newEnv(b, &fakeKeyStore{}, newClock(t0))
	c := NewCache(e.ver, CacheOptions{Now: e.clock.Now, Generation: e.ring.Version})
	ctx := context.Background()
	toks := make([]string, 1000)
	for i := range toks {
		toks[i] = e.mint(b, MintRequest{Subject: fmt.Sprint(i), Roles: []string{"editor"}}).Token
		if _, err := c.Verify(ctx, toks[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := c.Verify(ctx, toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
