//! Access-token signing keys: the public JWK and the sealed private key of each.

use oauth_core::UnixSeconds;

use crate::engine::Engine;
use crate::shared::{Arg, Cols, Count, FromCols};
use crate::writes::Exec;
use crate::{Result, StoredSigningKey};

impl FromCols for StoredSigningKey {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(StoredSigningKey {
            kid: r.col("kid")?,
            alg: r.col("alg")?,
            public_jwk: r.col("public_jwk")?,
            sealed_private_key: r.col("sealed_private_key")?,
            created_at: r.col("created_at")?,
            active_from: r.col("active_from")?,
            retire_after: r.col("retire_after")?,
        })
    }
}

async fn insert_key<E: Exec>(e: &mut E, k: &StoredSigningKey) -> Result<()> {
    e.execute(
        "INSERT INTO signing_keys (kid, alg, public_jwk, sealed_private_key, created_at, active_from, retire_after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            Arg::Text(&k.kid),
            Arg::Text(&k.alg),
            Arg::Text(&k.public_jwk),
            Arg::Text(&k.sealed_private_key),
            Arg::Int(k.created_at),
            Arg::Int(k.active_from),
            Arg::OptInt(k.retire_after),
        ],
    )
    .await?;
    Ok(())
}

/// `Store::list_signing_keys`, on the pool.
pub(crate) async fn list<B: Engine>(b: &B, now: UnixSeconds) -> Result<Vec<StoredSigningKey>> {
    let sql = "SELECT kid, alg, public_jwk, sealed_private_key, created_at, active_from, retire_after \
               FROM signing_keys WHERE retire_after IS NULL OR retire_after > $1 \
               ORDER BY active_from, CASE WHEN retire_after IS NULL THEN 1 ELSE 0 END, created_at, kid";
    b.acquire().await?.fetch_all(sql, &[Arg::Int(now)]).await
}

/// `Store::insert_first_signing_key`: one write transaction on the pool.
pub(crate) async fn insert_first<B: Engine>(
    b: &B,
    key: &StoredSigningKey,
    now: UnixSeconds,
) -> Result<bool> {
    let mut tx = b.begin().await?;
    // Writing this row first serializes concurrent first starts on PostgreSQL:
    // the second waits on the row lock until the first commits, and then its
    // count below (a new statement, a new snapshot) sees the first one's key.
    tx.execute(
        "INSERT INTO server_state (key, value) VALUES ('signing_key_init', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[Arg::Text(&now.to_string())],
    )
    .await?;
    let usable = tx
        .fetch::<Count>(
            "SELECT COUNT(*) AS n FROM signing_keys \
             WHERE active_from <= $1 AND (retire_after IS NULL OR retire_after > $1)",
            &[Arg::Int(now)],
        )
        .await?
        .map_or(0, |c| c.0);
    if usable > 0 {
        B::rollback(tx).await?;
        return Ok(false);
    }
    insert_key(&mut tx, key).await?;
    B::commit(tx).await?;
    Ok(true)
}

/// `Store::rotate_signing_key`: one write transaction on the pool.
pub(crate) async fn rotate<B: Engine>(
    b: &B,
    key: &StoredSigningKey,
    retire_others_after: UnixSeconds,
) -> Result<()> {
    let mut tx = b.begin().await?;
    tx.execute(
        "UPDATE signing_keys SET retire_after = $1 \
         WHERE retire_after IS NULL OR retire_after > $1",
        &[Arg::Int(retire_others_after)],
    )
    .await?;
    insert_key(&mut tx, key).await?;
    B::commit(tx).await
}

/// `Store::purge_retired_signing_keys`, on the pool.
pub(crate) async fn purge_retired<B: Engine>(b: &B, now: UnixSeconds, limit: i64) -> Result<u64> {
    let sql = "DELETE FROM signing_keys WHERE kid IN \
               (SELECT kid FROM signing_keys WHERE retire_after IS NOT NULL AND retire_after <= $1 LIMIT $2)";
    b.acquire()
        .await?
        .execute(sql, &[Arg::Int(now), Arg::Int(limit)])
        .await
}
