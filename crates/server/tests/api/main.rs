#![allow(clippy::unwrap_used, clippy::expect_used)]

//! HTTP tests: each test starts the real server in-process on 127.0.0.1:0 with its own SQLite
//! file, and talks to it over HTTP. One test binary for all of them.

mod support;

mod clients;
mod errors;
mod register;

mod authorize;
mod consent;
mod flow;
mod grants;
mod login;
