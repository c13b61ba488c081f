-- portcullis schema 1 (SQLite): users and API keys.
--
-- Only hashes are stored: an argon2id PHC string per user, and HMAC-SHA256 of each API key's
-- secret under a pepper that never reaches the database. Never a password, a key or a secret.
-- Times are microseconds since the Unix epoch (UTC), so they sort and compare as integers.
-- Lists (groups, scopes) are JSON arrays of strings.

CREATE TABLE users (
    name          TEXT    NOT NULL PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('user', 'application')),
    groups        TEXT    NOT NULL DEFAULT '[]',
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    owner        TEXT    NOT NULL,
    owner_kind   TEXT    NOT NULL CHECK (owner_kind IN ('user', 'application')),
    name         TEXT    NOT NULL DEFAULT '',
    scopes       TEXT    NOT NULL DEFAULT '[]',
    groups       TEXT    NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL,
    created_by   TEXT,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER,
    -- Rotation: the key this one replaced, and the key that replaced it.
    replaces     TEXT,
    replaced_by  TEXT,
    digest       BLOB    NOT NULL CHECK (length(digest) = 32)
) STRICT;

-- `list(Some(owner))` reads this index in the order it returns.
CREATE INDEX api_keys_by_owner ON api_keys (owner, created_at, id);
