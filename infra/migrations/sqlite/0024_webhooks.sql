-- Webhooks (docs/webhooks.md).
--
-- webhook_secrets holds each endpoint's signing secrets, sealed under the
-- root key (never in an event): deleting the endpoint deletes its rows.
-- webhooks is the endpoints view, kept by the webhooks projection.
-- webhook_messages and webhook_deliveries are the outbox: the dispatcher
-- writes them in the transaction that moves its checkpoint; the senders
-- claim due deliveries (claimed_until is a lease, so a sender that dies
-- hands its claims back when the lease runs out) and record each attempt
-- in webhook_attempts. webhook_health is what the senders know of an
-- endpoint between attempts (since when every attempt failed).
CREATE TABLE webhook_secrets
(
    secret_id  text PRIMARY KEY,
    webhook_id text NOT NULL,
    tenant_id  text NOT NULL,
    sealed     text NOT NULL,
    created_at text NOT NULL
) STRICT;

CREATE INDEX webhook_secrets_webhook ON webhook_secrets (webhook_id);

CREATE TABLE webhooks
(
    id               text PRIMARY KEY,
    tenant_id        text NOT NULL,
    environment      text NOT NULL,
    status           text NOT NULL,
    created_at       text NOT NULL,
    -- The whole row (WebhookRow) as JSON.
    doc              text NOT NULL
) STRICT;

CREATE INDEX webhooks_tenant ON webhooks (tenant_id, environment, created_at, id);
CREATE INDEX webhooks_status ON webhooks (status);

CREATE TABLE webhook_messages
(
    message_id  text PRIMARY KEY,
    tenant_id   text NOT NULL,
    environment text NOT NULL,
    event_type  text NOT NULL,
    -- The feed position (tx, position) of the event it tells of.
    feed_tx     INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    occurred_at text NOT NULL,
    -- The body as sent: {"type", "timestamp", "data"}.
    payload     text NOT NULL
) STRICT;

CREATE TABLE webhook_deliveries
(
    delivery_id     text PRIMARY KEY,
    webhook_id      text NOT NULL,
    message_id      text NOT NULL,
    tenant_id       text NOT NULL,
    environment     text NOT NULL,
    event_type      text NOT NULL,
    feed_tx         INTEGER NOT NULL,
    position        INTEGER NOT NULL,
    occurred_at     text NOT NULL,
    -- pending | success | failed
    status          text NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at text NOT NULL,
    claimed_until   text,
    created_at      text NOT NULL,
    last_attempt_at text,
    UNIQUE (webhook_id, message_id)
) STRICT;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, feed_tx, position)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (webhook_id, occurred_at, delivery_id);

CREATE TABLE webhook_attempts
(
    delivery_id      text    NOT NULL,
    attempt          INTEGER NOT NULL,
    attempted_at     text    NOT NULL,
    status_code      INTEGER,
    duration_ms      INTEGER NOT NULL,
    error            text,
    response_excerpt text,
    PRIMARY KEY (delivery_id, attempt)
) STRICT;

CREATE TABLE webhook_health
(
    webhook_id      text PRIMARY KEY,
    failing_since   text,
    last_success_at text
) STRICT;
