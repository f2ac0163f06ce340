-- Nothing to change on SQLite: `oauth_clients_org (org_id, created_at)` ends with the rowid,
-- so client lists (`ORDER BY created_at, rowid, client_id`) already come out of it in order,
-- with no sort. This file keeps the migration numbers of both engines in step
-- (PostgreSQL's 0006 adds the equivalent index there).
SELECT 1;
