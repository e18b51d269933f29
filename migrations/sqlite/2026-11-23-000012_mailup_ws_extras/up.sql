-- MailUpSend templates: a newsletter kept as a model for others (GetTemplates).
ALTER TABLE messages ADD COLUMN is_template BOOLEAN NOT NULL DEFAULT FALSE;

-- Groups whose members a list campaign leaves out (MailUp's `exclude`).
CREATE TABLE send_excluded_groups (
    send_id BIGINT NOT NULL REFERENCES sends(id) ON DELETE CASCADE,
    group_id BIGINT NOT NULL REFERENCES list_groups(id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    PRIMARY KEY (send_id, group_id)
);

-- An account's message credits per channel ('email', 'sms'), set by the
-- operator and decremented as messages are sent. No row: unlimited.
CREATE TABLE account_credits (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    balance BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (account_id, channel)
);

-- An account's campaign queue put in order (MailUp's SetNewsletterQueueOrder):
-- a send here waits while one of the account's sends with a lower position is
-- sending. Sends without a row are not held.
CREATE TABLE send_queue_positions (
    send_id BIGINT PRIMARY KEY REFERENCES sends(id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    position BIGINT NOT NULL
);
CREATE INDEX send_queue_positions_account ON send_queue_positions(account_id, position);
