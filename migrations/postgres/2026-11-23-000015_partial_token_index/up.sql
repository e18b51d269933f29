-- Only pending subscriptions carry a confirmation token, and the only query
-- on the column looks a token up by its digest: a partial unique index keeps
-- the tokens alone instead of an entry for every subscription.
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_confirmation_token_hash_key;
CREATE UNIQUE INDEX subscriptions_confirmation_token ON subscriptions(confirmation_token_hash)
    WHERE confirmation_token_hash IS NOT NULL;
