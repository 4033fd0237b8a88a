// Package logsink is the writer under frontdoor's logs: it takes log lines
// without a system call each and writes them out in batches from its own
// goroutine.
//
// A batch is whatever accumulated within the linger after the first line
// and while the previous write was in progress, so an idle server's lines
// are written within the linger (tests and operators reading the log see a
// request's line almost as soon as it is logged) and a busy one's are
// grouped, hundreds of lines to a write.
package logsink

import (
	"io"
	"sync"
	"time"
)

// Writer batches writes to an underlying writer. It is safe for concurrent
// use and implements zapcore.WriteSyncer.
type Writer struct {
	out io.Writer
	// maxPending bounds the bytes waiting to be written; Write blocks
	// beyond it, so a stalled output slows logging callers rather than
	// growing memory without limit.
	maxPending int
	linger     time.Duration

	mu       sync.Mutex
	drained  sync.Cond // signalled when pending has been taken
	pending  []byte
	spare    []byte
	closed   bool
	err      error // the last error from out, reported by Sync
	wake     chan struct{}
	done     chan struct{}
	writeMu  sync.Mutex // serialises writes to out between run and Sync
	stopOnce sync.Once
}

// New starts a Writer over out. maxPending ≤ 0 means 1 MiB. linger is how
// long a line may wait for others to share its write: on a busy server
// each wakeup of the writer then carries many lines, not a few.
func New(out io.Writer, maxPending int, linger time.Duration) *Writer {
	if maxPending <= 0 {
		maxPending = 1 << 20
	}
	w := &Writer{
		out:        out,
		maxPending: maxPending,
		linger:     linger,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	w.drained.L = &w.mu
	go w.run()
	return w
}

// Write queues a copy of p. Output errors are not returned here (the line is
// already queued); Sync reports them.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.pending) >= w.maxPending && !w.closed {
		w.drained.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		return w.writeNow(p)
	}
	w.pending = append(w.pending, p...)
	// Under the lock, so that Close cannot close wake in between.
	select {
	case w.wake <- struct{}{}:
	default: // the writer is already due to run
	}
	w.mu.Unlock()
	return len(p), nil
}

// writeNow is Write after Close: straight to the output.
func (w *Writer) writeNow(p []byte) (int, error) {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	return w.out.Write(p)
}

func (w *Writer) run() {
	defer close(w.done)
	for range w.wake {
		if w.linger > 0 {
			time.Sleep(w.linger)
		}
		if !w.flush() {
			return
		}
	}
}

// flush writes what is pending and reports whether the Writer is still
// open.
func (w *Writer) flush() bool {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	w.mu.Lock()
	closed := w.closed
	if len(w.pending) == 0 {
		w.mu.Unlock()
		return !closed
	}
	// pending and spare swap arrays; the one written now becomes the
	// spare only once the write is done with it.
	batch := w.pending
	w.pending, w.spare = w.spare[:0], nil
	w.drained.Broadcast()
	w.mu.Unlock()
	_, err := w.out.Write(batch)
	w.mu.Lock()
	if err != nil {
		w.err = err
	}
	// A batch grown far beyond the usual size is not kept around.
	if cap(batch) <= 4*w.maxPending {
		w.spare = batch[:0]
	}
	w.mu.Unlock()
	return !closed
}

// Sync writes everything queued so far before returning, then syncs the
// output if it can be, and reports the first output error since the last
// Sync.
func (w *Writer) Sync() error {
	w.flush()
	w.mu.Lock()
	err := w.err
	w.err = nil
	w.mu.Unlock()
	if s, ok := w.out.(interface{ Sync() error }); ok && err == nil {
		// Syncing a terminal or pipe fails harmlessly; only the write
		// error matters to callers.
		_ = s.Sync()
	}
	return err
}

// Close writes what is queued and stops the goroutine. Later writes go
// straight to the output.
func (w *Writer) Close() error {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.wake)
		w.drained.Broadcast()
		w.mu.Unlock()
		<-w.done
	})
	return w.Sync()
}
