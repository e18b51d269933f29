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

DROP TABLE import_chunks;
