-- A project's CORS policy and rate limit, JSON as the admin API takes them; NULL: none.
ALTER TABLE projects ADD COLUMN cors TEXT;
ALTER TABLE projects ADD COLUMN rate_limit TEXT;
