package main

import (
	"errors"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// dirWatcher reports changes to the entries of the directories it watches.
// fileWatcher needs nothing more than the path of what changed, which lets
// it run on inotify directly on Linux (see inotifyWatcher) and on fsnotify
// elsewhere.
type dirWatcher interface {
	add(dir string) error
	remove(dir string) error
	// changes delivers the path of each changed entry (dir/name), or a
	// watched directory's own path when it is deleted or moved. It is
	// closed after close.
	changes() <-chan string
	// errs delivers the watch's errors: errEventsLost when the kernel
	// dropped events. It is closed after close.
	errs() <-chan error
	close() error
}

// errEventsLost reports that change events were dropped (the kernel's
// queue overflowed), so any file may have changed.
var errEventsLost = errors.New("file change events were lost")

// fsnotifyWatcher is a dirWatcher on fsnotify, for the platforms without
// inotifyWatcher.
type fsnotifyWatcher struct {
	w         *fsnotify.Watcher
	names     chan string
	errors    chan error
	done      chan struct{}
	closeOnce sync.Once
}

func newFsnotifyWatcher() (dirWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	fw := &fsnotifyWatcher{w: w, names: make(chan string), errors: make(chan error), done: make(chan struct{})}
	go fw.forward()
	return fw, nil
}

func (fw *fsnotifyWatcher) add(dir string) error    { return fw.w.Add(dir) }
func (fw *fsnotifyWatcher) remove(dir string) error { return fw.w.Remove(dir) }
func (fw *fsnotifyWatcher) changes() <-chan string  { return fw.names }
func (fw *fsnotifyWatcher) errs() <-chan error      { return fw.errors }
func (fw *fsnotifyWatcher) close() error {
	var err error
	fw.closeOnce.Do(func() {
		close(fw.done)
		err = fw.w.Close()
	})
	return err
}

// forward passes fsnotify's events and errors on until the watch closes.
func (fw *fsnotifyWatcher) forward() {
	defer close(fw.names)
	defer close(fw.errors)
	for {
		select {
		case ev, ok := <-fw.w.Events:
			if !ok {
				return
			}
			select {
			case fw.names <- ev.Name:
			case <-fw.done:
				return
			}
		case err, ok := <-fw.w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				err = errEventsLost
			}
			select {
			case fw.errors <- err:
			case <-fw.done:
				return
			}
		case <-fw.done:
			return
		}
	}
}
