-- Only pending subscriptions carry a confirmation token, and the only query
-- on the column looks a token up by its digest. As a column UNIQUE
-- constraint it indexed every subscription, so each direct subscribe also
-- inserted a NULL key; a partial unique index keeps the tokens alone. SQLite
-- cannot drop a column constraint, so the table is rebuilt (no table refers
-- to subscriptions, so dropping the old one touches nothing else).
CREATE TABLE subscriptions_rebuilt (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    list_id BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    recipient_id BIGINT NOT NULL REFERENCES recipients(id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'subscribed', 'unsubscribed')),
    source TEXT NOT NULL,
    unsubscribe_reason INTEGER,
    confirmation_token_hash TEXT,
    created_at TIMESTAMP NOT NULL,
    status_changed_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    unsubscribed_at TIMESTAMP,
    UNIQUE (list_id, recipient_id)
);
INSERT INTO subscriptions_rebuilt (id, account_id, list_id, recipient_id, status, source,
    unsubscribe_reason, confirmation_token_hash, created_at, status_changed_at,
    confirmed_at, unsubscribed_at)
SELECT id, account_id, list_id, recipient_id, status, source,
    unsubscribe_reason, confirmation_token_hash, created_at, status_changed_at,
    confirmed_at, unsubscribed_at
FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_rebuilt RENAME TO subscriptions;
CREATE INDEX subscriptions_members ON subscriptions(list_id, status, recipient_id);
CREATE INDEX subscriptions_recipient ON subscriptions(recipient_id);
CREATE UNIQUE INDEX subscriptions_confirmation_token ON subscriptions(confirmation_token_hash)
    WHERE confirmation_token_hash IS NOT NULL;
