//! Protected resource metadata (RFC 9728): `GET /.well-known/oauth-protected-resource`.
//!
//! `cargo run -p telnyx-oauth --example protected_resource_metadata`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let response = client
        .well_known()
        .retrieve_protected_resource_metadata()
        .await?;
    println!("{response:#?}");
    Ok(())
}
