//! RFC 7592 registration access tokens: one per client registered through `/oauth/register`,
//! kept only as its SHA-256.

use crate::engine::Engine;
use crate::shared::{Arg, Cols, FromCols};
use crate::writes::Exec;
use crate::Result;

/// `SELECT token_hash ...`
struct TokenHash(String);

impl FromCols for TokenHash {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(TokenHash(r.col("token_hash")?))
    }
}

/// `Store::set_registration_token_hash`: stores (or replaces) the client's token hash.
pub(crate) async fn set_token_hash<B: Engine>(b: &B, client_id: &str, hash: &str) -> Result<()> {
    let sql = "INSERT INTO registration_access_tokens (client_id, token_hash) VALUES ($1, $2) \
               ON CONFLICT (client_id) DO UPDATE SET token_hash = excluded.token_hash";
    b.acquire()
        .await?
        .execute(sql, &[Arg::Text(client_id), Arg::Text(hash)])
        .await?;
    Ok(())
}

/// `Store::registration_token_hash`: a point read.
pub(crate) async fn token_hash<B: Engine>(b: &B, client_id: &str) -> Result<Option<String>> {
    let sql = "SELECT token_hash FROM registration_access_tokens WHERE client_id = $1";
    let row: Option<TokenHash> = b.point_read(sql, &[Arg::Text(client_id)]).await?;
    Ok(row.map(|t| t.0))
}
