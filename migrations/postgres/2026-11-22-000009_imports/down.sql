DROP TABLE import_row_fields;
DROP TABLE import_rows;
DROP TABLE import_processes;
