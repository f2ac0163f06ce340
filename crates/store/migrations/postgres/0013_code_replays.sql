-- When a used authorization code was presented again by its own client (RFC 6749 §4.1.2): the
-- replay is detected, recorded and answered once per code, and a later presentation is an
-- unknown code, so that a client repeating its own spent code cannot grow the audit trail.
ALTER TABLE authorization_codes ADD COLUMN replayed_at BIGINT;
