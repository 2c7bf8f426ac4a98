-- The token of the request that holds an Idempotency-Key. Its events carry
-- it as `correlation_id`, in the same transaction as the append, so a claim
-- whose process died can tell whether its command committed.
ALTER TABLE idempotency_keys ADD COLUMN token text;
