package token

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"

	"frontdoor/login/store"
)

// KeyStore is the part of store.Store the key ring needs.
type KeyStore interface {
	SigningKeys(ctx context.Context) ([]store.SigningKey, error)
	ActivateSigningKey(ctx context.Context, k store.SigningKey) error
	EnsureSigningKey(ctx context.Context, generate func() (store.SigningKey, error)) (bool, error)
	DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int, error)
	// TryLock runs fn unless another process holds the named lock (see
	// store.Store).
	TryLock(ctx context.Context, name string, fn func(ctx context.Context) error) (ran bool, err error)
}

// rotationLock is the TryLock name that lets one replica at a time rotate.
const rotationLock = "signing-key-rotation"

// Key states reported by KeyRing.Keys.
const (
	KeyActive  = "active"  // signs and verifies
	KeyRetired = "retired" // no longer signs; verifies until VerifiesUntil
	KeyExpired = "expired" // retired and past VerifiesUntil: verifies nothing
)

// KeyInfo describes one stored signing key, for `frontdoor keys list`.
type KeyInfo struct {
	ID    string // RFC 7638 thumbprint, the kid of tokens it signs
	State string // KeyActive, KeyRetired or KeyExpired
	Bits  int
	// CreatedAt, ActivatedAt and RetiredAt are as stored; RetiredAt is zero
	// for the active key.
	CreatedAt, ActivatedAt, RetiredAt time.Time
	// VerifiesUntil is when the key leaves the JWKS: RetiredAt + access_ttl
	// + Leeway. Zero for the active key.
	VerifiesUntil time.Time
}

// KeyRing holds the signing keys loaded from the store: the active one
// signs; the active one and retired ones whose tokens may still be live
// verify. Readers never lock: they load an immutable snapshot, which Refresh
// replaces.
type KeyRing struct {
	ks  KeyStore
	cfg Config
	now func() time.Time

	// mu serialises writers so that snapshot versions increase in the order
	// the snapshots are published.
	mu   sync.Mutex
	snap atomic.Pointer[snapshot]
}

// snapshot is one immutable view of the stored keys. Nothing in it may be
// modified after it is published.
type snapshot struct {
	version  uint64
	activeID string
	active   *rsa.PrivateKey
	keys     []ringKey    // every stored key, newest ActivatedAt first
	jwkSet   []jwkset.JWK // the published public keys, for the Verifier
	jwks     []byte       // jwkSet as RFC 7517 JSON
}

type ringKey struct {
	meta          store.SigningKey // without PrivatePEM: priv holds the key
	priv          *rsa.PrivateKey
	verifiesUntil time.Time // zero while active
	published     bool
}

