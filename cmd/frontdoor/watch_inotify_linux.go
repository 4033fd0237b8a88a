package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// newDirWatcher is the directory watch that frontdoor uses on Linux.
func newDirWatcher() (dirWatcher, error) { return newInotifyWatcher() }

// inotifyMask is every change that can alter what reading a path in the
// directory returns, except IN_MODIFY. fsnotify always asks for IN_MODIFY,
// so every write to any file beside config.yaml (the SQLite database and its
// WAL, a log that stderr goes to) woke frontdoor: about 7 µs of CPU per write
// measured on the development machine, and 0.5% of its CPU during logins.
// A file written in place is seen when its writer closes it (IN_CLOSE_WRITE),
// which is also when its content is complete.
const inotifyMask = syscall.IN_CLOSE_WRITE | syscall.IN_CREATE | syscall.IN_DELETE |
	syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO | syscall.IN_ATTRIB |
	syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF | syscall.IN_ONLYDIR

// inotifyWatcher is a dirWatcher on an inotify descriptor of its own.
type inotifyWatcher struct {
	// f is the non-blocking inotify descriptor, read through the runtime's
	// poller so that close interrupts a pending read.
	f      *os.File
	names  chan string
	errors chan error
	done   chan struct{}

	mu        sync.Mutex
	dirs      map[int32]string // watch descriptor → directory
	closeOnce sync.Once
}

func newInotifyWatcher() (dirWatcher, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	w := &inotifyWatcher{
		f:      os.NewFile(uintptr(fd), "inotify"),
		names:  make(chan string),
		errors: make(chan error),
		done:   make(chan struct{}),
		dirs:   map[int32]string{},
	}
	go w.read()
	return w, nil
}

func (w *inotifyWatcher) changes() <-chan string { return w.names }
func (w *inotifyWatcher) errs() <-chan error     { return w.errors }

// control runs fn on the descriptor unless the watcher is closed. It goes
// through SyscallConn because os.File.Fd would switch the descriptor to
// blocking mode, and a blocked read could then never be interrupted.
func (w *inotifyWatcher) control(fn func(fd int) error) error {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return err
	}
	return opErr
}

func (w *inotifyWatcher) add(dir string) error {
	return w.control(func(fd int) error {
		wd, err := syscall.InotifyAddWatch(fd, dir, inotifyMask)
		if err != nil {
			return &os.PathError{Op: "inotify_add_watch", Path: dir, Err: err}
		}
		w.mu.Lock()
		w.dirs[int32(wd)] = dir
		w.mu.Unlock()
		return nil
	})
}

func (w *inotifyWatcher) remove(dir string) error {
	w.mu.Lock()
	wd, found := int32(-1), false
	for d, name := range w.dirs {
		if name == dir {
			wd, found = d, true
			delete(w.dirs, d)
			break
		}
	}
	w.mu.Unlock()
	if !found {
		return fmt.Errorf("%s is not watched", dir)
	}
	return w.control(func(fd int) error {
		if _, err := syscall.InotifyRmWatch(fd, uint32(wd)); err != nil {
			return &os.PathError{Op: "inotify_rm_watch", Path: dir, Err: err}
		}
		return nil
	})
}

func (w *inotifyWatcher) close() error {
	err := os.ErrClosed
	w.closeOnce.Do(func() {
		close(w.done)
		err = w.f.Close()
	})
	return err
}

// inotifyEventSize is the fixed part of struct inotify_event: wd, mask,
// cookie and len, four 32-bit fields in the machine's byte order.
const inotifyEventSize = 16

// read turns the descriptor's events into paths until close.
func (w *inotifyWatcher) read() {
	defer close(w.names)
	defer close(w.errors)
	// Room for many events, and at least one with the longest name: a
	// shorter buffer than one event makes read fail with EINVAL.
	buf := make([]byte, 64*(inotifyEventSize+syscall.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.sendErr(fmt.Errorf("read inotify events: %w", err))
			}
			return
		}
		for off := 0; off+inotifyEventSize <= n; {
			wd := int32(binary.NativeEndian.Uint32(buf[off:]))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			name := buf[off+inotifyEventSize : min(off+inotifyEventSize+nameLen, n)]
			off += inotifyEventSize + nameLen
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i] // the name is padded with NULs
			}
			if mask&syscall.IN_Q_OVERFLOW != 0 {
				if !w.sendErr(errEventsLost) {
					return
				}
				continue
			}
			w.mu.Lock()
			dir, ok := w.dirs[wd]
			if mask&syscall.IN_IGNORED != 0 {
				// The watch is gone: removed, or its directory deleted.
				delete(w.dirs, wd)
			}
			w.mu.Unlock()
			if !ok || mask&syscall.IN_IGNORED != 0 {
				continue
			}
			path := dir
			if len(name) > 0 {
				path = filepath.Join(dir, string(name))
			}
			select {
			case w.names <- path:
			case <-w.done:
				return
			}
		}
	}
}

// sendErr delivers err unless the watcher closes first, and reports which.
func (w *inotifyWatcher) sendErr(err error) bool {
	select {
	case w.errors <- err:
		return true
	case <-w.done:
		return false
	}
}
