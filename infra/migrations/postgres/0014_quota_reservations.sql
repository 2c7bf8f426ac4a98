-- The monthly quota as a counter that a request reserves from atomically
-- (one conditional upsert), instead of a sum read before the request and
-- written after it. Live requests only. Seeded from this month's usage.
CREATE TABLE quota_usage
(
    tenant_id text    NOT NULL,
    month     text    NOT NULL,
    requests  bigint  NOT NULL,
    PRIMARY KEY (tenant_id, month)
);

INSERT INTO quota_usage (tenant_id, month, requests)
SELECT tenant_id, substr(day, 1, 7), SUM(requests)
  FROM usage_daily
 WHERE environment = 'live'
 GROUP BY tenant_id, substr(day, 1, 7);
