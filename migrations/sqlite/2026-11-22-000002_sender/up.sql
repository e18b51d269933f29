-- The sender (SQLite): messages, sends, the outbox of deliveries, their events,
-- providers and throttles. Keep in step with ../../postgres/2026-11-22-000002_sender.

-- Secrets of this installation (shared by every process on the database), such as
-- the key that signs links.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Account-wide template variables.
CREATE TABLE variables (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
);

CREATE TABLE providers (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    kind TEXT NOT NULL CHECK (kind IN ('smtp', 'file', 'http', 'log')),
    config TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE provider_defaults (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    category TEXT NOT NULL CHECK (category IN ('transactional', 'otp', 'promotional')),
    provider_id BIGINT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
    PRIMARY KEY (account_id, channel, category)
);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    dialect TEXT NOT NULL CHECK (dialect IN ('jinja', 'exacttarget', 'ecircle', 'mailup')),
    name TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    html TEXT,
    text TEXT,
    from_name TEXT NOT NULL DEFAULT '',
    from_email TEXT NOT NULL DEFAULT '',
    reply_to TEXT NOT NULL DEFAULT '',
    headers TEXT NOT NULL DEFAULT '{}',
    list_id BIGINT REFERENCES lists(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX messages_account ON messages(account_id, id);

CREATE TABLE sends (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    message_id BIGINT NOT NULL REFERENCES messages(id),
    kind TEXT NOT NULL CHECK (kind IN ('campaign', 'single', 'system', 'otp')),
    lane INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'sending', 'paused', 'completed', 'cancelled')),
    list_id BIGINT REFERENCES lists(id) ON DELETE SET NULL,
    group_ids TEXT NOT NULL DEFAULT '',
    field_filter TEXT NOT NULL DEFAULT '[]',
    params TEXT NOT NULL DEFAULT '{}',
    provider_id BIGINT REFERENCES providers(id) ON DELETE SET NULL,
    idempotency_key TEXT,
    scheduled_at TIMESTAMP,
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    expansion_cursor BIGINT NOT NULL DEFAULT 0,
    expanded BOOLEAN NOT NULL DEFAULT FALSE,
    expansion_lease_until TIMESTAMP,
    to_send BIGINT NOT NULL DEFAULT 0,
    sent BIGINT NOT NULL DEFAULT 0,
    deferred BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    bounced BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, idempotency_key)
);
CREATE INDEX sends_work ON sends(status, expanded);

-- The outbox: one row per message per recipient.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    send_id BIGINT NOT NULL REFERENCES sends(id) ON DELETE CASCADE,
    recipient_id BIGINT,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    address TEXT NOT NULL,
    lane INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'unknown', 'cancelled')),
    message_id TEXT NOT NULL,
    params TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    last_reply TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    UNIQUE (send_id, recipient_id)
);
CREATE INDEX deliveries_claim ON deliveries(lane, next_attempt_at, id)
    WHERE state IN ('queued', 'deferred', 'unknown');
CREATE INDEX deliveries_lease ON deliveries(lease_until) WHERE state = 'sending';
CREATE INDEX deliveries_send ON deliveries(send_id, state);

-- Append-only log of what happened to each delivery.
CREATE TABLE delivery_events (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL,
    send_id BIGINT NOT NULL,
    delivery_id BIGINT NOT NULL,
    recipient_id BIGINT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX delivery_events_send ON delivery_events(send_id, kind);
CREATE INDEX delivery_events_delivery ON delivery_events(delivery_id);

-- Token buckets (per provider, per recipient domain), shared by every process.
CREATE TABLE throttles (
    bucket TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
