-- The secret store (docs/secrets.md).
--
-- The secrets view, kept by the secrets projection: one row per secret (its
-- metadata), one per version (state, size, keyed fingerprint and the id of
-- its sealed row, never the value), the activity of each secret (writes,
-- reads, state changes) and the leakage incidents.
CREATE TABLE secrets
(
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL,
    environment text NOT NULL,
    path        text NOT NULL,
    created_at  text NOT NULL,
    -- The whole row (SecretRow) as JSON.
    doc         text NOT NULL
);

CREATE INDEX secrets_path ON secrets (tenant_id, environment, path);

CREATE TABLE secret_versions
(
    secret_id     text NOT NULL,
    tenant_id     text NOT NULL,
    environment   text NOT NULL,
    version       bigint NOT NULL,
    state         text NOT NULL,
    -- When a readable version is soft-deleted by delete_version_after (the
    -- scheduler's question), or when a deleted one was.
    deletion_time text,
    doc           text NOT NULL,
    PRIMARY KEY (secret_id, version)
);

CREATE INDEX secret_versions_tenant ON secret_versions (tenant_id, environment, state);
CREATE INDEX secret_versions_expiry ON secret_versions (deletion_time)
    WHERE deletion_time IS NOT NULL AND state IN ('active', 'deprecated');

CREATE TABLE secret_activity
(
    secret_id   text NOT NULL,
    feed_tx     bigint NOT NULL,
    feed_position bigint NOT NULL,
    tenant_id   text NOT NULL,
    environment text NOT NULL,
    action      text NOT NULL,
    at          text NOT NULL,
    doc         text NOT NULL,
    PRIMARY KEY (secret_id, feed_tx, feed_position)
);

CREATE TABLE leakage_incidents
(
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL,
    environment text NOT NULL,
    secret_id   text NOT NULL,
    status      text NOT NULL,
    severity    text NOT NULL,
    reported_at text NOT NULL,
    doc         text NOT NULL
);

CREATE INDEX leakage_incidents_tenant ON leakage_incidents (tenant_id, environment, reported_at, id);
CREATE INDEX leakage_incidents_secret ON leakage_incidents (secret_id, status);

-- Sealed values and their data keys: not read models (no projection writes
-- them, no rebuild empties them). Rows are written before the event that
-- names them and deleted when their version (or their secret) is destroyed.
-- A data key is 32 random bytes, sealed under a key-encryption key derived
-- from the root key for its tenant and secret (infra/src/crypto/seal.rs);
-- a value is AES-256-GCM under its secret's data key, bound to tenant,
-- secret, version and value id. Both base64.
CREATE TABLE secret_data_keys
(
    data_key_id text PRIMARY KEY,
    secret_id   text NOT NULL,
    tenant_id   text NOT NULL,
    sealed      text NOT NULL,
    created_at  text NOT NULL
);

CREATE INDEX secret_data_keys_secret ON secret_data_keys (secret_id);

CREATE TABLE secret_values
(
    value_id    text PRIMARY KEY,
    secret_id   text NOT NULL,
    data_key_id text NOT NULL,
    version     bigint NOT NULL,
    sealed      text NOT NULL,
    created_at  text NOT NULL
);

CREATE INDEX secret_values_secret ON secret_values (secret_id, version);
