-- RFC 6749 §6: refresh tokens, rotated on every use (RFC 9700 §4.14.2).
-- Times are Unix seconds (UTC). The token is stored only as lowercase hex SHA-256.
-- A token belongs to a grant; all the refresh tokens of one grant are its family: presenting a
-- used one revokes the grant and the whole family. Deleting the grant (with its client or
-- user) deletes its refresh tokens.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    resource   TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Set when the token is exchanged for a new one; a second use is reuse.
    used_at    INTEGER,
    revoked_at INTEGER
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens(grant_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens(expires_at);
