DROP INDEX subscriptions_confirmation_token;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_confirmation_token_hash_key
    UNIQUE (confirmation_token_hash);
ALTER TABLE group_members ADD CONSTRAINT group_members_account_id_fkey
    FOREIGN KEY (account_id) REFERENCES accounts(id) ON DELETE CASCADE;
ALTER TABLE recipient_field_values ADD CONSTRAINT recipient_field_values_account_id_fkey
    FOREIGN KEY (account_id) REFERENCES accounts(id) ON DELETE CASCADE;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_account_id_fkey
    FOREIGN KEY (account_id) REFERENCES accounts(id) ON DELETE CASCADE;
