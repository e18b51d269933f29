-- The lists of a campaign that goes to several lists or groups, or leaves out
-- the members of some lists (ExactTarget's job/send with several <lists> and
-- <suppress>). Keep in step with ../../postgres/2026-11-23-000011_send_lists.
--
-- A campaign to one list with no exclusions has no rows here: its sends row
-- (list_id, group_ids) says it all. Otherwise every target is a row
-- (excluded false; group_ids, comma-separated list_groups ids, limit it to
-- members of those groups) and every excluded list is a row (excluded true):
-- each subscribed member of a target is mailed once, unless a member (of any
-- status) of an excluded list.
CREATE TABLE send_lists (
    id INTEGER PRIMARY KEY,
    send_id BIGINT NOT NULL REFERENCES sends(id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    list_id BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    group_ids TEXT NOT NULL DEFAULT '',
    excluded BOOLEAN NOT NULL
);
CREATE INDEX send_lists_send ON send_lists (send_id);
