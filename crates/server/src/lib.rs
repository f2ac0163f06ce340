//! A self-hostable OAuth 2.0 authorization server, wire-compatible with the Telnyx OAuth API.
//!
//! `oauth-server` the binary is a thin shell over this library: [`cli`] parses the command line,
//! [`app::start`] runs the HTTP server, [`accounts`] backs the admin commands. Integration tests
//! start the same server in-process on `127.0.0.1:0`.
//!
//! The HTTP layer is [`routes`]; handlers are thin and call the domain (`oauth-core`) and the
//! storage trait (`oauth-store`). Every failure becomes an [`error::ApiError`].

pub mod accounts;
pub mod app;
pub mod audit;
pub mod cimd;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consent;
pub mod cors;
pub mod doctor;
pub mod error;
pub mod extract;
mod form;
pub mod html;
mod json;
pub mod lockouts;
pub mod log_pace;
mod login_budget;
pub mod maintenance;
pub mod metrics;
pub mod middleware;
pub mod oauth_request;
pub mod passwords;
pub mod peer;
pub mod rate_limit;
pub mod redis_url;
pub mod respond;
pub mod routes;
pub mod serve;
pub mod session;
pub mod signing;
pub mod state;
pub mod telemetry;
pub mod tokens;

pub use app::{start, start_with_clock, RunningServer};
pub use config::Config;
