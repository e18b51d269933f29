DROP TABLE hit_journal_segments;
