-- The event store behind every report: delivery_events gains what opens and
-- clicks carry, and a flag for machine activity (scanners, prefetching proxies)
-- that is stored but kept out of the human counts.
ALTER TABLE delivery_events ADD COLUMN ip TEXT;
ALTER TABLE delivery_events ADD COLUMN user_agent TEXT;
ALTER TABLE delivery_events ADD COLUMN url TEXT;
ALTER TABLE delivery_events ADD COLUMN machine BOOLEAN NOT NULL DEFAULT 0;
CREATE INDEX delivery_events_account_time ON delivery_events(account_id, created_at);
CREATE INDEX delivery_events_recipient ON delivery_events(recipient_id, created_at);

-- Per-send aggregates, kept up to date as events arrive.
ALTER TABLE sends ADD COLUMN opens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sends ADD COLUMN unique_opens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sends ADD COLUMN clicks BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sends ADD COLUMN unique_clicks BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sends ADD COLUMN machine_opens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sends ADD COLUMN machine_clicks BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sends ADD COLUMN tracking BOOLEAN NOT NULL DEFAULT 1;

-- Per-delivery firsts, which make the unique counts exact.
ALTER TABLE deliveries ADD COLUMN first_opened_at TIMESTAMP;
ALTER TABLE deliveries ADD COLUMN first_clicked_at TIMESTAMP;

-- Bounces without a usable VERP address are matched by the original Message-ID.
CREATE INDEX deliveries_message_id ON deliveries(message_id);

ALTER TABLE lists ADD COLUMN tracking BOOLEAN NOT NULL DEFAULT 1;

-- Per-recipient aggregates.
CREATE TABLE recipient_activity (
    recipient_id BIGINT PRIMARY KEY REFERENCES recipients(id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL,
    opens BIGINT NOT NULL DEFAULT 0,
    clicks BIGINT NOT NULL DEFAULT 0,
    last_opened_at TIMESTAMP,
    last_clicked_at TIMESTAMP
);

-- Bounce and complaint reports already taken in (by Maildir file name, IMAP
-- UID or webhook id), recorded in the transaction that applies them, so each
-- is applied exactly once, also across a crash.
CREATE TABLE bounce_reports (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    outcome TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL
);
