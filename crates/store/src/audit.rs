//! The audit trail: security events, appended on the hot paths, listed newest first.

use oauth_core::UnixSeconds;

use async_trait::async_trait;

use crate::engine::{self, Engine};
use crate::shared::{to_json, Arg, Cols, FromCols, Where};
use crate::writes::{Exec, WriteJob};
use crate::AuditStore;
use crate::{NewSecurityEvent, Result, SecurityEvent, SecurityEventFilter, StoreError};

const SECURITY_EVENT_COLUMNS: &str =
    "id, occurred_at, kind, org_id, user_id, client_id, grant_id, ip, detail";

/// A row of [`SECURITY_EVENT_COLUMNS`].
impl FromCols for SecurityEvent {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(SecurityEvent {
            id: r.col("id")?,
            occurred_at: r.col("occurred_at")?,
            kind: r.col("kind")?,
            org_id: r.col("org_id")?,
            user_id: r.col("user_id")?,
            client_id: r.col("client_id")?,
            grant_id: r.col("grant_id")?,
            ip: r.col("ip")?,
            detail: r.json("detail")?,
        })
    }
}

#[async_trait]
impl<B: Engine> AuditStore for B {
    /// A hot-path write.
    async fn record_security_event(&self, e: &NewSecurityEvent) -> Result<i64> {
        self.write(RecordEvent(e.clone())).await
    }

    async fn list_security_events(
        &self,
        f: &SecurityEventFilter,
        limit: i64,
    ) -> Result<Vec<SecurityEvent>> {
        // Text filters are bound in this order, then the numbers.
        let mut w = Where::new(1);
        let mut args: Vec<Arg> = Vec::new();
        for (column, value) in [
            ("kind", &f.kind),
            ("org_id", &f.org_id),
            ("user_id", &f.user_id),
            ("client_id", &f.client_id),
        ] {
            if let Some(v) = value {
                w.and(&format!("{column} = {{}}"));
                args.push(Arg::Text(v));
            }
        }
        if let Some(since) = f.since {
            w.and("occurred_at >= {}");
            args.push(Arg::Int(since));
        }
        if let Some(before) = f.before_id {
            w.and("id < {}");
            args.push(Arg::Int(before));
        }
        let sql = format!(
            "SELECT {SECURITY_EVENT_COLUMNS} FROM security_events WHERE TRUE{} \
             ORDER BY id DESC LIMIT ${}",
            w.sql, w.next
        );
        args.push(Arg::Int(limit));
        self.rows_read(&sql, &args).await
    }

    async fn purge_security_events(&self, before: UnixSeconds, limit: i64) -> Result<u64> {
        let sql = "DELETE FROM security_events WHERE id IN \
                   (SELECT id FROM security_events WHERE occurred_at < $1 LIMIT $2)";
        engine::execute(self, sql, &[Arg::Int(before), Arg::Int(limit)]).await
    }
}
/// `INSERT ... RETURNING id`.
struct Id(i64);

impl FromCols for Id {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(Id(r.col("id")?))
    }
}

/// `Store::record_security_event`.
pub(crate) struct RecordEvent(pub NewSecurityEvent);

impl WriteJob for RecordEvent {
    type Output = i64;
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<i64> {
        insert_event(e, &self.0, None).await
    }
}

/// The columns of `security_events` a new row sets, in the order of [`event_args`].
pub(crate) const NEW_EVENT_COLUMNS: &str =
    "occurred_at, kind, org_id, user_id, client_id, ip, detail, grant_id";

/// The values of [`NEW_EVENT_COLUMNS`] but the last (`grant_id`, which a caller may take from
/// its own statement); `detail` is the event's, as JSON text.
pub(crate) fn event_args<'a>(ev: &'a NewSecurityEvent, detail: &'a str) -> [Arg<'a>; 7] {
    [
        Arg::Int(ev.occurred_at),
        Arg::Text(&ev.kind),
        Arg::OptText(ev.org_id.as_deref()),
        Arg::OptText(ev.user_id.as_deref()),
        Arg::OptText(ev.client_id.as_deref()),
        Arg::OptText(ev.ip.as_deref()),
        Arg::Text(detail),
    ]
}

/// Inserts `ev`, with `grant_id` in place of its own when given; the new row's id.
pub(crate) async fn insert_event<E: Exec>(
    e: &mut E,
    ev: &NewSecurityEvent,
    grant_id: Option<&str>,
) -> Result<i64> {
    let detail = to_json(&ev.detail)?;
    let mut args = event_args(ev, &detail).to_vec();
    args.push(Arg::OptText(grant_id.or(ev.grant_id.as_deref())));
    let sql = format!(
        "INSERT INTO security_events ({NEW_EVENT_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"
    );
    let id: Option<Id> = e.fetch(&sql, &args).await?;
    id.map(|Id(id)| id)
        .ok_or_else(|| StoreError::Internal("INSERT ... RETURNING returned no row".into()))
}
