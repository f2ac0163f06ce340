//! The token endpoint: `POST /oauth/token` with the client credentials grant.
//!
//! `cargo run -p telnyx-oauth --example token <client_id> <client_secret>`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

use telnyx_oauth::{GrantType, TokenRequest};

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let mut args = std::env::args().skip(1);
    let mut request = TokenRequest::new(GrantType::ClientCredentials);
    if let (Some(id), Some(secret)) = (args.next(), args.next()) {
        request = request.client_id(id).client_secret(secret);
    }
    let response = client.oauth().token(&request).await?;
    println!("{response:#?}");
    Ok(())
}
