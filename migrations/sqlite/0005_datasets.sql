-- Datasets: tables uploaded to a project, kept as the bytes that were uploaded (in chunks)
-- with the declared column types, and parsed again when the node starts. A version is
-- written beside the current one while it is uploaded (`current` = 0) and becomes current
-- in the commit of the project revision that swaps it in; the old one goes in that same
-- transaction. Versions left at 0 by an upload that never finished are dropped at start.
CREATE TABLE datasets (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    format     TEXT NOT NULL,
    -- The declared column types, JSON: [["zip", "text"], ...].
    types      TEXT NOT NULL,
    bytes      INTEGER NOT NULL DEFAULT 0,
    rows       INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    current    INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX datasets_current ON datasets (project_id, name) WHERE current = 1;

CREATE TABLE dataset_chunks (
    dataset_id INTEGER NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    data       BLOB NOT NULL,
    PRIMARY KEY (dataset_id, seq)
) WITHOUT ROWID;
