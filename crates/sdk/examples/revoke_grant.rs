//! Revoke an OAuth grant: `DELETE /oauth_grants/{id}`.
//!
//! `cargo run -p telnyx-oauth --example revoke_grant <id>`, with TELNYX_BASE_URL
//! and TELNYX_API_KEY in the environment.

#[tokio::main]
async fn main() -> Result<(), telnyx_oauth::Error> {
    let client = telnyx_oauth::Client::from_env()?;
    let arg = std::env::args().nth(1);
    let oauth_grant = client
        .oauth_grants()
        .delete(
            arg.as_deref()
                .unwrap_or("182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e"),
        )
        .await?;
    println!("{oauth_grant:#?}");
    Ok(())
}
