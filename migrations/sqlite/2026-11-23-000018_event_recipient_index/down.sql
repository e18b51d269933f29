DROP INDEX delivery_events_recipient;
CREATE INDEX delivery_events_recipient ON delivery_events(recipient_id, created_at);
