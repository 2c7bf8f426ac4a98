CREATE TABLE tenants
(
    id         text PRIMARY KEY,
    name       text NOT NULL,
    plan       text NOT NULL,
    status     text NOT NULL,
    created_at text NOT NULL,
    updated_at text NOT NULL
) STRICT;

CREATE INDEX tenants_created_at ON tenants (created_at, id);