// NewKeyRing makes sure the store holds an active signing key (generating
// one on first start; concurrent first starts create exactly one) and loads
// the keys. now is the clock; nil means time.Now.
func NewKeyRing(ctx context.Context, ks KeyStore, cfg Config, now func() time.Time) (*KeyRing, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	k := &KeyRing{ks: ks, cfg: cfg, now: now}
	if _, err := ks.EnsureSigningKey(ctx, func() (store.SigningKey, error) { return GenerateKey(k.now()) }); err != nil {
		return nil, fmt.Errorf("ensure signing key: %w", err)
	}
	if err := k.Refresh(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// Refresh re-reads the keys from the store and publishes the active key and
// the retired keys with RetiredAt + access_ttl + Leeway after now. The
// version changes only if something did. If the store cannot be read, the
// previous keys stay in use (minus retired keys that have expired meanwhile)
// and the error is returned.
func (k *KeyRing) Refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	prev := k.snap.Load()
	stored, err := k.ks.SigningKeys(ctx)
	if err != nil {
		err = fmt.Errorf("load signing keys: %w", err)
		if prev != nil {
			// Keep expiring retired keys on time even while the store is
			// unreachable, since nothing else would.
			metas := make([]store.SigningKey, len(prev.keys))
			for i, rk := range prev.keys {
				metas[i] = rk.meta
			}
			if perr := k.publishLocked(prev, metas); perr != nil {
				return errors.Join(err, perr)
			}
		}
		return err
	}
	return k.publishLocked(prev, stored)
}

// publishLocked builds a snapshot of stored and publishes it if it differs
// from prev. k.mu must be held.
func (k *KeyRing) publishLocked(prev *snapshot, stored []store.SigningKey) error {
	now := k.now()
	parsed := make(map[string]*rsa.PrivateKey)
	if prev != nil {
		for _, rk := range prev.keys {
			parsed[rk.meta.ID] = rk.priv
		}
	}
	keys := make([]ringKey, 0, len(stored))
	for _, sk := range stored {
		priv := parsed[sk.ID]
		if priv == nil {
			// Parsing validates the key, which is slow; a key's ID is the
			// thumbprint of its public key, checked here once, so the parsed
			// key can be reused for the same ID afterwards.
			var err error
			if priv, err = parseStoredKey(sk); err != nil {
				return err
			}
		}
		rk := ringKey{meta: sk, priv: priv, published: sk.Active()}
		rk.meta.PrivatePEM = nil
		if !sk.Active() {
			rk.verifiesUntil = sk.RetiredAt.Add(k.cfg.AccessTTL + Leeway)
			rk.published = now.Before(rk.verifiesUntil)
		}
		keys = append(keys, rk)
	}
	slices.SortStableFunc(keys, func(a, b ringKey) int { return b.meta.ActivatedAt.Compare(a.meta.ActivatedAt) })
	activeAt := slices.IndexFunc(keys, func(rk ringKey) bool { return rk.meta.Active() })
	if activeAt < 0 {
		return errors.New("the store holds no active signing key")
	}
	if prev != nil && sameKeys(prev.keys, keys) {
		return nil
	}

	next := &snapshot{
		version:  1,
		activeID: keys[activeAt].meta.ID,
		active:   keys[activeAt].priv,
		keys:     keys,
	}
	if prev != nil {
		next.version = prev.version + 1
	}
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, rk := range keys {
		if !rk.published {
			continue
		}
		jwk, err := jwkset.NewJWKFromKey(&rk.priv.PublicKey, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgRS256, KID: rk.meta.ID, USE: jwkset.UseSig},
		})
		if err != nil {
			return fmt.Errorf("signing key %s: make JWK: %w", rk.meta.ID, err)
		}
		next.jwkSet = append(next.jwkSet, jwk)
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	var err error
	if next.jwks, err = json.Marshal(set); err != nil {
		return fmt.Errorf("encode JWKS: %w", err)
	}
	k.snap.Store(next)
	return nil
}

func parseStoredKey(sk store.SigningKey) (*rsa.PrivateKey, error) {
	priv, err := parsePrivatePEM(sk.PrivatePEM)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", sk.ID, err)
	}
	if bits := priv.N.BitLen(); bits < MinKeyBits {
		return nil, fmt.Errorf("signing key %s: %d bits, at least %d are required", sk.ID, bits, MinKeyBits)
	}
	if err := priv.Validate(); err != nil {
		return nil, fmt.Errorf("signing key %s: %w", sk.ID, err)
	}
	if tp := Thumbprint(&priv.PublicKey); tp != sk.ID {
		return nil, fmt.Errorf("signing key %s: id is not the key's thumbprint %s", sk.ID, tp)
	}
	return priv, nil
}

func sameKeys(a, b []ringKey) bool {
	return slices.EqualFunc(a, b, func(x, y ringKey) bool {
		return x.meta.ID == y.meta.ID &&
			x.meta.CreatedAt.Equal(y.meta.CreatedAt) &&
			x.meta.ActivatedAt.Equal(y.meta.ActivatedAt) &&
			x.meta.RetiredAt.Equal(y.meta.RetiredAt) &&
			x.published == y.published
	})
}

// Active returns the key that signs new tokens and its kid.
func (k *KeyRing) Active() (kid string, key *rsa.PrivateKey) {
	s := k.snap.Load()
	return s.activeID, s.active
}

// JWKS returns the published public keys as an RFC 7517 JWK Set. The slice is
// shared by every caller until the keys change: do not modify it.
func (k *KeyRing) JWKS() []byte { return k.snap.Load().jwks }

