-- Caller IPs registered per account and web service (MailUp's FrontEnd and
-- WSMailupImport allow-lists).
CREATE TABLE caller_ips (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    ip TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, service, ip)
);

-- Messages the server sends on its own (double opt-in confirmation, welcome),
-- found by a key such as 'confirmation:list:3'.
CREATE TABLE system_messages (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    UNIQUE (account_id, key)
);
