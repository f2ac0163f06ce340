//! List OAuth grants: `GET /oauth_grants`, then every grant across all pages.
//!
//! `cargo run -p telnyx-oauth --example list_grants`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let page = client.oauth_grants().list(&Default::default()).await?;
    println!("{:#?}", page.meta);
    let mut all = std::pin::pin!(page.auto_paging_stream());
    while let Some(grant) = all.next().await {
        println!("{:#?}", grant?);
    }
    Ok(())
}
