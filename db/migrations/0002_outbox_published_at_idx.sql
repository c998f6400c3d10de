-- The hourly prune deletes published rows older than the retention. Without this index each batch
-- scans the whole outbox (it only grows between prunes); with it the batch reads just the rows it
-- deletes. Unpublished rows have their own index (outbox_unpublished_idx) and are never pruned.
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;