// Version increases whenever the keys or the published set change, so that
// whatever derives from them (the Verifier's key set, an HTTP cache) can
// notice.
func (k *KeyRing) Version() uint64 { return k.snap.Load().version }

// Keys describes every stored key, including retired keys that verify
// nothing any more but are still in the store, newest first.
func (k *KeyRing) Keys() []KeyInfo {
	s := k.snap.Load()
	now := k.now()
	out := make([]KeyInfo, 0, len(s.keys))
	for _, rk := range s.keys {
		ki := KeyInfo{
			ID:            rk.meta.ID,
			State:         KeyActive,
			Bits:          rk.priv.N.BitLen(),
			CreatedAt:     rk.meta.CreatedAt,
			ActivatedAt:   rk.meta.ActivatedAt,
			RetiredAt:     rk.meta.RetiredAt,
			VerifiesUntil: rk.verifiesUntil,
		}
		if !rk.meta.Active() {
			ki.State = KeyRetired
			if !now.Before(rk.verifiesUntil) {
				ki.State = KeyExpired
			}
		}
		out = append(out, ki)
	}
	return out
}

// Rotate generates a key and makes it the signing key. The previous key is
// retired and keeps verifying until its tokens have expired.
func (k *KeyRing) Rotate(ctx context.Context) (store.SigningKey, error) {
	sk, err := GenerateKey(k.now())
	if err != nil {
		return store.SigningKey{}, err
	}
	if err := k.ks.ActivateSigningKey(ctx, sk); err != nil {
		return store.SigningKey{}, fmt.Errorf("activate signing key: %w", err)
	}
	return sk, k.Refresh(ctx)
}

// Import makes sk (from KeyFromPEM) the signing key from now on, retiring the
// previous one as Rotate does.
func (k *KeyRing) Import(ctx context.Context, sk store.SigningKey) error {
	if _, err := parseStoredKey(sk); err != nil {
		return err
	}
	if err := k.ks.ActivateSigningKey(ctx, sk); err != nil {
		return fmt.Errorf("activate signing key: %w", err)
	}
	return k.Refresh(ctx)
}

// rotationDue reports whether the active key has signed for rotate_every.
func (k *KeyRing) rotationDue(now time.Time) bool {
	if k.cfg.RotateEvery <= 0 {
		return false
	}
	s := k.snap.Load()
	active := s.keys[slices.IndexFunc(s.keys, func(rk ringKey) bool { return rk.meta.ID == s.activeID })]
	return now.Sub(active.meta.ActivatedAt) >= k.cfg.RotateEvery
}

// Maintain does the periodic key upkeep; serve calls it every few seconds.
// It refreshes the ring (picking up rotations by other replicas and the CLI),
// rotates when the active key has signed for rotate_every (one replica at a
// time, under the store's rotation lock), and deletes keys
// retired so long ago (more than MaxAccessTTL + Leeway) that no access token
// under any valid configuration can still need them.
func (k *KeyRing) Maintain(ctx context.Context) error {
	if err := k.Refresh(ctx); err != nil {
		return err
	}
	now := k.now()
	if k.rotationDue(now) {
		// Replicas sharing a store all see the key come due at once. The
		// lock lets one of them rotate; the refresh inside it lets a
		// replica that waited its turn see that the work is done.
		_, err := k.ks.TryLock(ctx, rotationLock, func(ctx context.Context) error {
			if err := k.Refresh(ctx); err != nil {
				return err
			}
			if !k.rotationDue(k.now()) {
				return nil
			}
			_, err := k.Rotate(ctx)
			return err
		})
		if err != nil {
			return fmt.Errorf("rotate signing key: %w", err)
		}
	}
	n, err := k.ks.DeleteSigningKeysRetiredBefore(ctx, now.Add(-(MaxAccessTTL + Leeway)))
	if err != nil {
		return fmt.Errorf("delete old signing keys: %w", err)
	}
	if n > 0 {
		return k.Refresh(ctx)
	}
	return nil
}
