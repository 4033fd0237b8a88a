-- Cluster-wide locks (Store.TryLock): one row per held lock, a lease that
-- the holder deletes when done. A holder that dies leaves its row behind
-- until expires_at, after which the next TryLock takes it over.
--
-- expires_at is INTEGER Unix microseconds (UTC), as in 0001.

CREATE TABLE locks (
    name       TEXT    NOT NULL PRIMARY KEY CHECK (name <> ''),
    -- A random id per TryLock call, so that a holder whose lease lapsed and
    -- was taken over cannot delete its successor's row.
    holder     TEXT    NOT NULL CHECK (holder <> ''),
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
