-- The audit trail: security events (sign-ins, failed sign-ins, consents, revoked grants,
-- failed client authentication, refresh token reuse, code replay, key rotation, ...).
-- Times are Unix seconds (UTC). Rows hold identifiers and non-secret facts only: never a
-- password, secret, token, code or API key, nor an email address typed into the login form.
-- No foreign keys: the trail outlives the users, clients and grants it names. Rows older than
-- the configured retention are purged.
CREATE TABLE security_events (
    -- Increases with every event: the listing order (newest first) and its cursor.
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    -- A dotted name such as `login.failed` (the server's list of kinds is the reference).
    kind        TEXT NOT NULL,
    -- The organization the event belongs to (the user's, or the client's), when known.
    org_id      TEXT,
    user_id     TEXT,
    client_id   TEXT,
    grant_id    TEXT,
    -- The client address of the HTTP request, when the event came from one.
    ip          TEXT,
    -- A JSON object of further non-secret facts (the endpoint, a reason, a key id).
    detail      TEXT NOT NULL
);
CREATE INDEX security_events_time ON security_events(occurred_at);
CREATE INDEX security_events_kind ON security_events(kind, id);
CREATE INDEX security_events_org ON security_events(org_id, id) WHERE org_id IS NOT NULL;
CREATE INDEX security_events_user ON security_events(user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX security_events_client ON security_events(client_id, id) WHERE client_id IS NOT NULL;
