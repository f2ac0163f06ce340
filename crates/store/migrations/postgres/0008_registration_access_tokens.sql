-- RFC 7592: the registration access token of a client registered through /oauth/register,
-- stored only as its SHA-256 (hex). Gone with its client.
CREATE TABLE registration_access_tokens (
    client_id TEXT PRIMARY KEY REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL
);
