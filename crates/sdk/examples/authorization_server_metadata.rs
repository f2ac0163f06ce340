//! Authorization server metadata (RFC 8414): `GET /.well-known/oauth-authorization-server`.
//!
//! `cargo run -p telnyx-oauth --example authorization_server_metadata`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let response = client
        .well_known()
        .retrieve_authorization_server_metadata()
        .await?;
    println!("{response:#?}");
    Ok(())
}
