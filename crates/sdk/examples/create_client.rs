//! Create an OAuth client: `POST /oauth_clients`.
//!
//! `cargo run -p telnyx-oauth --example create_client`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

use telnyx_oauth::{ClientType, CreateOAuthClient, GrantType};

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let oauth_client = client
        .oauth_clients()
        .create(&CreateOAuthClient::new(
            "My OAuth client",
            // The seed shows a public client; client_credentials needs a confidential one.
            ClientType::Confidential,
            [GrantType::ClientCredentials],
            ["admin"],
        ))
        .await?;
    println!("{oauth_client:#?}");
    Ok(())
}
