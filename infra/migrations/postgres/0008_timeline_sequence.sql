-- Entries of one command share occurred_at; order them by the event's
-- sequence as a number (the text id put ":10" before ":9").
ALTER TABLE timeline ADD COLUMN sequence bigint NOT NULL DEFAULT 0;

DROP INDEX timeline_recent;
CREATE INDEX timeline_recent ON timeline (tenant_id, environment, occurred_at, sequence, id);
