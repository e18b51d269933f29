DROP TABLE system_messages;
DROP TABLE caller_ips;
