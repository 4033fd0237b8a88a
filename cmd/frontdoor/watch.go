package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// reloadQuiet is how long the config file must stay unchanged before it is
// read: editors and Kubernetes change a file in several steps (truncate and
// write, write a temporary file and rename it, swap symlinks), and only the
// end result is worth parsing.
const reloadQuiet = 150 * time.Millisecond

// reloadMaxDelay bounds the wait when changes never stop for reloadQuiet.
const reloadMaxDelay = 2 * time.Second

// kubeDataLink is the symlink through which a Kubernetes ConfigMap volume
// exposes its files: config.yaml → ..data/config.yaml, ..data → ..2026_…/.
// An update writes a new timestamped directory and renames a new ..data
// over the old one, so config.yaml itself never changes.
const kubeDataLink = "..data"

// configHash identifies a config file's content. It is the hash that
// loadConfig records, so the watcher can compare a file it reads with the
// config that is running.
func configHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// watchConfig reloads the config whenever its file's content changes, until
// ctx is done. Without a working watch (no inotify, too many watches) SIGHUP
// still reloads, so failing to start is logged, not fatal.
func (s *server) watchConfig(ctx context.Context) {
	cfg := s.cfg.Load()
	fw, err := newFileWatcher(cfg.path, cfg.hash, reloadQuiet, s.log, newDirWatcher)
	if err != nil {
		s.log.Warn("the config file is not watched; send SIGHUP to reload it", zap.Error(err))
		return
	}
	fw.run(ctx, func() { s.reload("file change") })
}

// fileWatcher reports when the content of one file changes, however the
// change is made: written in place, replaced by a rename (what most editors
// and config-management tools do), deleted and recreated, or swapped
// through symlinks as Kubernetes does with ConfigMap volumes.
//
// It watches directories rather than the file: a watch on the file itself
// follows the old inode and goes deaf as soon as the file is replaced.
type fileWatcher struct {
	path  string // absolute, as given (not resolved)
	quiet time.Duration
	log   *zap.Logger
	w     dirWatcher

	// target is path with every symlink resolved, when that resolves; dirs
	// are the directories being watched: path's own and target's.
	target string
	dirs   map[string]bool
	// last is the hash of the content last reported (or, at first, known to
	// be loaded); "" after a failed read. Events that leave the content as
	// it was (touch, chmod, a rewrite with the same bytes, a ConfigMap
	// update that changed another key) are then skipped.
	last string
}

// newFileWatcher starts watching path, whose content currently hashes to
// loaded (see configHash), with a directory watch from newWatch.
func newFileWatcher(path, loaded string, quiet time.Duration, log *zap.Logger, newWatch func() (dirWatcher, error)) (*fileWatcher, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	w, err := newWatch()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	fw := &fileWatcher{path: abs, quiet: quiet, log: log, w: w, dirs: map[string]bool{}, last: loaded}
	if err := w.add(filepath.Dir(abs)); err != nil {
		w.close()
		return nil, fmt.Errorf("watch %s: %w", filepath.Dir(abs), err)
	}
	fw.dirs[filepath.Dir(abs)] = true
	fw.follow()
	return fw, nil
}

// follow watches the directory of the file that path currently resolves
// to, so that a config symlinked from elsewhere is seen to change too.
// The directory of path itself stays watched whatever happens.
func (fw *fileWatcher) follow() {
	target, err := filepath.EvalSymlinks(fw.path)
	if err != nil {
		return // missing for now; the next event in path's directory retries
	}
	fw.target = target
	dir := filepath.Dir(target)
	own := filepath.Dir(fw.path)
	for d := range fw.dirs {
		if d != own && d != dir {
			// The directory may already be gone (a ConfigMap's old
			// timestamped directory), which removed the watch with it.
			_ = fw.w.remove(d)
			delete(fw.dirs, d)
		}
	}
	if !fw.dirs[dir] {
		if err := fw.w.add(dir); err != nil {
			fw.log.Warn("cannot watch the directory the config file links to; changes there need SIGHUP",
				zap.String("dir", dir), zap.Error(err))
			return
		}
		fw.dirs[dir] = true
	}
}

// relevant reports whether a change to the entry at name may have changed
// what reading path returns.
func (fw *fileWatcher) relevant(name string) bool {
	name = filepath.Clean(name)
	own := filepath.Dir(fw.path)
	return name == fw.path || name == fw.target || name == filepath.Join(own, kubeDataLink)
}

// run calls changed, from its own goroutine, each time the file's content
// differs from what it was at the last call, once a burst of events has
// settled. It returns when ctx is done.
func (fw *fileWatcher) run(ctx context.Context, changed func()) {
	defer fw.w.close()
	timer := time.NewTimer(fw.quiet)
	timer.Stop()
	var (
		pending    bool
		burstStart time.Time
	)
	schedule := func() {
		switch {
		case !pending:
			pending, burstStart = true, time.Now()
			timer.Reset(fw.quiet)
		case time.Since(burstStart) < reloadMaxDelay:
			timer.Reset(fw.quiet)
		}
		// Otherwise let the armed timer fire: a file that never stops
		// changing is still reloaded every reloadMaxDelay or so.
	}
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case name, ok := <-fw.w.changes():
			if !ok {
				return
			}
			if fw.relevant(name) {
				schedule()
			}
		case err, ok := <-fw.w.errs():
			if !ok {
				return
			}
			if errors.Is(err, errEventsLost) {
				// Events were lost; one of them may have been ours.
				schedule()
				continue
			}
			fw.log.Warn("config file watch", zap.Error(err))
		case <-timer.C:
			pending = false
			fw.follow()
			if fw.check() {
				changed()
			}
		}
	}
}

// check reads the file and reports whether its content differs from what
// was last seen. A file that cannot be read counts as a change once, so
// that the reload reports the problem, and not again until it is readable.
func (fw *fileWatcher) check() bool {
	data, err := os.ReadFile(fw.path)
	h := ""
	if err == nil {
		h = configHash(data)
	}
	if h == fw.last {
		return false
	}
	fw.last = h
	return true
}
