-- The findings projection's tables. Each row keeps the whole read model as
-- JSON in `doc`; the other columns exist to filter, sort and index.
CREATE TABLE findings
(
    id             text PRIMARY KEY,
    tenant_id      text NOT NULL,
    environment    text NOT NULL,
    asset_id       text NOT NULL,
    product        text NOT NULL,
    category       text NOT NULL,
    asset_identifier text NOT NULL,
    title          text NOT NULL,
    -- Lower-cased title and description, for search.
    search_text    text NOT NULL,
    severity       text NOT NULL,
    -- 4 (critical) down to 0 (info).
    severity_rank  INTEGER NOT NULL,
    status         text NOT NULL,
    cve            text,
    assignee       text,
    -- Tags as |a|b|c|, so that one tag is a LIKE '%|a|%'.
    tags           text NOT NULL,
    risk_score     REAL NOT NULL,
    accepted_until text,
    created_at     text NOT NULL,
    updated_at     text NOT NULL,
    doc            text NOT NULL
) STRICT;

CREATE INDEX findings_created ON findings (tenant_id, environment, created_at, id);
CREATE INDEX findings_risk ON findings (tenant_id, environment, risk_score, id);
CREATE INDEX findings_severity ON findings (tenant_id, environment, severity_rank, id);
CREATE INDEX findings_asset ON findings (asset_id);
CREATE INDEX findings_due ON findings (accepted_until) WHERE accepted_until IS NOT NULL;

CREATE TABLE assets
(
    id            text PRIMARY KEY,
    tenant_id     text NOT NULL,
    environment   text NOT NULL,
    identifier    text NOT NULL,
    risk_score    REAL NOT NULL,
    open_findings INTEGER NOT NULL,
    last_seen     text NOT NULL,
    doc           text NOT NULL
) STRICT;

CREATE UNIQUE INDEX assets_identifier ON assets (tenant_id, environment, identifier);
CREATE INDEX assets_risk ON assets (tenant_id, environment, risk_score, id);

-- One row per tenant environment: its risk and finding counts.
CREATE TABLE risk_summaries
(
    tenant_id   text NOT NULL,
    environment text NOT NULL,
    risk_score  REAL NOT NULL,
    doc         text NOT NULL,
    PRIMARY KEY (tenant_id, environment)
) STRICT;

-- The tenant risk score at the end of each day it changed.
CREATE TABLE risk_history
(
    tenant_id   text NOT NULL,
    environment text NOT NULL,
    day         text NOT NULL,
    risk_score  REAL NOT NULL,
    PRIMARY KEY (tenant_id, environment, day)
) STRICT;

-- The timeline projection's tables.
CREATE TABLE timeline
(
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL,
    environment text NOT NULL,
    occurred_at text NOT NULL,
    event_type  text NOT NULL,
    finding_id  text,
    asset_id    text,
    doc         text NOT NULL
) STRICT;

CREATE INDEX timeline_recent ON timeline (tenant_id, environment, occurred_at, id);
CREATE INDEX timeline_finding ON timeline (finding_id, occurred_at, id);
CREATE INDEX timeline_asset ON timeline (asset_id, occurred_at, id);

CREATE TABLE timeline_subjects
(
    finding_id text PRIMARY KEY,
    asset_id   text NOT NULL,
    title      text NOT NULL
) STRICT;
