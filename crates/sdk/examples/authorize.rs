//! The authorization endpoint: `GET /oauth/authorize`. Prints where the server redirects.
//!
//! `cargo run -p telnyx-oauth --example authorize [client_id] [redirect_uri]`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

use telnyx_oauth::AuthorizeParams;

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let mut args = std::env::args().skip(1);
    let client_id = args
        .next()
        .unwrap_or_else(|| "550e8400-e29b-41d4-a716-446655440000".into());
    let redirect_uri = args.next().unwrap_or_else(|| "https://example.com".into());
    let result = client
        .oauth()
        .retrieve_authorize(&AuthorizeParams::new(client_id, redirect_uri))
        .await?;
    println!("{result:#?}");
    Ok(())
}
