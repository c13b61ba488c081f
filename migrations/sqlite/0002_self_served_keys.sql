-- portcullis schema 2 (SQLite): self-served API keys (a user's own tokens).
--
-- A self-served key carries no groups of its own (its owner's are read at authentication), and
-- its name is unique among its owner's active self-served keys: revoking or rotating a key frees
-- its name (an expired one is revoked when its owner next creates a key).
ALTER TABLE api_keys
    ADD COLUMN self_served INTEGER NOT NULL DEFAULT 0 CHECK (self_served IN (0, 1));

CREATE UNIQUE INDEX api_keys_self_served_name ON api_keys (owner, name)
    WHERE self_served AND revoked_at IS NULL AND replaced_by IS NULL;
