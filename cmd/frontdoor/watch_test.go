package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestConfigHashMatchesLoadConfig(t *testing.T) {
	data, err := os.ReadFile("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WECHAT_SECRET", "test-secret")
	cfg, err := parseConfig("config.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := configHash(data); got != cfg.hash {
		t.Fatalf("configHash = %s, loadConfig recorded %s: the watcher would reload for nothing or miss changes", got, cfg.hash)
	}
}

// watchHarness runs a fileWatcher on path and reports each change it
// signals with the content of the file at that moment.
type watchHarness struct {
	t       testing.TB
	changes chan string
}

func startWatch(t testing.TB, path, initial string, newWatch func() (dirWatcher, error)) *watchHarness {
	t.Helper()
	fw, err := newFileWatcher(path, configHash([]byte(initial)), 20*time.Millisecond, zap.NewNop(), newWatch)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	h := &watchHarness{t: t, changes: make(chan string, 16)}
	go func() {
		defer close(done)
		fw.run(ctx, func() {
			data, _ := os.ReadFile(path)
			h.changes <- string(data)
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// next waits for the next signalled change.
func (h *watchHarness) next() string {
	h.t.Helper()
	select {
	case got := <-h.changes:
		return got
	case <-time.After(10 * time.Second):
		h.t.Fatal("no change signalled")
		return ""
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// forEachBackend runs test once with each directory watch this platform has.
func forEachBackend(t *testing.T, test func(t *testing.T, newWatch func() (dirWatcher, error))) {
	for name, newWatch := range watchBackends() {
		t.Run(name, func(t *testing.T) { test(t, newWatch) })
	}
}

func TestFileWatcherWaysOfChanging(t *testing.T) {
	forEachBackend(t, testFileWatcherWaysOfChanging)
}

func testFileWatcherWaysOfChanging(t *testing.T, newWatch func() (dirWatcher, error)) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, "v0")
	h := startWatch(t, path, "v0", newWatch)

	steps := []struct {
		name   string
		change func()
		want   string
	}{
		{"write in place", func() { writeFile(t, path, "v1") }, "v1"},
		{"rename over", func() { replaceFile(t, path, "v2") }, "v2"},
		{"delete and create", func() {
			os.Remove(path)
			writeFile(t, path, "v3")
		}, "v3"},
		// Events that leave the content as it was come first; the change
		// after them must be the next one signalled.
		{"same content, then a change", func() {
			replaceFile(t, path, "v3")
			now := time.Now()
			os.Chtimes(path, now, now)
			writeFile(t, filepath.Join(dir, "unrelated.yaml"), "x")
			// Let the no-op burst settle on its own before the real change.
			time.Sleep(200 * time.Millisecond)
			writeFile(t, path, "v4")
		}, "v4"},
	}
	for _, s := range steps {
		s.change()
		if got := h.next(); got != s.want {
			t.Fatalf("%s: signalled with %q, want %q", s.name, got, s.want)
		}
	}
}

func TestFileWatcherFollowsSymlinks(t *testing.T) {
	tests := []struct {
		name string
		// setup lays out the files and returns the path to watch and a
		// function that changes what it resolves to.
		setup func(t *testing.T, dir string) (path string, change func(string))
	}{
		{"ConfigMap ..data swap", func(t *testing.T, dir string) (string, func(string)) {
			k := &kubeSwap{t: t, dir: dir}
			k.publish(map[string]string{"config.yaml": "v0"})
			return filepath.Join(dir, "config.yaml"), func(s string) { k.publish(map[string]string{"config.yaml": s}) }
		}},
		{"link to a file in another directory", func(t *testing.T, dir string) (string, func(string)) {
			real := filepath.Join(dir, "real")
			os.Mkdir(real, 0o755)
			os.Mkdir(filepath.Join(dir, "etc"), 0o755)
			writeFile(t, filepath.Join(real, "config.yaml"), "v0")
			link := filepath.Join(dir, "etc", "config.yaml")
			if err := os.Symlink(filepath.Join(real, "config.yaml"), link); err != nil {
				t.Fatal(err)
			}
			return link, func(s string) { replaceFile(t, filepath.Join(real, "config.yaml"), s) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, newWatch func() (dirWatcher, error)) {
				path, change := tt.setup(t, t.TempDir())
				h := startWatch(t, path, "v0", newWatch)
				for _, v := range []string{"v1", "v2", "v3"} {
					change(v)
					if got := h.next(); got != v {
						t.Fatalf("signalled with %q, want %q", got, v)
					}
				}
			})
		})
	}
}

func TestFileWatcherMissingFile(t *testing.T) {
	forEachBackend(t, testFileWatcherMissingFile)
}

func testFileWatcherMissingFile(t *testing.T, newWatch func() (dirWatcher, error)) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, "v0")
	h := startWatch(t, path, "v0", newWatch)
	os.Remove(path)
	if got := h.next(); got != "" {
		t.Fatalf("signalled with %q, want the missing file", got)
	}
	// Recreating it as it was is a change again: the reload decides
	// whether anything differs from the running config.
	writeFile(t, path, "v0")
	if got := h.next(); got != "v0" {
		t.Fatalf("signalled with %q, want v0", got)
	}
}
