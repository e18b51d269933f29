-- Failed logins, to slow down password guessing (MailUp access keys first).
-- Keep in step with ../../postgres/2026-11-22-000006_mailup_send.
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    protocol TEXT NOT NULL,
    username TEXT NOT NULL,
    failed_at TIMESTAMP NOT NULL
);
CREATE INDEX login_failures_user ON login_failures(account_id, protocol, username, failed_at);
