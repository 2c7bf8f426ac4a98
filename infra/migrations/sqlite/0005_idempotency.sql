-- Idempotency-Key records: the first response to a command, replayed to
-- retries with the same key and body for 24 hours. `scope` is the tenant
-- (or "admin"), so keys are per tenant.
CREATE TABLE idempotency_keys
(
    scope           text   NOT NULL,
    idempotency_key text   NOT NULL,
    fingerprint     text   NOT NULL,
    -- NULL while the first request is in flight.
    response_status integer,
    response_type   text,
    response_etag   text,
    response_body   text,
    created_at      integer NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
) STRICT;
