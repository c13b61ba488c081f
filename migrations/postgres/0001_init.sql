-- portcullis schema 1 (PostgreSQL): users and API keys.
--
-- Only hashes are stored: an argon2id PHC string per user, and HMAC-SHA256 of each API key's
-- secret under a pepper that never reaches the database. Never a password, a key or a secret.
-- Lists (groups, scopes) are JSON arrays of strings.

CREATE TABLE users (
    name          TEXT        NOT NULL PRIMARY KEY,
    password_hash TEXT        NOT NULL,
    kind          TEXT        NOT NULL CHECK (kind IN ('user', 'application')),
    groups        JSONB       NOT NULL DEFAULT '[]',
    disabled      BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT        NOT NULL PRIMARY KEY,
    owner        TEXT        NOT NULL,
    owner_kind   TEXT        NOT NULL CHECK (owner_kind IN ('user', 'application')),
    name         TEXT        NOT NULL DEFAULT '',
    scopes       JSONB       NOT NULL DEFAULT '[]',
    groups       JSONB       NOT NULL DEFAULT '[]',
    created_at   TIMESTAMPTZ NOT NULL,
    created_by   TEXT,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    -- Rotation: the key this one replaced, and the key that replaced it.
    replaces     TEXT,
    replaced_by  TEXT,
    digest       BYTEA       NOT NULL CHECK (octet_length(digest) = 32)
);

-- `list(Some(owner))` reads this index in the order it returns.
CREATE INDEX api_keys_by_owner ON api_keys (owner, created_at, id);
