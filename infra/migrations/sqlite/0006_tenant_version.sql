-- The tenant aggregate's version (its last event's sequence): the ETag.
ALTER TABLE tenants ADD COLUMN version integer NOT NULL DEFAULT 0;
