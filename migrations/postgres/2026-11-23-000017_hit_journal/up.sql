-- How far each segment of the open and click journal has been applied
-- (decision 57). The row is written with the segment's file and advanced in
-- the transaction that applies its hits, so every hit is applied exactly once,
-- also across a crash.
CREATE TABLE hit_journal_segments (
    name TEXT PRIMARY KEY NOT NULL,
    applied_bytes BIGINT NOT NULL DEFAULT 0
);
