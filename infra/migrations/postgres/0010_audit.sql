-- The audit projection: every event as a redacted record, hash-chained per
-- tenant environment. One column per field of the record, so that changing
-- any stored value breaks the chain where it was changed.
CREATE TABLE audit_events
(
    tenant_id      text NOT NULL,
    environment    text NOT NULL,
    -- Dense per tenant environment: 1, 2, 3 …
    seq            bigint NOT NULL,
    id             text NOT NULL,
    occurred_at    text NOT NULL,
    actor          text NOT NULL,
    actor_type     text NOT NULL,
    api_key_id     text,
    request_id     text,
    aggregate_type text NOT NULL,
    aggregate_id   text NOT NULL,
    event_type     text NOT NULL,
    summary        text NOT NULL,
    -- The redacted event as canonical JSON.
    data           text NOT NULL,
    prev_hash      text NOT NULL,
    hash           text NOT NULL,
    PRIMARY KEY (tenant_id, environment, seq)
);

CREATE UNIQUE INDEX audit_events_id ON audit_events (id);
CREATE INDEX audit_events_aggregate ON audit_events (tenant_id, environment, aggregate_id, seq);
CREATE INDEX audit_events_type ON audit_events (tenant_id, environment, event_type, seq);
