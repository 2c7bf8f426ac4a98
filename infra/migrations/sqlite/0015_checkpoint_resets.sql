-- How many times each consumer's checkpoint was rewound to the start (a
-- rebuild or a new version). The API-key cache drops every key when the
-- tenants view's count changes: a rebuild may have passed through states
-- older than the ones the cache holds, however quickly it finished.
ALTER TABLE projection_checkpoints ADD COLUMN resets INTEGER NOT NULL DEFAULT 0;
