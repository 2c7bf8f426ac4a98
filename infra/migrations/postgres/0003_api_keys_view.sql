-- API keys, kept by the tenants projection: the keyed hash, never the value.
CREATE TABLE api_keys
(
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL,
    name        text NOT NULL,
    principal   text NOT NULL,
    -- Space-separated scope names.
    scopes      text NOT NULL,
    environment text NOT NULL,
    prefix      text NOT NULL,
    key_hash    text NOT NULL UNIQUE,
    expires_at  text,
    created_at  text NOT NULL,
    revoked_at  text
);

CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at, id);
