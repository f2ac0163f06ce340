-- The authorization code flow: browser sessions, failed-login counters, consent requests,
-- grants and authorization codes.
-- Times are Unix seconds (UTC). Lists of strings are JSON arrays in TEXT columns.
-- Every secret (session cookie, consent token, code) is stored only as lowercase hex SHA-256.

-- A signed-in browser: the cookie value's hash, so that a copy of the database cannot be
-- replayed as a cookie, and deleting the row signs the browser out on every instance.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

-- One row per failed login, counted per key ("account:<email>" or "ip:<address>") inside a
-- sliding window. In the database, so that every instance sees the same count.
CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at  INTEGER NOT NULL
);
CREATE INDEX login_failures_key ON login_failures(key, at);

-- A user's standing authorization of a client. One live grant per user and client (the
-- partial unique index); a revoked grant stays as a tombstone, so that nothing derived from
-- it (codes, and the tokens that carry its id) can come back to life when the user consents
-- again: that creates a new grant with a new id.
CREATE TABLE oauth_grants (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id    TEXT NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    scopes       TEXT NOT NULL,
    -- RFC 8707 resources the user has approved for this client.
    resources    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE UNIQUE INDEX oauth_grants_live ON oauth_grants(user_id, client_id) WHERE revoked_at IS NULL;
CREATE INDEX oauth_grants_user ON oauth_grants(user_id, created_at, id);
CREATE INDEX oauth_grants_client ON oauth_grants(client_id);

-- A pending authorization request waiting for the user's decision (10 minutes, single use).
CREATE TABLE consent_requests (
    token_hash            TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id             TEXT NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    redirect_uri          TEXT NOT NULL,
    scopes                TEXT NOT NULL,
    state                 TEXT,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    resource              TEXT,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    used_at               INTEGER
);
CREATE INDEX consent_requests_client ON consent_requests(client_id);
CREATE INDEX consent_requests_expiry ON consent_requests(expires_at);

-- RFC 6749 §4.1.2: an authorization code (about 60 seconds, single use), bound to the client,
-- the redirect URI and the PKCE challenge, and to the grant it was issued under.
CREATE TABLE authorization_codes (
    code_hash             TEXT PRIMARY KEY,
    grant_id              TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
    client_id             TEXT NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    user_id               TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri          TEXT NOT NULL,
    scopes                TEXT NOT NULL,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    resource              TEXT,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    used_at               INTEGER
);
CREATE INDEX authorization_codes_grant ON authorization_codes(grant_id);
CREATE INDEX authorization_codes_client ON authorization_codes(client_id);
