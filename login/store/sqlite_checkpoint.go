package store

import (
	"context"
	"database/sql"
	"time"
)

// checkpointInterval is how often a SQLite store copies the pages committed
// to its write-ahead log into the database file. At a thousand logins a
// second that is about as many pages as SQLite's own automatic checkpoint
// waits for (1,000).
const checkpointInterval = 100 * time.Millisecond

// writerAutoCheckpoint is the writer connection's wal_autocheckpoint, in
// pages: ten times SQLite's default, a backstop for a checkpointer that
// falls behind or keeps failing. It also restarts the log under a steady
// write load: a PASSIVE checkpoint that a commit overtakes copies the pages
// but cannot let the log start over, so the log grows to this size (about
// 40 MB), and the writer's checkpoint then has only the pages since the last
// background one to copy (under a login load, a 2–3 ms pause every ~1.5 s
// instead of 5 ms every ~150 ms).
const writerAutoCheckpoint = 10_000

// checkpointer runs SQLite's PASSIVE checkpoint every checkpointInterval on
// a connection of its own.
//
// With SQLite's automatic checkpoint, the commit that crosses the threshold
// runs the checkpoint before it returns, fsyncs included (4–5 ms on the VM
// frontdoor is benchmarked on, every ~150 ms under a login load). It holds
// the only writer connection meanwhile, so every login queued for it waits,
// and the cores go idle while they do. A PASSIVE checkpoint on another
// connection takes no lock that a writer needs: the writer goes on
// appending to the log.
type checkpointer struct {
	db   *sql.DB
	stop context.CancelFunc
	done chan struct{}
}

// startCheckpointer starts checkpointing with db, which it owns from then on
// and closes in Close.
func startCheckpointer(db *sql.DB, every time.Duration) *checkpointer {
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{db: db, stop: stop, done: make(chan struct{})}
	go c.run(ctx, every)
	return c
}

func (c *checkpointer) run(ctx context.Context, every time.Duration) {
	defer close(c.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// A checkpoint with nothing to copy returns at once. A failed one is
		// left to the next tick, and to the writer's own checkpoint at
		// writerAutoCheckpoint pages: like SQLite's automatic checkpoint,
		// whose errors SQLite ignores, it only copies what the log already
		// holds durably enough for synchronous=NORMAL.
		var busy, logFrames, copied int
		_ = c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &copied)
	}
}

// Close stops the checkpointer, interrupting a checkpoint under way (the
// last connection to close checkpoints anyway), and closes its connection.
func (c *checkpointer) Close() error {
	c.stop()
	<-c.done
	return c.db.Close()
}
