-- The unsubscriber exports (MailUp's export file, ExactTarget's
-- ChannelUnsubscribes) page through an account's changes to `unsubscribed`
-- in id order. With no index for them they walked the account's whole
-- history, every subscribe included, to find the few unsubscribes. Only
-- unsubscribes are indexed, so subscribes and imports pay nothing for it
-- (decision 79). The query names the status as a literal (decision 13).
CREATE INDEX subscription_history_unsubscribes ON subscription_history(account_id, id)
    WHERE to_status = 'unsubscribed';
