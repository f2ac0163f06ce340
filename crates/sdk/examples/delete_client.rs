//! Delete an OAuth client: `DELETE /oauth_clients/{id}`.
//!
//! `cargo run -p telnyx-oauth --example delete_client <id>`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let arg = std::env::args().nth(1);
    let id = arg.unwrap_or_else(|| "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e".into());
    client.oauth_clients().delete(&id).await?;
    println!("deleted {id}");
    Ok(())
}
