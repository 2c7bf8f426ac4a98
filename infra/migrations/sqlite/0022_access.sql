-- Just-in-time access (docs/access.md), kept by the access projection:
-- policies, requests (with their reviews and, once approved, the grant),
-- and the check index: one row per (grant, permission) while the grant
-- lasts. `POST /v1/access/check` reads the rows of one grant_key and
-- compares expires_at with the clock.
CREATE TABLE access_policies
(
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL,
    environment text NOT NULL,
    created_at  text NOT NULL,
    -- The whole row (PolicyRow) as JSON.
    doc         text NOT NULL
) STRICT;

CREATE INDEX access_policies_tenant ON access_policies (tenant_id, environment, created_at, id);

CREATE TABLE access_requests
(
    id               text PRIMARY KEY,
    tenant_id        text NOT NULL,
    environment      text NOT NULL,
    status           text NOT NULL,
    requester        text NOT NULL,
    resource_type    text NOT NULL,
    resource_id      text NOT NULL,
    requested_at     text NOT NULL,
    -- When the scheduler has something to record: a pending request's TTL,
    -- a grant's end; NULL once closed.
    due_at           text,
    approved_at      text,
    -- From request to approval (0 until approved: only rows with an
    -- approved_at count).
    approval_seconds real NOT NULL DEFAULT 0,
    doc              text NOT NULL
) STRICT;

CREATE INDEX access_requests_tenant ON access_requests (tenant_id, environment, requested_at, id);
CREATE INDEX access_requests_requester ON access_requests (tenant_id, environment, requester, requested_at);
CREATE INDEX access_requests_due ON access_requests (due_at) WHERE due_at IS NOT NULL;

-- grant_key is SHA-256 (hex) of tenant, environment, principal, resource
-- type, resource id and permission, each length-prefixed: a fixed-size key
-- however long the names (a principal of 200 and a resource id of 500
-- characters would overflow PostgreSQL's B-tree row limit as columns).
CREATE TABLE access_grants
(
    grant_key   text NOT NULL,
    request_id  text NOT NULL,
    tenant_id   text NOT NULL,
    environment text NOT NULL,
    expires_at  text NOT NULL,
    PRIMARY KEY (grant_key, request_id)
) STRICT;

CREATE INDEX access_grants_request ON access_grants (request_id);
