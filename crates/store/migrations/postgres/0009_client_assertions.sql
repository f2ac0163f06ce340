-- RFC 7523 client authentication (private_key_jwt): a client's public keys, given inline as a
-- JWK set (JSON text) or as the https URL of one. At most one of the two is set.
ALTER TABLE oauth_clients ADD COLUMN jwks TEXT;
ALTER TABLE oauth_clients ADD COLUMN jwks_uri TEXT;

-- The `jti` of every client assertion accepted, until the assertion expires: a second use of
-- one is a replay. Kept as the SHA-256 (hex) of the client id and the jti, so that the table
-- holds nothing a caller chose verbatim; shared by every instance on one database.
CREATE TABLE client_assertion_jtis (
    jti_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX client_assertion_jtis_expires_at ON client_assertion_jtis (expires_at);
