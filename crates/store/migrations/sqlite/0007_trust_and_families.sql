-- The trust model and token families.
--
-- Third-party clients (registered through /oauth/register) belong to no user and to an
-- organization no user is a member of, so no management credential reaches them. Clients
-- registered before this migration (known by their client.registered security event) move
-- there; their owner is cleared.
ALTER TABLE oauth_clients ADD COLUMN origin TEXT NOT NULL DEFAULT 'management';
INSERT INTO organizations (id, name, created_at)
VALUES ('org_third_party_clients', '(third-party clients)', 0);
UPDATE oauth_clients
SET origin = 'registration', org_id = 'org_third_party_clients', user_id = ''
WHERE client_id IN (
    SELECT client_id FROM security_events
    WHERE kind = 'client.registered' AND client_id IS NOT NULL
);

-- A token family: the refresh tokens (and the access tokens) descending from one
-- authorization code. A replayed code or a reused refresh token revokes its family, not every
-- family of the grant; the family's expires_at bounds every refresh token in it (an absolute
-- lifetime, whatever the rotations).
CREATE TABLE token_families (
    id         TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX token_families_grant ON token_families(grant_id);
CREATE INDEX token_families_expiry ON token_families(expires_at);

-- NULL for codes and tokens from before families: those fall back to their grant.
ALTER TABLE authorization_codes ADD COLUMN family_id TEXT;
ALTER TABLE refresh_tokens ADD COLUMN family_id TEXT;
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

-- The pending consent requests of one user are bounded: the oldest beyond the bound go.
CREATE INDEX consent_requests_user ON consent_requests(user_id, created_at);
