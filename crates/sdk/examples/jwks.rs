//! The JSON Web Key Set: `GET /oauth/jwks`.
//!
//! `cargo run -p telnyx-oauth --example jwks`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let response = client.oauth().retrieve_jwks().await?;
    println!("{response:#?}");
    Ok(())
}
