package logsink

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is an output that tests can read while the Writer writes.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	gate   chan struct{} // when set, each write waits for a receive
	err    error
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	if b.gate != nil {
		<-b.gate
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	if b.err != nil {
		return 0, b.err
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls until cond holds; the Writer's goroutine writes
// asynchronously, so a line appears shortly after Write returns.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLinesAppearWithoutSync(t *testing.T) {
	out := &lockedBuffer{}
	w := New(out, 0, 0)
	defer w.Close()
	if _, err := w.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first line", func() bool { return out.String() == "one\n" })
	w.Write([]byte("two\n"))
	waitFor(t, "the second line", func() bool { return out.String() == "one\ntwo\n" })
}

func TestLingerGroupsLinesIntoOneWrite(t *testing.T) {
	out := &lockedBuffer{}
	// Without a linger the writer, woken by the first line, writes it alone
	// long before the next arrives; with one far longer than the pauses,
	// the three share a write even on a loaded machine.
	w := New(out, 0, 500*time.Millisecond)
	defer w.Close()
	for _, line := range []string{"one\n", "two\n", "three\n"} {
		w.Write([]byte(line))
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "the lines", func() bool { return out.String() == "one\ntwo\nthree\n" })
	out.mu.Lock()
	writes := out.writes
	out.mu.Unlock()
	if writes != 1 {
		t.Fatalf("%d writes to the output, want the three lines in 1", writes)
	}
	// An idle writer still writes a later line on its own.
	w.Write([]byte("four\n"))
	waitFor(t, "the fourth line", func() bool { return strings.HasSuffix(out.String(), "three\nfour\n") })
}

func TestWriteCopiesItsInput(t *testing.T) {
	out := &lockedBuffer{gate: make(chan struct{})}
	w := New(out, 0, 0)
	line := []byte("first\n")
	w.Write(line)
	copy(line, "XXXXX\n") // zap reuses its buffers after Write returns
	close(out.gate)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "first\n" {
		t.Fatalf("got %q, want the line as it was when written", got)
	}
}

func TestBatchesWhileOutputIsBusy(t *testing.T) {
	out := &lockedBuffer{gate: make(chan struct{})}
	w := New(out, 0, 0)
	w.Write([]byte("a\n")) // taken by the goroutine, whose write now waits
	waitFor(t, "the first batch to be taken", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.pending) == 0
	})
	for i := 0; i < 100; i++ {
		fmt.Fprintf(w, "line %d\n", i)
	}
	close(out.gate)
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if n := strings.Count(got, "\n"); n != 101 {
		t.Fatalf("%d lines written, want 101", n)
	}
	out.mu.Lock()
	writes := out.writes
	out.mu.Unlock()
	if writes > 3 {
		t.Fatalf("101 lines took %d writes; lines queued during a write should go out together", writes)
	}
	if !strings.HasPrefix(got, "a\nline 0\nline 1\n") || !strings.HasSuffix(got, "line 99\n") {
		t.Fatalf("lines out of order: %q…", got[:40])
	}
	w.Close()
}

func TestWriteBlocksWhenOutputStalls(t *testing.T) {
	out := &lockedBuffer{gate: make(chan struct{})}
	w := New(out, 64, 0)
	w.Write([]byte("taken by the stalled write\n"))
	waitFor(t, "the first batch to be taken", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.pending) == 0
	})
	w.Write(bytes.Repeat([]byte("x"), 64)) // fills pending to the bound
	blocked := make(chan struct{})
	go func() {
		w.Write([]byte("over the bound\n"))
		close(blocked)
	}()
	select {
	case <-blocked:
		t.Fatal("Write returned while 64 bytes were pending with a bound of 64")
	case <-time.After(50 * time.Millisecond):
	}
	close(out.gate)
	<-blocked
	w.Close()
	if !strings.HasSuffix(out.String(), "over the bound\n") {
		t.Fatalf("last line missing: %q", out.String())
	}
}

func TestConcurrentWritersLoseNothing(t *testing.T) {
	out := &lockedBuffer{}
	w := New(out, 256, 0)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				fmt.Fprintf(w, "g%d-%d\n", g, i)
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*500 {
		t.Fatalf("%d lines, want %d", len(lines), 8*500)
	}
	seen := make(map[string]bool, len(lines))
	next := make(map[string]int)
	for _, l := range lines {
		if seen[l] {
			t.Fatalf("line %q written twice", l)
		}
		seen[l] = true
		var g, i int
		if _, err := fmt.Sscanf(l, "g%d-%d", &g, &i); err != nil {
			t.Fatalf("torn line %q", l)
		}
		key := fmt.Sprint(g)
		if i != next[key] {
			t.Fatalf("goroutine %d: line %d after %d; one writer's lines must stay in order", g, i, next[key]-1)
		}
		next[key]++
	}
}

func TestSyncReportsOutputErrors(t *testing.T) {
	out := &lockedBuffer{err: errors.New("disk full")}
	w := New(out, 0, 0)
	defer w.Close()
	w.Write([]byte("lost\n"))
	if err := w.Sync(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Sync = %v, want the output's error", err)
	}
	if err := w.Sync(); err != nil {
		t.Fatalf("second Sync = %v; the error was already reported", err)
	}
}

func TestWriteAfterCloseGoesStraightOut(t *testing.T) {
	out := &lockedBuffer{}
	w := New(out, 0, 0)
	w.Write([]byte("before\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "before\n" {
		t.Fatalf("Close left %q written, want everything queued", got)
	}
	w.Write([]byte("after\n"))
	if got := out.String(); got != "before\nafter\n" {
		t.Fatalf("after Close got %q", got)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
