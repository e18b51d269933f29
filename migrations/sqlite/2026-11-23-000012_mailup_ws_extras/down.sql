DROP TABLE send_queue_positions;
DROP TABLE account_credits;
DROP TABLE send_excluded_groups;
ALTER TABLE messages DROP COLUMN is_template;
