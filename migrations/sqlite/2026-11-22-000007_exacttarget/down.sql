DROP TABLE export_batches;
DROP TABLE file_imports;
DROP TABLE send_senders;
DROP TABLE triggered_sends;
