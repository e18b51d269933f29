-- Fewer b-tree entries and foreign-key checks per imported recipient
-- (decision 58). SQLite cannot drop a constraint, so the three tables are
-- rebuilt; no table refers to any of them.
--
-- account_id keeps its column (every query filters by it) but not its foreign
-- key: the row's list or recipient already belongs to the account, and
-- deleting an account still removes the rows through them.
-- The confirmation token is unique only where there is one: the NULLs of
-- every other subscription were an index entry each.
-- Field values are kept in their primary key's b-tree (WITHOUT ROWID), one
-- b-tree instead of a table and an index.

CREATE TABLE subscriptions_rebuilt (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL,
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
INSERT INTO subscriptions_rebuilt SELECT id, account_id, list_id, recipient_id, status, source,
    unsubscribe_reason, confirmation_token_hash, created_at, status_changed_at, confirmed_at,
    unsubscribed_at FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_rebuilt RENAME TO subscriptions;
CREATE INDEX subscriptions_members ON subscriptions(list_id, status, recipient_id);
CREATE INDEX subscriptions_recipient ON subscriptions(recipient_id);
CREATE UNIQUE INDEX subscriptions_confirmation_token ON subscriptions(confirmation_token_hash)
    WHERE confirmation_token_hash IS NOT NULL;

CREATE TABLE recipient_field_values_rebuilt (
    account_id BIGINT NOT NULL,
    recipient_id BIGINT NOT NULL REFERENCES recipients(id) ON DELETE CASCADE,
    field_number INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (recipient_id, field_number)
) WITHOUT ROWID;
INSERT INTO recipient_field_values_rebuilt SELECT account_id, recipient_id, field_number, value
    FROM recipient_field_values;
DROP TABLE recipient_field_values;
ALTER TABLE recipient_field_values_rebuilt RENAME TO recipient_field_values;

CREATE TABLE group_members_rebuilt (
    account_id BIGINT NOT NULL,
    group_id BIGINT NOT NULL REFERENCES list_groups(id) ON DELETE CASCADE,
    recipient_id BIGINT NOT NULL REFERENCES recipients(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (group_id, recipient_id)
) WITHOUT ROWID;
INSERT INTO group_members_rebuilt SELECT account_id, group_id, recipient_id, created_at
    FROM group_members;
DROP TABLE group_members;
ALTER TABLE group_members_rebuilt RENAME TO group_members;
CREATE INDEX group_members_recipient ON group_members(recipient_id);
