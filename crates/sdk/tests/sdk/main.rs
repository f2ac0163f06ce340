#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The SDK's tests, one binary. `server_*` modules drive the real server started in-process;
//! `mock_*` modules use a scripted local HTTP server for what the real one cannot show on demand
//! (retries, timeouts, token expiry) or does not implement yet.

#[cfg(feature = "blocking")]
mod blocking;
mod examples;
mod mock;
mod mock_credentials;
mod mock_hostile;
mod mock_options;
mod mock_paths;
mod mock_protocol;
mod mock_retries;
mod server;
mod server_clients;
mod server_errors;
mod server_oauth;
