-- The SHA-256 of a dataset version's uploaded bytes, 64 lowercase hex digits, recorded when
-- its upload has been read whole (before the commit that makes it current), so that a
-- client can tell whether a file of its own is the server's version without sending it.
--
-- Versions stored before this migration keep NULL: SQLite has no SHA-256 function. The node
-- parses every current version from its chunks at start anyway, and computes the digest of
-- such a version from them as it reads them.
ALTER TABLE datasets ADD COLUMN sha256 TEXT
    CHECK (sha256 IS NULL OR (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'));
