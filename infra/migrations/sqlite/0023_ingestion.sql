-- Scanner-report ingestion (docs/ingestion.md).
--
-- ingestion_jobs is the jobs view, kept by the ingestion projection.
-- ingestion_files holds an uploaded report's bytes, in parts of at most
-- 1 MiB, from the upload until its job ends (then they are deleted): in
-- the database, so that whichever replica runs the job can read them.
CREATE TABLE ingestion_jobs
(
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL,
    environment  text NOT NULL,
    status       text NOT NULL,
    format       text NOT NULL,
    submitted_at text NOT NULL,
    -- The whole row (IngestionJobRow) as JSON.
    doc          text NOT NULL
) STRICT;

CREATE INDEX ingestion_jobs_tenant ON ingestion_jobs (tenant_id, environment, submitted_at, id);
CREATE INDEX ingestion_jobs_open ON ingestion_jobs (status, submitted_at)
    WHERE status IN ('pending', 'processing');

CREATE TABLE ingestion_files
(
    job_id text    NOT NULL,
    part   integer NOT NULL,
    data   blob    NOT NULL,
    PRIMARY KEY (job_id, part)
) STRICT;
