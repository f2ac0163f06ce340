//! `oauth-server`: see `oauth-server --help`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = oauth_server::cli::Cli::parse();
    match oauth_server::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", oauth_server::cli::error_line(&e));
            ExitCode::FAILURE
        }
    }
}
