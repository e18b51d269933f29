-- ExactTarget triggered-send definitions: an external key (CustomerKey) that
-- API calls fire, naming the message, optionally a list (for its sender and
-- unsubscribe link) and a sender that overrides the message's.
CREATE TABLE triggered_sends (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    customer_key TEXT NOT NULL,
    message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    list_id BIGINT REFERENCES lists(id) ON DELETE SET NULL,
    from_name TEXT NOT NULL DEFAULT '',
    from_email TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, customer_key)
);

-- A sender chosen for one send (ExactTarget's from overrides), in place of
-- the message's and the list's.
CREATE TABLE send_senders (
    send_id BIGINT PRIMARY KEY REFERENCES sends(id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    from_name TEXT NOT NULL,
    from_email TEXT NOT NULL
);

-- Imports of subscriber files from the account's import folder into a list:
-- their outcome, for ExactTarget's importstatus.
CREATE TABLE file_imports (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    list_id BIGINT REFERENCES lists(id) ON DELETE SET NULL,
    file_name TEXT NOT NULL,
    status TEXT NOT NULL,
    imported BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Exports written as zip files to the account's export folder (ExactTarget's
-- BulkAsync calls), asked about by id (batch inquire).
CREATE TABLE export_batches (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    file_name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
