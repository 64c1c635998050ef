-- The parts of a project's OpenAPI document that belong to no endpoint (info, tags,
-- components…), JSON as the admin API takes them; NULL: none.
ALTER TABLE projects ADD COLUMN openapi TEXT;
