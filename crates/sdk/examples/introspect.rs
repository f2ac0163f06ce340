//! Token introspection (RFC 7662): `POST /oauth/introspect`.
//!
//! `cargo run -p telnyx-oauth --example introspect <token>`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

use telnyx_oauth::IntrospectRequest;

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let arg = std::env::args().nth(1);
    let response = client
        .oauth()
        .introspect(&IntrospectRequest::new(arg.unwrap_or_else(|| {
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.example".into()
        })))
        .await?;
    println!("{response:#?}");
    Ok(())
}
