-- Nothing reads a subscription's history by the subscription: the history is
-- read by recipient (its other index) or by account in id order, and no key
-- refers to it. The index cost every recorded change a b-tree insert, on the
-- writer of every subscribe and every imported row (decision 77).
DROP INDEX subscription_history_subscription;
