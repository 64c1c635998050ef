-- A project's auth policy, JSON (`{"type": "api_key", ...}`); NULL: `none`.
ALTER TABLE projects ADD COLUMN auth TEXT;

-- API keys of projects whose policy is `api_key`: only the SHA-256 of each key is kept (a
-- key is 256 random bits, shown once when it is made). A key goes, or comes, with a project
-- revision. Gone with the project.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    -- JSON array of the scopes the key grants.
    scopes     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX api_keys_project ON api_keys (project_id);
CREATE UNIQUE INDEX api_keys_name ON api_keys (project_id, name);
