-- A list's subject prefix, text and HTML headers and footers (eCircle's group
-- settings): the sender adds them to every message sent to the list.
CREATE TABLE list_decorations (
    list_id BIGINT PRIMARY KEY NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    subject_prefix TEXT NOT NULL,
    text_header TEXT NOT NULL,
    text_footer TEXT NOT NULL,
    html_header TEXT NOT NULL,
    html_footer TEXT NOT NULL
);

-- The address of an API user (eCircle's sendEmailToMe writes to it); empty
-- when it has none.
ALTER TABLE credentials ADD COLUMN email TEXT NOT NULL DEFAULT '';
