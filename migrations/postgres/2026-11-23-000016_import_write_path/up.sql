-- Fewer index entries and foreign-key checks per imported recipient
-- (decision 58). account_id keeps its column (every query filters by it) but
-- not its foreign key: the row's list or recipient already belongs to the
-- account (each key checked here was a trigger running its own query per
-- row), and deleting an account still removes the rows through them. The
-- confirmation token is unique only where there is one.
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_account_id_fkey;
ALTER TABLE recipient_field_values DROP CONSTRAINT recipient_field_values_account_id_fkey;
ALTER TABLE group_members DROP CONSTRAINT group_members_account_id_fkey;
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_confirmation_token_hash_key;
CREATE UNIQUE INDEX subscriptions_confirmation_token ON subscriptions(confirmation_token_hash)
    WHERE confirmation_token_hash IS NOT NULL;
