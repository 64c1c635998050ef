-- A third mode, `staging`, and a project's environment values.
--
-- The mode's CHECK belongs to its column, so the column is replaced rather than the table:
-- rebuilding `projects` would delete the rows of every table that references it with
-- ON DELETE CASCADE (endpoints, changes, kv, datasets, api_keys). The old column is renamed
-- (its CHECK follows it), the new one added with the wider CHECK and filled from it, then
-- the old one dropped (a column's own CHECK does not keep it from being dropped).
ALTER TABLE projects RENAME COLUMN mode TO mode_0001;
ALTER TABLE projects ADD COLUMN mode TEXT NOT NULL DEFAULT 'development'
    CHECK (mode IN ('development', 'staging', 'production'));
UPDATE projects SET mode = mode_0001;
ALTER TABLE projects DROP COLUMN mode_0001;

-- A project's environment values, a JSON object of strings as the admin API takes it; NULL:
-- none. Its script reads them as `env`.
ALTER TABLE projects ADD COLUMN env TEXT;
