-- Search (`?search=`) is a substring match (LIKE '%…%') on the lower-cased
-- title and description. A trigram index answers it without reading every
-- finding of the partition. pg_trgm ships with PostgreSQL and is a trusted
-- extension (PostgreSQL 13+), so the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX findings_search_trgm ON findings USING gin (search_text gin_trgm_ops);
