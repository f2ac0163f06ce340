-- How many OAuth clients each organization holds, kept by the writes that create clients
-- through the management API and delete them, so that the per-organization cap
-- (`max_clients_per_organization`) is one conditional update instead of a count of the
-- organization's clients on every creation.
ALTER TABLE organizations ADD COLUMN client_count BIGINT NOT NULL DEFAULT 0;
UPDATE organizations SET client_count =
    (SELECT COUNT(*) FROM oauth_clients WHERE oauth_clients.org_id = organizations.id);
