-- Hits land on every recipient's part of this index, so each batch of hits
-- rewrites most of its leaf pages (written to the log, then checkpointed). The
-- time column made every entry about four times wider than the recipient id and
-- row id alone; a recipient's events are read in id order, which the index
-- without it still gives, and the rare time window over one recipient's events
-- (soft-bounce scoring) is a filter on those few rows.
DROP INDEX delivery_events_recipient;
CREATE INDEX delivery_events_recipient ON delivery_events(recipient_id);
