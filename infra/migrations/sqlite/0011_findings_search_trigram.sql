-- PostgreSQL gains a trigram index for search in this migration; SQLite
-- keeps scanning the partition's findings (see docs/findings.md). The
-- numbering stays the same on both backends.
SELECT 1;
