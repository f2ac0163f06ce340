#![allow(clippy::unwrap_used, clippy::expect_used)]

//! HTTP tests: each test starts the real server in-process on 127.0.0.1:0 with its own SQLite
//! file, and talks to it over HTTP. One test binary for all of them.

mod databases;
/// Fresh databases (PostgreSQL when `OAUTH_TEST_POSTGRES_URL` is set), shared with the storage
/// tests.
#[path = "../../../store/tests/support/mod.rs"]
mod db;
mod oauth_support;
mod support;

mod account_pages;
mod attacks;
mod audit;
mod authorize;
mod cimd;
mod client_assertion;
mod clients;
mod code_grant;
mod connections;
mod consent;
mod cors;
mod discovery;
mod errors;
mod flow;
mod grants;
mod hostile_input;
mod introspect;
mod jwks;
mod login;
mod management;
mod openapi;
mod operator;
mod rate_limits;
mod rate_limits_redis;
mod register;
mod review;
mod storms;
mod story;
mod token;
mod trust;
