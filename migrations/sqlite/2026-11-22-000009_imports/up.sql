-- Import processes (MailUp's WSMailUpImport and the batch import folder). Keep in
-- step with ../../postgres/2026-11-22-000009_imports.
--
-- A process is prepared with its rows staged in import_rows and
-- import_row_fields, then runs in chunks: each chunk's changes, the counters and
-- rows_done commit together, so a restart resumes after the last chunk.
CREATE TABLE import_processes (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    list_id BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    -- Comma-separated public group numbers to add the recipients to.
    group_numbers TEXT NOT NULL DEFAULT '',
    import_type INTEGER NOT NULL,
    as_pending BOOLEAN NOT NULL,
    confirm_email BOOLEAN NOT NULL,
    as_opt_out BOOLEAN NOT NULL,
    force_opt_in BOOLEAN NOT NULL,
    replace_groups BOOLEAN NOT NULL,
    confirm_message_id BIGINT,
    source TEXT NOT NULL,
    actor TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('prepared', 'queued', 'running', 'done', 'failed')),
    total_rows BIGINT NOT NULL,
    staged_rows BIGINT NOT NULL,
    rows_done BIGINT NOT NULL DEFAULT 0,
    new_email BIGINT NOT NULL DEFAULT 0,
    new_mobile BIGINT NOT NULL DEFAULT 0,
    existing_email BIGINT NOT NULL DEFAULT 0,
    existing_mobile BIGINT NOT NULL DEFAULT 0,
    optout_email BIGINT NOT NULL DEFAULT 0,
    optout_mobile BIGINT NOT NULL DEFAULT 0,
    -- Rows refused while reading the document, one line each (capped).
    rejected_rows BIGINT NOT NULL DEFAULT 0,
    report TEXT NOT NULL DEFAULT '',
    confirmation_sent BOOLEAN NOT NULL DEFAULT FALSE,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    ended_at TIMESTAMP
);
CREATE INDEX import_processes_account ON import_processes(account_id, list_id, id);
CREATE INDEX import_processes_waiting ON import_processes(state, id);

CREATE TABLE import_rows (
    process_id BIGINT NOT NULL REFERENCES import_processes(id) ON DELETE CASCADE,
    row_no BIGINT NOT NULL,
    email TEXT,
    email_key TEXT,
    mobile_prefix TEXT,
    mobile_number TEXT,
    mobile_key TEXT,
    -- Filled in while the row is applied.
    recipient_id BIGINT,
    created BOOLEAN NOT NULL DEFAULT FALSE,
    blocked BOOLEAN NOT NULL DEFAULT FALSE,
    previous_status TEXT,
    previous_reason INTEGER,
    target_status TEXT,
    PRIMARY KEY (process_id, row_no)
);

CREATE TABLE import_row_fields (
    process_id BIGINT NOT NULL REFERENCES import_processes(id) ON DELETE CASCADE,
    row_no BIGINT NOT NULL,
    field_number INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (process_id, row_no, field_number)
);
