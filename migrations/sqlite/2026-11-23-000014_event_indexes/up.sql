-- No query reads delivery_events by delivery (reports read the per-send and
-- per-recipient aggregates, the event store is read by account and time, send,
-- recipient and kind): the index cost a b-tree insert at a random place for
-- every event.
DROP INDEX delivery_events_delivery;
