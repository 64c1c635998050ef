-- Users, tokens, projects, endpoints and the change history: the foundation schema.
-- Times are Unix milliseconds. Endpoint definitions are the JSON the admin API takes
-- (without `id`), so new handler kinds need no schema change.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
    created_at    INTEGER NOT NULL
);

CREATE TABLE tokens (
    id         TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('session', 'api')),
    name       TEXT    NOT NULL,
    hash       BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX tokens_by_user ON tokens (user_id, kind);

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    owner_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    mode        TEXT    NOT NULL CHECK (mode IN ('development', 'production')),
    revision    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE endpoints (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id         TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    definition TEXT    NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX endpoints_in_order ON endpoints (project_id, position);

CREATE TABLE changes (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    revision   INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    actor_id   INTEGER,
    summary    TEXT    NOT NULL,
    PRIMARY KEY (project_id, revision)
);
