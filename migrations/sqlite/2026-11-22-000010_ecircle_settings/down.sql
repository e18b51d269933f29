ALTER TABLE credentials DROP COLUMN email;
DROP TABLE list_decorations;
