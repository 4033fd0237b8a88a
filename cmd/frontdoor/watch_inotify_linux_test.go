package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// watchBackends are the directory watches the tests run fileWatcher on:
// on Linux both, so that the fsnotify one that other platforms use is
// tested too.
func watchBackends() map[string]func() (dirWatcher, error) {
	return map[string]func() (dirWatcher, error){
		"inotify":  newInotifyWatcher,
		"fsnotify": newFsnotifyWatcher,
	}
}

// collect gathers what w delivers until it has been quiet for settle.
func collect(t *testing.T, w dirWatcher, settle time.Duration) []string {
	t.Helper()
	var got []string
	for {
		select {
		case name := <-w.changes():
			got = append(got, name)
		case err := <-w.errs():
			t.Fatalf("watch error: %v", err)
		case <-time.After(settle):
			return got
		}
	}
}

// watchTempDir returns an inotify watcher on a new temporary directory,
// closed when the test ends.
func watchTempDir(t *testing.T) (dirWatcher, string) {
	t.Helper()
	dir := t.TempDir()
	w, err := newInotifyWatcher()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.close() })
	if err := w.add(dir); err != nil {
		t.Fatal(err)
	}
	return w, dir
}

// TestInotifyWatcherSkipsWritesInPlace holds the reason inotifyWatcher
// exists: a file beside config.yaml that is written while it stays open (a
// database, a log) must not wake the watcher once per write, only when its
// writer closes it.
func TestInotifyWatcherSkipsWritesInPlace(t *testing.T) {
	w, dir := watchTempDir(t)
	busy := filepath.Join(dir, "frontdoor.db-wal")
	f, err := os.Create(busy)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, w, 100*time.Millisecond); len(got) != 1 || got[0] != busy {
		t.Fatalf("creating the file delivered %q, want just %q", got, busy)
	}
	for range 200 {
		if _, err := f.Write([]byte("a WAL frame\n")); err != nil {
			t.Fatal(err)
		}
	}
	if got := collect(t, w, 100*time.Millisecond); len(got) != 0 {
		t.Fatalf("200 writes to an open file delivered %d events (%q…), want none", len(got), got[0])
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, w, 100*time.Millisecond); len(got) != 1 || got[0] != busy {
		t.Fatalf("closing the written file delivered %q, want just %q", got, busy)
	}
}

func TestInotifyWatcherRemoveAndClose(t *testing.T) {
	dir := t.TempDir()
	w, err := newInotifyWatcher()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.add(dir); err != nil {
		t.Fatal(err)
	}
	if err := w.add(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("watching a missing directory: no error")
	}
	if err := w.remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := w.remove(dir); err == nil {
		t.Fatal("removing a directory twice: no error")
	}
	writeFile(t, filepath.Join(dir, "config.yaml"), "v1")
	if got := collect(t, w, 100*time.Millisecond); len(got) != 0 {
		t.Fatalf("after remove, delivered %q", got)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	// Both channels close, so that fileWatcher.run ends.
	select {
	case _, ok := <-w.changes():
		if ok {
			t.Fatal("changes delivered after close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("changes not closed after close")
	}
	if _, ok := <-w.errs(); ok {
		t.Fatal("errs delivered after close")
	}
	if err := w.add(dir); err == nil {
		t.Fatal("add after close: no error")
	}
}

// BenchmarkWatchForeignWrites measures what a write to another file in the
// config's directory costs the process, watcher included: the CPU time of
// the whole process (getrusage) per write, after the watcher has drained
// its events.
func BenchmarkWatchForeignWrites(b *testing.B) {
	for name, newWatch := range watchBackends() {
		b.Run("backend="+name, func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(path, []byte("v0"), 0o600); err != nil {
				b.Fatal(err)
			}
			startWatch(b, path, "v0", newWatch)
			f, err := os.Create(filepath.Join(dir, "frontdoor.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			line := []byte(`{"level":"info","msg":"request"}` + "\n")
			cpu0 := processCPUTime(b)
			for b.Loop() {
				if _, err := f.Write(line); err != nil {
					b.Fatal(err)
				}
			}
			time.Sleep(100 * time.Millisecond) // let the watcher catch up
			b.ReportMetric(float64(processCPUTime(b)-cpu0)/float64(b.N), "cpu-ns/write")
		})
	}
}

func processCPUTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestInotifyWatcherReportsLostEvents overflows the kernel's queue while
// nobody reads the watch: the loss must come out as errEventsLost, which
// makes fileWatcher re-read the file, rather than go unnoticed.
func TestInotifyWatcherReportsLostEvents(t *testing.T) {
	limit, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skip("no max_queued_events:", err)
	}
	var queued int
	if _, err := fmt.Sscan(string(limit), &queued); err != nil || queued > 1<<20 {
		t.Skipf("max_queued_events %q", limit)
	}
	w, dir := watchTempDir(t)
	// Attribute changes alternating between two files, so that the kernel
	// cannot merge consecutive events; the reader blocks on the first one
	// it delivers, holding the few hundred it read at once, and the queue
	// fills behind it. Twice the limit overflows it whatever was read.
	files := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}
	for _, f := range files {
		writeFile(t, f, "x")
	}
	for i := range 2 * queued {
		now := time.Now()
		if err := os.Chtimes(files[i%2], now, now); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case <-w.changes():
		case err := <-w.errs():
			if !errors.Is(err, errEventsLost) {
				t.Fatalf("error %v, want errEventsLost", err)
			}
			return
		case <-deadline:
			t.Fatal("no errEventsLost after overflowing the queue")
		}
	}
}
