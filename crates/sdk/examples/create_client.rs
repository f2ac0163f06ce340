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
        .create(&CreateOAuthClient {
            name: "My OAuth client".into(),
            allowed_scopes: vec!["admin".into()],
            // The seed shows a public client; client_credentials needs a confidential one.
            client_type: ClientType::Confidential,
            allowed_grant_types: vec![GrantType::ClientCredentials],
            redirect_uris: None,
            require_pkce: None,
            logo_uri: None,
            policy_uri: None,
            tos_uri: None,
        })
        .await?;
    println!("{oauth_client:#?}");
    Ok(())
}
