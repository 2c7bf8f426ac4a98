-- The KMS (docs/keys.md).
--
-- The keys view, kept by the keys projection: one row per key, one per
-- version (its public key and the id of its sealed material row, never the
-- material), and usage per minute from KeyUsageRecorded.
CREATE TABLE keys
(
    id               text PRIMARY KEY,
    tenant_id        text NOT NULL,
    environment      text NOT NULL,
    name             text NOT NULL,
    algorithm        text NOT NULL,
    state            text NOT NULL,
    -- A JSON array of strings (the tag filter matches one element).
    tags             text NOT NULL,
    created_at       text NOT NULL,
    last_used_at     text,
    next_rotation_at text,
    deletion_date    text,
    -- The whole row (KeyRow) as JSON.
    doc              text NOT NULL
) STRICT;

CREATE INDEX keys_tenant ON keys (tenant_id, environment, created_at, id);
CREATE INDEX keys_name ON keys (tenant_id, environment, name);
-- The scheduler's two questions: which keys are due a rotation, which a destroy.
CREATE INDEX keys_next_rotation ON keys (next_rotation_at) WHERE next_rotation_at IS NOT NULL;
CREATE INDEX keys_deletion_date ON keys (deletion_date) WHERE deletion_date IS NOT NULL;

CREATE TABLE key_versions
(
    key_id      text NOT NULL,
    version     integer NOT NULL,
    material_id text NOT NULL,
    public_key  text,
    created_at  text NOT NULL,
    PRIMARY KEY (key_id, version)
) STRICT;

CREATE TABLE key_usage
(
    key_id      text NOT NULL,
    tenant_id   text NOT NULL,
    environment text NOT NULL,
    minute      text NOT NULL,
    version     integer NOT NULL,
    operation   text NOT NULL,
    application text NOT NULL,
    count       integer NOT NULL,
    errors      integer NOT NULL,
    bytes       integer NOT NULL,
    PRIMARY KEY (key_id, minute, version, operation, application)
) STRICT;

-- Sealed key material: not a read model (no projection writes it, no
-- rebuild empties it). A row is written before the event that names it
-- (by material_id) and deleted when the key is destroyed. Each row is
-- AES-256-GCM under a key-encryption key derived from the root key for
-- its tenant, key and version (infra/src/crypto/seal.rs), base64.
CREATE TABLE key_material
(
    material_id text PRIMARY KEY,
    key_id      text NOT NULL,
    tenant_id   text NOT NULL,
    version     integer NOT NULL,
    sealed      text NOT NULL,
    created_at  text NOT NULL
) STRICT;

CREATE INDEX key_material_key ON key_material (key_id);
