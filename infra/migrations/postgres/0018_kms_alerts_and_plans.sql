-- KMS alert rules, alerts and migration plans (docs/kms-analytics.md),
-- kept by the keys projection, and the keys' rotation due date for the
-- scheduler's overdue check (docs/keys.md).
ALTER TABLE keys ADD COLUMN rotation_due_at text;
CREATE INDEX keys_rotation_due ON keys (rotation_due_at) WHERE rotation_due_at IS NOT NULL;

CREATE TABLE kms_alert_rules
(
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL,
    environment text NOT NULL,
    created_at  text NOT NULL,
    -- The whole row (AlertRuleRow) as JSON.
    doc         text NOT NULL
);

CREATE INDEX kms_alert_rules_tenant ON kms_alert_rules (tenant_id, environment, created_at, id);

CREATE TABLE kms_alerts
(
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL,
    environment  text NOT NULL,
    severity     text NOT NULL,
    -- 1 once acknowledged.
    acknowledged integer NOT NULL,
    triggered_at text NOT NULL,
    doc          text NOT NULL
);

CREATE INDEX kms_alerts_tenant ON kms_alerts (tenant_id, environment, triggered_at, id);

CREATE TABLE kms_migration_plans
(
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL,
    environment text NOT NULL,
    status      text NOT NULL,
    created_at  text NOT NULL,
    doc         text NOT NULL
);

CREATE INDEX kms_migration_plans_tenant ON kms_migration_plans (tenant_id, environment, created_at, id);
