-- A metadata-document client id is shared by every installation of an app: its grants are kept
-- per installation (the redirect URI, a loopback one without its port), so that revoking one
-- leaves the others. Every other client has one installation, the empty string.
ALTER TABLE oauth_grants ADD COLUMN installation TEXT NOT NULL DEFAULT '';
DROP INDEX oauth_grants_live;
CREATE UNIQUE INDEX oauth_grants_live ON oauth_grants(user_id, client_id, installation) WHERE revoked_at IS NULL;

-- OpenID Connect Dynamic Client Registration's application_type (web or native), as a
-- registration or a metadata document sent it; NULL when it said nothing.
ALTER TABLE oauth_clients ADD COLUMN application_type TEXT;
