-- A project's script: the JavaScript module whose routes it serves beside its endpoints
-- (NULL: none).
ALTER TABLE projects ADD COLUMN script TEXT;

-- Scripts' key-value stores, one per project: JSON values by key. Gone with the project.
CREATE TABLE kv (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (project_id, key)
) WITHOUT ROWID;
