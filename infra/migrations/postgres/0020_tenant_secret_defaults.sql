-- The secret store's default per tenant environment (docs/secrets.md):
-- 1 when every secret write there needs check-and-set. Kept by the tenants
-- projection from TenantSecretsConfigured; read with each API key's owner.
ALTER TABLE tenants ADD COLUMN secrets_cas_required_live bigint NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN secrets_cas_required_test bigint NOT NULL DEFAULT 0;
