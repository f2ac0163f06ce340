//! Dynamic client registration (RFC 7591): `POST /oauth/register`.
//!
//! `cargo run -p telnyx-oauth --example register`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

use telnyx_oauth::RegistrationRequest;

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let response = client
        .oauth()
        .register(
            &RegistrationRequest::new()
                .client_name("Registered from the Rust SDK")
                .redirect_uris(["https://example.com/callback"]),
        )
        .await?;
    println!("{response:#?}");
    Ok(())
}
