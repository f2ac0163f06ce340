//! The consent decision: `POST /oauth/grants`.
//!
//! `cargo run -p telnyx-oauth --example create_grant <consent_token>`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

use telnyx_oauth::CreateGrantRequest;

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let arg = std::env::args().nth(1);
    let response = client
        .oauth()
        .grants(&CreateGrantRequest::new(
            true,
            arg.unwrap_or_else(|| "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.example".into()),
        ))
        .await?;
    println!("{response:#?}");
    Ok(())
}
