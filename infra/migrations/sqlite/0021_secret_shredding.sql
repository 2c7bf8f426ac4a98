-- What the scheduler's secret shredding needs (docs/secrets.md): each
-- version's data key (its generation), and a tombstone per deleted secret
-- naming the data key whose rows must be gone. Positive evidence only: a
-- view being rebuilt shows nothing, so nothing is deleted on its account.
ALTER TABLE secret_versions ADD COLUMN data_key_id text NOT NULL DEFAULT '';

CREATE TABLE secret_tombstones
(
    data_key_id text PRIMARY KEY,
    secret_id   text NOT NULL,
    deleted_at  text NOT NULL
) STRICT;
