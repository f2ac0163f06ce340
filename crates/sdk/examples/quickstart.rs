//! The seed's setup and error handling: configure a client from the environment, create an
//! OAuth client, list every client, and tell the error classes apart.
//!
//! `cargo run -p telnyx-oauth --example quickstart`, with TELNYX_BASE_URL and TELNYX_API_KEY in
//! the environment.

use futures_util::TryStreamExt;
use telnyx_oauth::{Client, ClientType, CreateOAuthClient, Error, GrantType};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // TELNYX_API_KEY (required by the API) and TELNYX_BASE_URL (default https://api.telnyx.com/v2).
    let client = Client::from_env()?;

    let created = client
        .oauth_clients()
        .create(&CreateOAuthClient::new(
            "Quickstart client",
            ClientType::Confidential,
            [GrantType::ClientCredentials],
            ["admin"],
        ))
        .await;
    match created {
        Ok(c) => println!(
            "created {} (secret shown once: {:?})",
            c.client_id, c.client_secret
        ),
        Err(Error::Connection(_)) => println!("Network error: check connectivity and retry"),
        Err(Error::RateLimit(e)) => println!(
            "Rate limited; Retry-After: {:?}",
            e.headers.get("retry-after")
        ),
        Err(Error::UnprocessableEntity(e)) => println!("Validation error: {e}"),
        Err(e) => println!("API error {:?}: {e}", e.status()),
    }

    let all: Vec<_> = client
        .oauth_clients()
        .list_auto(&Default::default())
        .try_collect()
        .await?;
    for c in &all {
        println!("{} {} {:?}", c.client_id, c.name, c.allowed_grant_types);
    }
    Ok(())
}
