-- A browser that signed in to an account (a device cookie, stored only as its SHA-256 in hex):
-- its later password attempts for that account are counted under the device instead of the
-- account and the address, so that wrong passwords typed elsewhere cannot lock the owner out of
-- a browser they signed in with before. `used_at` is its last successful sign-in: a device
-- counts while that is within the configured lifetime.
CREATE TABLE login_devices (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    used_at    BIGINT NOT NULL
);
CREATE INDEX login_devices_user ON login_devices(user_id, used_at);
CREATE INDEX login_devices_used ON login_devices(used_at);
