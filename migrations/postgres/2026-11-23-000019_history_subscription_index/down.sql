CREATE INDEX subscription_history_subscription ON subscription_history(subscription_id, id);
