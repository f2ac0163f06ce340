//! The real `oauth-server` binary under faults: the database unreachable and back, `kill -9`
//! during a write load, and two instances on one PostgreSQL database. The PostgreSQL tests run
//! when `OAUTH_TEST_POSTGRES_URL` is set and say they were skipped otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Fresh databases, shared with the storage tests.
#[path = "../../../store/tests/support/mod.rs"]
mod db;

mod durability;
mod faults;
mod instances;
mod races;
mod support;
