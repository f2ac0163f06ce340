//! Details of a consent token: `GET /oauth/consent/{consent_token}`.
//!
//! `cargo run -p telnyx-oauth --example consent_token <consent_token>`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let arg = std::env::args().nth(1);
    let oauth = client
        .oauth()
        .retrieve(arg.as_deref().unwrap_or("consent_token"))
        .await?;
    println!("{oauth:#?}");
    Ok(())
}
