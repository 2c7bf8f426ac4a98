-- Finished deliveries by when they ended: what the history retention job
-- (infra/src/scheduler.rs, WebhookHistoryPruning) deletes, oldest first.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (last_attempt_at)
    WHERE status <> 'pending';

-- A message's deliveries: whether any is left once some are deleted.
CREATE INDEX webhook_deliveries_message ON webhook_deliveries (message_id);
