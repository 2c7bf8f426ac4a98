-- The cqrs-es event and snapshot tables (the statements sqlite-es issues
-- name only the cqrs-es columns), plus what the global feed needs.
CREATE TABLE events
(
    aggregate_type text    NOT NULL,
    aggregate_id   text    NOT NULL,
    sequence       integer NOT NULL CHECK (sequence >= 0),
    event_type     text    NOT NULL,
    event_version  text    NOT NULL,
    payload        text    NOT NULL,
    metadata       text    NOT NULL,
    -- Feed order. SQLite has one writer, so assigning max + 1 inside the
    -- appending transaction is gap-free and commit-ordered.
    position       integer,
    -- When the store recorded the event (Unix milliseconds).
    recorded_at    integer,
    -- The primary key must stay the cqrs-es one: sqlite-es reports only a
    -- primary-key violation (1555) as an optimistic-concurrency conflict.
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE UNIQUE INDEX events_position ON events (position);

CREATE TRIGGER events_assign_feed_position
AFTER INSERT ON events
BEGIN
    UPDATE events
       SET position    = (SELECT COALESCE(MAX(position), 0) + 1 FROM events),
           recorded_at = CAST((julianday('now') - 2440587.5) * 86400000 AS integer)
     WHERE rowid = NEW.rowid;
END;

CREATE TABLE snapshots
(
    aggregate_type   text    NOT NULL,
    aggregate_id     text    NOT NULL,
    last_sequence    integer NOT NULL CHECK (last_sequence >= 0),
    current_snapshot integer NOT NULL CHECK (current_snapshot >= 0),
    payload          text    NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
) STRICT;

-- One row per projection: its version and how far into the feed it has
-- applied, written in the same transaction as its read-model changes.
CREATE TABLE projection_checkpoints
(
    name       text    PRIMARY KEY,
    version    integer NOT NULL,
    tx         integer NOT NULL,
    position   integer NOT NULL,
    updated_at integer NOT NULL
) STRICT;
