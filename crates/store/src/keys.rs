//! Access-token signing keys: the public JWK and the sealed private key of each.

use oauth_core::UnixSeconds;

use async_trait::async_trait;

use crate::engine::{self, Engine};
use crate::shared::{Arg, Cols, Count, FromCols};
use crate::writes::{Exec, WriteJob};
use crate::KeyStore;
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

#[async_trait]
impl<B: Engine> KeyStore for B {
    async fn list_signing_keys(&self, now: UnixSeconds) -> Result<Vec<StoredSigningKey>> {
        let sql = "SELECT kid, alg, public_jwk, sealed_private_key, created_at, active_from, retire_after \
                   FROM signing_keys WHERE retire_after IS NULL OR retire_after > $1 \
                   ORDER BY active_from, CASE WHEN retire_after IS NULL THEN 1 ELSE 0 END, created_at, kid";
        self.rows_read(sql, &[Arg::Int(now)]).await
    }

    /// One write transaction.
    async fn insert_first_signing_key(
        &self,
        key: &StoredSigningKey,
        now: UnixSeconds,
    ) -> Result<bool> {
        self.write(InsertFirst(key.clone(), now)).await
    }

    /// One write transaction.
    async fn rotate_signing_key(
        &self,
        key: &StoredSigningKey,
        retire_others_after: UnixSeconds,
    ) -> Result<()> {
        self.write(Rotate(key.clone(), retire_others_after)).await
    }

    async fn purge_retired_signing_keys(&self, now: UnixSeconds, limit: i64) -> Result<u64> {
        let sql = "DELETE FROM signing_keys WHERE kid IN \
                   (SELECT kid FROM signing_keys WHERE retire_after IS NOT NULL AND retire_after <= $1 LIMIT $2)";
        engine::execute(self, sql, &[Arg::Int(now), Arg::Int(limit)]).await
    }
}

/// Writes one row that every change of the key set writes first, which serializes them on
/// PostgreSQL: a second first start, or a second rotation, waits on the row lock until the
/// first commits, and then its statements (each a new snapshot) see the first one's key. Two
/// rotations at once would otherwise each schedule the keys it saw to retire, and neither the
/// other's new key, which would then never retire.
async fn lock_signing_keys<E: Exec>(e: &mut E, now: UnixSeconds) -> Result<()> {
    e.execute(
        "INSERT INTO server_state (key, value) VALUES ('signing_key_init', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[Arg::Text(&now.to_string())],
    )
    .await?;
    Ok(())
}

/// The key, unless one that is not retired exists. A key that signs only later (a rotation run
/// before the first start) counts: a second first key would never be scheduled to retire, and
/// until the other key's start the instances sign with it as the earliest they have.
struct InsertFirst(StoredSigningKey, UnixSeconds);

impl WriteJob for InsertFirst {
    type Output = bool;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<bool> {
        let InsertFirst(key, now) = self;
        lock_signing_keys(e, *now).await?;
        let usable = e
            .fetch::<Count>(
                "SELECT COUNT(*) AS n FROM signing_keys \
                 WHERE retire_after IS NULL OR retire_after > $1",
                &[Arg::Int(*now)],
            )
            .await?
            .map_or(0, |c| c.0);
        if usable > 0 {
            return Ok(false);
        }
        insert_key(e, key).await?;
        Ok(true)
    }
}

/// The new key, with every other scheduled to retire.
struct Rotate(StoredSigningKey, UnixSeconds);

impl WriteJob for Rotate {
    type Output = ();

    async fn run<E: Exec>(&self, e: &mut E) -> Result<()> {
        let Rotate(key, retire_others_after) = self;
        lock_signing_keys(e, key.created_at).await?;
        e.execute(
            "UPDATE signing_keys SET retire_after = $1 \
             WHERE retire_after IS NULL OR retire_after > $1",
            &[Arg::Int(*retire_others_after)],
        )
        .await?;
        insert_key(e, key).await
    }
}
