DROP TABLE list_properties;
DROP TABLE list_blocklist;
