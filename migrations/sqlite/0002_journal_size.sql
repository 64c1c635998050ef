-- How many recent requests a project's journal keeps: NULL for the node's default
-- (--journal-size), 0 for none.
ALTER TABLE projects ADD COLUMN journal_size INTEGER CHECK (journal_size IS NULL OR journal_size >= 0);
