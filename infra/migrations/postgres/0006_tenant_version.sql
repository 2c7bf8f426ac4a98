-- The tenant aggregate's version (its last event's sequence): the ETag.
ALTER TABLE tenants ADD COLUMN version bigint NOT NULL DEFAULT 0;
