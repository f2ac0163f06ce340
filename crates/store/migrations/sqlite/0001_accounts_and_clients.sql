-- Accounts and the OAuth client registry.
-- Times are Unix seconds (UTC). Lists of strings are JSON arrays in TEXT columns.
-- Secrets (API keys, client secrets) are stored only as lowercase hex SHA-256.

-- Facts about this database that the server keeps once, such as whether the bootstrap admin
-- has been created.
CREATE TABLE server_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- Lower-cased on the way in, so uniqueness ignores case.
    email         TEXT NOT NULL UNIQUE,
    -- argon2id PHC string.
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX users_org ON users(org_id, created_at);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_keys_user ON api_keys(user_id);

CREATE TABLE oauth_clients (
    client_id    TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- The user who created the client (for registered clients, the registration
    -- organization's owner).
    user_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    client_type  TEXT NOT NULL,
    -- NULL for public clients.
    secret_hash  TEXT,
    require_pkce BOOLEAN NOT NULL,
    grant_types  TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    logo_uri     TEXT,
    policy_uri   TEXT,
    tos_uri      TEXT,
    token_endpoint_auth_method TEXT NOT NULL,
    verified     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
-- Lists are per organization, oldest first; clients created in the same second keep their
-- insertion order (rowid).
CREATE INDEX oauth_clients_org ON oauth_clients(org_id, created_at);
