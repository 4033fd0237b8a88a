package login

import (
	"fmt"
	"testing"
	"time"
)

func TestKeyedLimiter(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := newKeyedLimiter(3, 1000)
	for i := 0; i < 3; i++ {
		if ok, _ := l.allow("1.2.3.4", now); !ok {
			t.Fatalf("request %d refused within the limit", i)
		}
	}
	ok, wait := l.allow("1.2.3.4", now)
	if ok || wait <= 0 || wait > 20*time.Second {
		t.Fatalf("4th request: ok=%v wait=%v, want refused with a wait of about 20s", ok, wait)
	}
	if retryAfterSeconds(wait) != 20 {
		t.Errorf("Retry-After %d", retryAfterSeconds(wait))
	}
	if ok, _ := l.allow("5.6.7.8", now); !ok {
		t.Error("another key shares the bucket")
	}
	// A refused request does not consume a token: after the wait, one passes.
	if ok, _ := l.allow("1.2.3.4", now.Add(wait)); !ok {
		t.Error("still refused after Retry-After")
	}
	// Keys survive one rotation (a burst spanning the boundary stays counted).
	l2 := newKeyedLimiter(1, 1000)
	l2.allow("k", now)
	if ok, _ := l2.allow("k", now.Add(59*time.Second)); ok {
		t.Error("the limit reset at an arbitrary boundary")
	}
}

func TestKeyedLimiterMemoryIsBounded(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := newKeyedLimiter(5, 1000)
	for i := 0; i < 100_000; i++ {
		l.allow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
	}
	if n := l.size(); n > 2000 {
		t.Fatalf("limiter holds %d keys after a flood; bound is 2×1000", n)
	}
}

func TestKeyedLimiterDisabled(t *testing.T) {
	l := newKeyedLimiter(0, 10)
	for i := 0; i < 100; i++ {
		if ok, _ := l.allow("x", time.Now()); !ok {
			t.Fatal("a zero limit must mean unlimited")
		}
	}
}
