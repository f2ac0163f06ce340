-- Access-token signing keys and revoked access tokens.
-- Times are Unix seconds (UTC).

-- Every instance signs with these keys. The private half is sealed (AES-256-GCM under the
-- key-encryption key from the configuration, with the kid as associated data); the public half
-- is a JWK, as /oauth/jwks shows it.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    public_jwk   TEXT NOT NULL,
    sealed_private_key TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    -- The key signs from this time on (a rotated-in key is published first, used later).
    active_from  INTEGER NOT NULL,
    -- NULL while current; set when a newer key takes over, to the time the last token this key
    -- signed expires. Past it the key leaves /oauth/jwks and is purged.
    retire_after INTEGER
);
CREATE INDEX signing_keys_retire ON signing_keys(retire_after);

-- RFC 7009: a revoked access token is remembered by its jti until it would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    exp        INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_exp ON revoked_tokens(exp);
