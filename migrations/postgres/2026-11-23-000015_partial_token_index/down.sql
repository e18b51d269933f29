DROP INDEX subscriptions_confirmation_token;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_confirmation_token_hash_key
    UNIQUE (confirmation_token_hash);
