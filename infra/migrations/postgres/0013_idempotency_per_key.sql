-- Idempotency records now belong to the API key that made the request
-- (scope "key:<api key id>", or "admin"), and a response that carried a
-- secret (a new API key's value) is kept with that value redacted.
-- Records written before this held such values in clear, under the
-- tenant's scope: they are deleted (they only answered retries for 24 h).
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys ADD COLUMN response_redacted integer NOT NULL DEFAULT 0;
-- The scheduler prunes expired records on every pass.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
