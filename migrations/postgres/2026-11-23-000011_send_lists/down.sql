DROP TABLE send_lists;
