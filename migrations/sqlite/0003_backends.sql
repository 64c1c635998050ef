-- A project's backends (named groups of upstream targets its proxy endpoints forward to),
-- as the JSON array the admin API takes. Few per project and always read with it.
ALTER TABLE projects ADD COLUMN backends TEXT NOT NULL DEFAULT '[]';
