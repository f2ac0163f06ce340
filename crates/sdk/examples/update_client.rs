//! Update an OAuth client: `PUT /oauth_clients/{id}` (here: rename it).
//!
//! `cargo run -p telnyx-oauth --example update_client <id> [new name]`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

use telnyx_oauth::UpdateOAuthClient;

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let mut args = std::env::args().skip(1);
    let id = args
        .next()
        .unwrap_or_else(|| "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e".into());
    let name = args.next().unwrap_or_else(|| "Renamed OAuth client".into());
    let oauth_client = client
        .oauth_clients()
        .update(&id, &UpdateOAuthClient::new().name(name))
        .await?;
    println!("{oauth_client:#?}");
    Ok(())
}
