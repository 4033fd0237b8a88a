package login

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter is a token bucket per key (client IP, username) with bounded
// memory. Keys live in two generations that rotate every window: a key unseen
// for two windows is forgotten, which loses nothing because its bucket would
// have refilled anyway. A flood of distinct keys rotates early once the
// current generation holds max keys, so memory stays bounded however many
// addresses an attacker has.
type keyedLimiter struct {
	perMinute int
	max       int
	window    time.Duration

	mu       sync.Mutex
	cur      map[string]*rate.Limiter
	prev     map[string]*rate.Limiter
	rotateAt time.Time
}

func newKeyedLimiter(perMinute, max int) *keyedLimiter {
	return &keyedLimiter{perMinute: perMinute, max: max, window: time.Minute,
		cur: map[string]*rate.Limiter{}, prev: map[string]*rate.Limiter{}}
}

// allow takes one token for key at now. When none is left it reports how long
// until one will be.
func (l *keyedLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil || l.perMinute <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.rotateAt) || len(l.cur) >= l.max {
		l.prev, l.cur = l.cur, make(map[string]*rate.Limiter, len(l.cur))
		l.rotateAt = now.Add(l.window)
	}
	lim, ok := l.cur[key]
	if !ok {
		if lim, ok = l.prev[key]; ok {
			delete(l.prev, key)
		} else {
			lim = rate.NewLimiter(rate.Every(time.Minute/time.Duration(l.perMinute)), l.perMinute)
		}
		l.cur[key] = lim
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// size is the number of keys held (for tests of the memory bound).
func (l *keyedLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur) + len(l.prev)
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1, for the
// Retry-After header.
func retryAfterSeconds(d time.Duration) int {
	return int(math.Max(1, math.Ceil(d.Seconds())))
}
