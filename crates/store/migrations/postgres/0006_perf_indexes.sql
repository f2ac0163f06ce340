-- Client lists (`ORDER BY created_at, seq, client_id LIMIT .. OFFSET ..`): with client_id in
-- the index the rows come out of it in list order, so a page no longer sorts all of the
-- organization's clients first. It replaces the narrower index, which it contains.
CREATE INDEX oauth_clients_org_page ON oauth_clients(org_id, created_at, seq, client_id);
DROP INDEX oauth_clients_org;
