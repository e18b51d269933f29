-- Foundation schema (SQLite). Keep in step with ../../postgres/2026-11-22-000001_foundation:
-- a test proves both backends give the same tables and columns.

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    console_id BIGINT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    next_list_number BIGINT NOT NULL DEFAULT 1,
    next_group_number BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE account_hosts (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    host TEXT NOT NULL UNIQUE
);
CREATE INDEX account_hosts_account ON account_hosts(account_id);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, username)
);

CREATE TABLE credentials (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('mailup_ws', 'exacttarget', 'ecircle', 'api_key')),
    realm TEXT NOT NULL DEFAULT '',
    username TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (kind, realm, username)
);
CREATE INDEX credentials_account ON credentials(account_id);

CREATE TABLE api_sessions (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    credential_id BIGINT REFERENCES credentials(id) ON DELETE CASCADE,
    user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
    protocol TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    idle_timeout_seconds BIGINT,
    last_used_at TIMESTAMP NOT NULL
);
CREATE INDEX api_sessions_expiry ON api_sessions(expires_at);

CREATE TABLE lists (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    guid TEXT NOT NULL,
    name TEXT NOT NULL,
    sender_name TEXT NOT NULL DEFAULT '',
    sender_email TEXT NOT NULL DEFAULT '',
    reply_to TEXT NOT NULL DEFAULT '',
    double_opt_in BOOLEAN NOT NULL DEFAULT TRUE,
    description TEXT NOT NULL DEFAULT '',
    subscribed_count BIGINT NOT NULL DEFAULT 0,
    pending_count BIGINT NOT NULL DEFAULT 0,
    unsubscribed_count BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, number),
    UNIQUE (account_id, guid)
);

CREATE TABLE list_groups (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    list_id BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    name TEXT NOT NULL,
    notes TEXT NOT NULL DEFAULT '',
    member_count BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, number)
);
CREATE INDEX list_groups_list ON list_groups(list_id);

CREATE TABLE fields (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    number INTEGER NOT NULL CHECK (number BETWEEN 1 AND 39),
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    default_value TEXT NOT NULL DEFAULT '',
    UNIQUE (account_id, number),
    UNIQUE (account_id, name_key)
);

CREATE TABLE recipients (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    email TEXT,
    email_key TEXT,
    mobile_prefix TEXT,
    mobile_number TEXT,
    mobile_key TEXT,
    email_blocklisted BOOLEAN NOT NULL DEFAULT FALSE,
    sms_blocklisted BOOLEAN NOT NULL DEFAULT FALSE,
    bounced BOOLEAN NOT NULL DEFAULT FALSE,
    ext_id TEXT,
    erased_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, email_key),
    UNIQUE (account_id, mobile_key)
);

CREATE TABLE recipient_field_values (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    recipient_id BIGINT NOT NULL REFERENCES recipients(id) ON DELETE CASCADE,
    field_number INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (recipient_id, field_number)
);

CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    list_id BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    recipient_id BIGINT NOT NULL REFERENCES recipients(id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'subscribed', 'unsubscribed')),
    source TEXT NOT NULL,
    unsubscribe_reason INTEGER,
    confirmation_token_hash TEXT UNIQUE,
    created_at TIMESTAMP NOT NULL,
    status_changed_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    unsubscribed_at TIMESTAMP,
    UNIQUE (list_id, recipient_id)
);
CREATE INDEX subscriptions_members ON subscriptions(list_id, status, recipient_id);
CREATE INDEX subscriptions_recipient ON subscriptions(recipient_id);

CREATE TABLE group_members (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    group_id BIGINT NOT NULL REFERENCES list_groups(id) ON DELETE CASCADE,
    recipient_id BIGINT NOT NULL REFERENCES recipients(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (group_id, recipient_id)
);
CREATE INDEX group_members_recipient ON group_members(recipient_id);

-- Append-only: ids are kept as plain values (no foreign keys) so the history
-- outlives a deleted list or an erased recipient.
CREATE TABLE subscription_history (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL,
    subscription_id BIGINT NOT NULL,
    list_id BIGINT NOT NULL,
    recipient_id BIGINT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason INTEGER,
    actor TEXT NOT NULL,
    channel TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX subscription_history_subscription ON subscription_history(subscription_id, id);
CREATE INDEX subscription_history_recipient ON subscription_history(account_id, recipient_id, id);

CREATE TRIGGER subscription_history_no_update BEFORE UPDATE ON subscription_history
BEGIN SELECT RAISE(ABORT, 'subscription_history is append-only'); END;
CREATE TRIGGER subscription_history_no_delete BEFORE DELETE ON subscription_history
BEGIN SELECT RAISE(ABORT, 'subscription_history is append-only'); END;
