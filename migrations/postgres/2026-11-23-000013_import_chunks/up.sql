-- An import's rows are staged as one JSON document per chunk instead of one
-- table row per recipient and field: staging writes a few large rows, and the
-- runner unpacks a chunk into temporary tables while it applies it.
CREATE TABLE import_chunks (
    process_id BIGINT NOT NULL REFERENCES import_processes(id) ON DELETE CASCADE,
    first_row BIGINT NOT NULL,
    last_row BIGINT NOT NULL,
    -- [[row_no, email, email_key, mobile_prefix, mobile_number, mobile_key], …]
    rows TEXT NOT NULL,
    -- [[row_no, field_number, value], …]
    fields TEXT NOT NULL,
    PRIMARY KEY (process_id, first_row)
);

-- Rows still to apply move over in chunks of 5,000, the size the runner used.
INSERT INTO import_chunks (process_id, first_row, last_row, rows, fields)
SELECT r.process_id, ((r.row_no - 1) / 5000) * 5000 + 1, MAX(r.row_no),
    json_agg(json_build_array(r.row_no, r.email, r.email_key, r.mobile_prefix,
        r.mobile_number, r.mobile_key) ORDER BY r.row_no)::text,
    '[]'
FROM import_rows r
JOIN import_processes p ON p.id = r.process_id
WHERE r.row_no > p.rows_done
GROUP BY r.process_id, (r.row_no - 1) / 5000;

UPDATE import_chunks SET fields = COALESCE((
    SELECT json_agg(json_build_array(f.row_no, f.field_number, f.value))::text
    FROM import_row_fields f
    WHERE f.process_id = import_chunks.process_id
      AND f.row_no BETWEEN import_chunks.first_row AND import_chunks.last_row), '[]');

DROP TABLE import_row_fields;
DROP TABLE import_rows;
