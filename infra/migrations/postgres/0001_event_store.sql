-- The cqrs-es event and snapshot tables (the statements postgres-es issues
-- name only the cqrs-es columns), plus what the global feed needs. The feed
-- columns are filled by defaults, which PostgreSQL evaluates inside the
-- appending transaction: they commit atomically with the event.
CREATE TABLE events
(
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    sequence       bigint NOT NULL CHECK (sequence >= 0),
    event_type     text   NOT NULL,
    event_version  text   NOT NULL,
    payload        jsonb  NOT NULL,
    metadata       jsonb  NOT NULL,
    -- Allocation order. Not safe to read by alone: a transaction that commits
    -- later can hold a smaller number (DESIGN §2).
    position       bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    -- The appending transaction's id. Readers only return rows whose xact_id
    -- is below the oldest transaction still running, in (xact_id, position)
    -- order, so that no reader ever passes an event that commits later.
    xact_id        bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    recorded_at    bigint NOT NULL DEFAULT ((extract(epoch FROM clock_timestamp()) * 1000)::bigint),
    -- postgres-es reports only a unique violation as a conflict: keep the key.
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_position ON events (position);
CREATE INDEX events_feed_order ON events (xact_id, position);

-- Wake feed readers. NOTIFY is delivered at commit and identical
-- notifications within one transaction are folded into one.
CREATE FUNCTION palisade_notify_event_appended() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('palisade_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION palisade_notify_event_appended();

CREATE TABLE snapshots
(
    aggregate_type   text   NOT NULL,
    aggregate_id     text   NOT NULL,
    last_sequence    bigint NOT NULL CHECK (last_sequence >= 0),
    current_snapshot bigint NOT NULL CHECK (current_snapshot >= 0),
    payload          jsonb  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

CREATE TABLE projection_checkpoints
(
    name       text PRIMARY KEY,
    version    bigint NOT NULL,
    tx         bigint NOT NULL,
    position   bigint NOT NULL,
    updated_at bigint NOT NULL
);
