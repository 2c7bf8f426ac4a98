-- Fixed-window request counters per API key. Written by every replica in
-- one statement per request, so limits hold across replicas.
CREATE TABLE rate_limit_counters
(
    key_id       text   NOT NULL,
    period       text   NOT NULL,
    window_start bigint NOT NULL,
    requests     bigint NOT NULL,
    PRIMARY KEY (key_id, period, window_start)
);

-- Requests per tenant, environment, UTC day and endpoint group: the monthly
-- quota (live only) and GET /v1/usage.
CREATE TABLE usage_daily
(
    tenant_id      text   NOT NULL,
    environment    text   NOT NULL,
    day            text   NOT NULL,
    endpoint_group text   NOT NULL,
    requests       bigint NOT NULL,
    PRIMARY KEY (tenant_id, environment, day, endpoint_group)
);
