-- The status check written as comparisons (decision 76). SQLite checks
-- `status IN (three values)` by building a temporary b-tree of the three
-- values on every insert: about a twentieth of a grouped subscribe's time on
-- the writer. Up to two values it compares instead; three comparisons say
-- the same. SQLite cannot change a constraint, so the table is rebuilt as
-- migration 16 did; no table refers to it.

CREATE TABLE subscriptions_rebuilt (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL,
    list_id BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    recipient_id BIGINT NOT NULL REFERENCES recipients(id) ON DELETE CASCADE,
    status TEXT NOT NULL
        CHECK (status = 'pending' OR status = 'subscribed' OR status = 'unsubscribed'),
    source TEXT NOT NULL,
    unsubscribe_reason INTEGER,
    confirmation_token_hash TEXT,
    created_at TIMESTAMP NOT NULL,
    status_changed_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    unsubscribed_at TIMESTAMP,
    UNIQUE (list_id, recipient_id)
);
INSERT INTO subscriptions_rebuilt SELECT id, account_id, list_id, recipient_id, status, source,
    unsubscribe_reason, confirmation_token_hash, created_at, status_changed_at, confirmed_at,
    unsubscribed_at FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_rebuilt RENAME TO subscriptions;
CREATE INDEX subscriptions_members ON subscriptions(list_id, status, recipient_id);
CREATE INDEX subscriptions_recipient ON subscriptions(recipient_id);
CREATE UNIQUE INDEX subscriptions_confirmation_token ON subscriptions(confirmation_token_hash)
    WHERE confirmation_token_hash IS NOT NULL;
