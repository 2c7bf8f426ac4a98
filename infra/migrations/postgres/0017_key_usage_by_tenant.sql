-- KMS analytics (docs/kms-analytics.md) read a tenant environment's usage
-- over a time range, across its keys.
CREATE INDEX key_usage_tenant_minute ON key_usage (tenant_id, environment, minute);
