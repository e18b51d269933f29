CREATE INDEX delivery_events_delivery ON delivery_events(delivery_id);
