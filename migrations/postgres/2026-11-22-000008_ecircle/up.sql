-- Addresses barred from one list (eCircle's group blacklist): a subscribe to
-- that list is refused, whatever other lists the address is on.
CREATE TABLE list_blocklist (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    list_id BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    email_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (list_id, email_key)
);

-- Free-form named properties of a list (eCircle's group properties).
CREATE TABLE list_properties (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    list_id BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (list_id, name)
);
