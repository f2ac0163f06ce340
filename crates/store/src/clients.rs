//! OAuth clients: their registration, settings and verified mark.

use oauth_core::validation::ValidationErrors;
use oauth_core::{Client, ClientDraft, ClientOrigin, PageSpec, UnixSeconds};
use oauth_wire::{ClientType, GrantType, TokenEndpointAuthMethod};

use std::sync::LazyLock;

use async_trait::async_trait;

use crate::engine::{self, Engine};
use crate::shared::{to_json, Arg, Cols, FromCols, Where};
use crate::writes::{Exec, WriteJob};
use crate::ClientStore;
use crate::{ClientFilter, Page, Result, StoreError};

/// An edit of a client's settings (`ClientStore::edit_client`), decided on the client as
/// stored when it is written: the new settings and whether they clear the verified mark, or why
/// the edit is refused. `Fn`: a PostgreSQL transaction aborted as a deadlock runs again.
pub type ClientEdit = Box<
    dyn Fn(&Client) -> std::result::Result<(ClientDraft, bool), ValidationErrors> + Send + Sync,
>;

/// A client as an edit left it.
#[derive(Debug, Clone)]
pub struct EditedClient {
    pub client: Client,
    /// The edit cleared the verified mark the client had.
    pub verified_cleared: bool,
}

pub(crate) const CLIENT_COLUMNS: &str = "client_id, org_id, user_id, name, client_type, \
    secret_hash, require_pkce, grant_types, scopes, redirect_uris, logo_uri, policy_uri, tos_uri, \
    token_endpoint_auth_method, verified, created_at, updated_at, origin, jwks, jwks_uri, \
    application_type";

/// A point read of the client `$1` with one row of another table left-joined to it
/// (`join`: the table, its alias and its `ON` condition), whose `columns` are renamed
/// `{alias}_{column}` (read with `shared::joined`). Always a row when the client exists.
pub(crate) fn client_joined_sql(columns: &str, join: &str) -> String {
    format!(
        "SELECT c.*, {columns} FROM \
         (SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE client_id = $1) c LEFT JOIN {join}"
    )
}

#[async_trait]
impl<B: Engine> ClientStore for B {
    /// A hot-path write.
    async fn insert_client(&self, c: &Client) -> Result<()> {
        self.write(InsertClient(c.clone())).await
    }

    /// One write transaction; the organization's row takes the turns.
    async fn insert_client_within(&self, c: &Client, max_in_org: i64) -> Result<bool> {
        self.write(InsertClientWithin {
            client: c.clone(),
            max_in_org,
        })
        .await
    }

    /// A point read.
    async fn get_client(&self, client_id: &str) -> Result<Option<Client>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE client_id = $1")
        });
        self.point_read(&SQL, &[Arg::Text(client_id)]).await
    }

    /// One read, however many ids.
    async fn get_clients(&self, client_ids: &[String]) -> Result<Vec<Client>> {
        if client_ids.is_empty() {
            return Ok(Vec::new());
        }
        if client_ids.len() > crate::MAX_CLIENTS_PER_READ {
            return Err(StoreError::InvalidInput(format!(
                "at most {} clients are read at once",
                crate::MAX_CLIENTS_PER_READ
            )));
        }
        let placeholders: Vec<String> = (1..=client_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE client_id IN ({})",
            placeholders.join(", ")
        );
        let args: Vec<Arg<'_>> = client_ids.iter().map(|id| Arg::Text(id)).collect();
        self.rows_read(&sql, &args).await
    }

    /// Bounded, like every purge.
    async fn purge_unused_clients(&self, created_before: UnixSeconds, limit: i64) -> Result<u64> {
        self.write(PurgeUnusedClients {
            created_before,
            limit,
            lock: Self::DIALECT.lock_to_delete,
        })
        .await
    }

    /// A point read.
    async fn get_org_client(&self, org_id: &str, client_id: &str) -> Result<Option<Client>> {
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE client_id = $1 AND org_id = $2"
        );
        self.point_read(&sql, &[Arg::Text(client_id), Arg::Text(org_id)])
            .await
    }

    /// The count and the page, each read as the point reads are.
    async fn list_clients(
        &self,
        org_id: &str,
        f: &ClientFilter,
        page: PageSpec,
    ) -> Result<Page<Client>> {
        let d = Self::DIALECT;
        // Placeholder $1 is the organization; filters follow in a fixed order, and the
        // binds below follow the same order.
        let mut w = Where::new(2);
        let mut binds: Vec<String> = Vec::new();
        if let Some(t) = &f.client_type {
            w.and("client_type = {}");
            binds.push(t.as_str().to_owned());
        }
        if let Some(g) = &f.grant_type {
            w.and(d.json_array_contains);
            binds.push(g.as_str().to_owned());
        }
        if let Some(n) = &f.name {
            w.and("name = {}");
            binds.push(n.clone());
        }
        if let Some(n) = &f.name_contains {
            w.and(d.name_contains);
            binds.push(n.clone());
        }
        if let Some(id) = &f.client_id {
            w.and("client_id = {}");
            binds.push(id.clone());
        }
        if let Some(v) = f.verified {
            // A literal, not a bind: it is one of two fixed values.
            w.and(if v {
                "verified = TRUE"
            } else {
                "verified = FALSE"
            });
        }
        let from_where = format!("oauth_clients WHERE org_id = $1{}", w.sql);
        let order = format!("created_at, {}, client_id", d.insertion_order);
        let mut args: Vec<Arg> = Vec::with_capacity(binds.len() + 1);
        args.push(Arg::Text(org_id));
        args.extend(binds.iter().map(|b| Arg::Text(b)));
        engine::read_page(self, (CLIENT_COLUMNS, &from_where, &order), &args, page).await
    }

    async fn edit_client(
        &self,
        org_id: &str,
        client_id: &str,
        edit: ClientEdit,
        now: UnixSeconds,
    ) -> Result<Option<std::result::Result<EditedClient, ValidationErrors>>> {
        self.write(EditClient {
            org_id: org_id.to_owned(),
            client_id: client_id.to_owned(),
            edit,
            now,
            for_update: Self::DIALECT.lock_client_to_edit,
        })
        .await
    }

    /// One write transaction: the row and the organization's count.
    async fn delete_client(&self, org_id: &str, client_id: &str) -> Result<bool> {
        self.write(DeleteClient {
            org_id: org_id.to_owned(),
            client_id: client_id.to_owned(),
        })
        .await
    }

    async fn set_client_verified(
        &self,
        client_id: &str,
        verified: bool,
        now: UnixSeconds,
    ) -> Result<Option<Client>> {
        let sql = format!(
            "UPDATE oauth_clients SET verified = $1, updated_at = $2 WHERE client_id = $3 \
             RETURNING {CLIENT_COLUMNS}"
        );
        let args = [Arg::Bool(verified), Arg::Int(now), Arg::Text(client_id)];
        engine::execute_returning(self, &sql, &args).await
    }

    async fn register_client(&self, client: &Client, token_hash: &str) -> Result<()> {
        self.write(RegisterClient {
            client: client.clone(),
            token_hash: token_hash.to_owned(),
        })
        .await
    }

    /// A point read.
    async fn registration_token_hash(&self, client_id: &str) -> Result<Option<String>> {
        let sql = "SELECT token_hash FROM registration_access_tokens WHERE client_id = $1";
        let row: Option<TokenHash> = self.point_read(sql, &[Arg::Text(client_id)]).await?;
        Ok(row.map(|t| t.0))
    }
}
/// A row of [`CLIENT_COLUMNS`].
impl FromCols for Client {
    /// Reads the columns in [`CLIENT_COLUMNS`]' order: a SQLite row finds each one where the
    /// last one ended (`shared::InOrder`) instead of scanning every column's name.
    fn from_cols(r: &impl Cols) -> Result<Self> {
        let client_id = r.col("client_id")?;
        let org_id = r.col("org_id")?;
        let user_id = r.col("user_id")?;
        let name = r.col("name")?;
        let client_type = r.with_text("client_type", ClientType::parse)?;
        let secret_hash = r.col("secret_hash")?;
        let require_pkce = r.col("require_pkce")?;
        let grant_types = r.json::<Vec<GrantType>>("grant_types")?;
        let scopes = r.json("scopes")?;
        let redirect_uris = r.json("redirect_uris")?;
        let logo_uri = r.col("logo_uri")?;
        let policy_uri = r.col("policy_uri")?;
        let tos_uri = r.col("tos_uri")?;
        let token_endpoint_auth_method =
            r.with_text("token_endpoint_auth_method", TokenEndpointAuthMethod::parse)?;
        let verified = r.col("verified")?;
        let created_at = r.col("created_at")?;
        let updated_at = r.col("updated_at")?;
        let origin = r.with_text("origin", |origin| {
            ClientOrigin::parse(origin)
                .ok_or_else(|| StoreError::Internal(format!("unknown client origin {origin:?}")))
        })??;
        Ok(Client {
            client_id,
            org_id,
            user_id,
            secret_hash,
            verified,
            created_at,
            updated_at,
            origin,
            settings: ClientDraft {
                name,
                client_type,
                require_pkce,
                grant_types,
                scopes,
                redirect_uris,
                logo_uri,
                policy_uri,
                tos_uri,
                token_endpoint_auth_method,
                jwks: r.col("jwks")?,
                jwks_uri: r.col("jwks_uri")?,
                application_type: r.col("application_type")?,
            },
        })
    }
}

/// `ClientStore::edit_client`: the client read and locked, the edit decided on it, the new
/// settings written, in one transaction.
struct EditClient {
    org_id: String,
    client_id: String,
    edit: ClientEdit,
    now: UnixSeconds,
    for_update: &'static str,
}

impl WriteJob for EditClient {
    type Output = Option<std::result::Result<EditedClient, ValidationErrors>>;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<Self::Output> {
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE client_id = $1 AND org_id = $2{}",
            self.for_update
        );
        let ids = [self.client_id.as_str(), self.org_id.as_str()];
        let current: Option<Client> = e.fetch(&sql, &ids.map(Arg::Text)).await?;
        let Some(current) = current else {
            return Ok(None);
        };
        let (settings, clear) = match (self.edit)(&current) {
            Ok(decided) => decided,
            Err(refused) => return Ok(Some(Err(refused))),
        };
        let verified_cleared = clear && current.verified;
        let s = &settings;
        let (grant_types, scopes) = (to_json(&s.grant_types)?, to_json(&s.scopes)?);
        let redirect_uris = to_json(&s.redirect_uris)?;
        let sql = format!(
            "UPDATE oauth_clients SET name = $1, require_pkce = $2, grant_types = $3, \
             scopes = $4, redirect_uris = $5, logo_uri = $6, policy_uri = $7, \
             tos_uri = $8, updated_at = $9, \
             verified = CASE WHEN $10 THEN FALSE ELSE verified END, \
             jwks = $11, jwks_uri = $12, token_endpoint_auth_method = $13, client_type = $14, \
             application_type = $15 \
             WHERE client_id = $16 AND org_id = $17 RETURNING {CLIENT_COLUMNS}"
        );
        let args = [
            Arg::Text(&s.name),
            Arg::Bool(s.require_pkce),
            Arg::Text(&grant_types),
            Arg::Text(&scopes),
            Arg::Text(&redirect_uris),
            Arg::OptText(s.logo_uri.as_deref()),
            Arg::OptText(s.policy_uri.as_deref()),
            Arg::OptText(s.tos_uri.as_deref()),
            Arg::Int(self.now),
            Arg::Bool(verified_cleared),
            Arg::OptText(s.jwks.as_deref()),
            Arg::OptText(s.jwks_uri.as_deref()),
            Arg::Text(s.token_endpoint_auth_method.as_str()),
            Arg::Text(s.client_type.as_str()),
            Arg::OptText(s.application_type.as_deref()),
            Arg::Text(&self.client_id),
            Arg::Text(&self.org_id),
        ];
        let client: Option<Client> = e.fetch(&sql, &args).await?;
        let client =
            client.ok_or_else(|| StoreError::Internal("the locked client vanished".into()))?;
        // A first-party client's scopes are the ceiling of what its users are asked for: one
        // taken away leaves its pending consent requests in the same commit, so that a page
        // drawn after this edit shows everything an approval can grant, even if the scope is
        // given back before the user decides.
        if !current.is_third_party() {
            let removed: Vec<&str> = current
                .settings
                .scopes
                .iter()
                .filter(|s| !settings.scopes.contains(s))
                .map(String::as_str)
                .collect();
            if !removed.is_empty() {
                crate::grants::narrow_pending_consents(e, &self.client_id, &removed).await?;
            }
        }
        Ok(Some(Ok(EditedClient {
            client,
            verified_cleared,
        })))
    }
}

/// A client registered before `$1` that nothing was ever made for: no grant, live or revoked, and
/// no consent request kept; never one that may use `client_credentials`.
const UNUSED_CLIENT: &str =
    "c.origin IN ('registration', 'metadata_document') AND c.created_at < $1 \
    AND c.grant_types NOT LIKE '%\"client_credentials\"%' \
    AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = c.client_id) \
    AND NOT EXISTS (SELECT 1 FROM consent_requests r WHERE r.client_id = c.client_id)";

/// `ClientStore::purge_unused_clients`: the candidates are locked first (`lock`, skipping those a
/// write under way holds), then deleted by a second statement that tests them again. On
/// PostgreSQL each statement reads what was committed when it began, so a consent request or
/// grant committed after the first statement's start keeps its client, and none can start
/// under a locked candidate.
struct PurgeUnusedClients {
    created_before: UnixSeconds,
    limit: i64,
    lock: &'static str,
}

/// A client id.
struct ClientId(String);

impl FromCols for ClientId {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(ClientId(r.col("client_id")?))
    }
}

impl WriteJob for PurgeUnusedClients {
    type Output = u64;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<u64> {
        let sql = format!(
            "SELECT c.client_id FROM oauth_clients c WHERE {UNUSED_CLIENT} LIMIT $2{}",
            self.lock
        );
        let args = [Arg::Int(self.created_before), Arg::Int(self.limit)];
        let candidates: Vec<ClientId> = e.fetch_all(&sql, &args).await?;
        if candidates.is_empty() {
            return Ok(0);
        }
        let placeholders: Vec<String> =
            (2..candidates.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "DELETE FROM oauth_clients WHERE client_id IN \
             (SELECT c.client_id FROM oauth_clients c WHERE {UNUSED_CLIENT} AND c.client_id IN ({}))",
            placeholders.join(", ")
        );
        // `$1` comes first in the text: SQLite numbers `$` parameters by first appearance.
        let mut args = vec![Arg::Int(self.created_before)];
        args.extend(candidates.iter().map(|c| Arg::Text(&c.0)));
        e.execute(&sql, &args).await
    }
}

/// `Store::insert_client`.
pub(crate) struct InsertClient(pub Client);

impl WriteJob for InsertClient {
    type Output = ();
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<()> {
        insert_client_row(e, &self.0).await
    }
}

/// `ClientStore::insert_client_within`: the organization's count of clients taken one up only
/// while under the cap, then the insert, in one transaction. The conditional update locks the
/// organization's row, so creations at once take turns there and never pass the cap.
struct InsertClientWithin {
    client: Client,
    max_in_org: i64,
}

impl WriteJob for InsertClientWithin {
    type Output = bool;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<bool> {
        let room = e
            .execute(
                "UPDATE organizations SET client_count = client_count + 1 \
                 WHERE id = $1 AND client_count < $2",
                &[Arg::Text(&self.client.org_id), Arg::Int(self.max_in_org)],
            )
            .await?;
        if room == 0 {
            return Ok(false);
        }
        insert_client_row(e, &self.client).await?;
        Ok(true)
    }
}

/// `ClientStore::delete_client`: the row, and the organization's count of clients one down.
struct DeleteClient {
    org_id: String,
    client_id: String,
}

impl WriteJob for DeleteClient {
    type Output = bool;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<bool> {
        let n = e
            .execute(
                "DELETE FROM oauth_clients WHERE client_id = $1 AND org_id = $2",
                &[Arg::Text(&self.client_id), Arg::Text(&self.org_id)],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        e.execute(
            "UPDATE organizations SET client_count = client_count - 1 \
             WHERE id = $1 AND client_count > 0",
            &[Arg::Text(&self.org_id)],
        )
        .await?;
        Ok(true)
    }
}

/// `ClientStore::register_client`: the client and its registration access token's hash.
struct RegisterClient {
    client: Client,
    token_hash: String,
}

impl WriteJob for RegisterClient {
    type Output = ();

    async fn run<E: Exec>(&self, e: &mut E) -> Result<()> {
        insert_client_row(e, &self.client).await?;
        e.execute(
            "INSERT INTO registration_access_tokens (client_id, token_hash) VALUES ($1, $2)",
            &[
                Arg::Text(&self.client.client_id),
                Arg::Text(&self.token_hash),
            ],
        )
        .await?;
        Ok(())
    }
}

/// Inserts the row of `c` into `oauth_clients`.
async fn insert_client_row<E: Exec>(e: &mut E, c: &Client) -> Result<()> {
    let s = &c.settings;
    let grant_types = to_json(&s.grant_types)?;
    let scopes = to_json(&s.scopes)?;
    let redirect_uris = to_json(&s.redirect_uris)?;
    let sql = format!(
        "INSERT INTO oauth_clients ({CLIENT_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
    );
    e.execute(
        &sql,
        &[
            Arg::Text(&c.client_id),
            Arg::Text(&c.org_id),
            Arg::Text(&c.user_id),
            Arg::Text(&s.name),
            Arg::Text(s.client_type.as_str()),
            Arg::OptText(c.secret_hash.as_deref()),
            Arg::Bool(s.require_pkce),
            Arg::Text(&grant_types),
            Arg::Text(&scopes),
            Arg::Text(&redirect_uris),
            Arg::OptText(s.logo_uri.as_deref()),
            Arg::OptText(s.policy_uri.as_deref()),
            Arg::OptText(s.tos_uri.as_deref()),
            Arg::Text(s.token_endpoint_auth_method.as_str()),
            Arg::Bool(c.verified),
            Arg::Int(c.created_at),
            Arg::Int(c.updated_at),
            Arg::Text(c.origin.as_str()),
            Arg::OptText(s.jwks.as_deref()),
            Arg::OptText(s.jwks_uri.as_deref()),
            Arg::OptText(s.application_type.as_deref()),
        ],
    )
    .await?;
    Ok(())
}

/// `SELECT token_hash ...` of an RFC 7592 registration access token, kept only as its SHA-256.
struct TokenHash(String);

impl FromCols for TokenHash {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(TokenHash(r.col("token_hash")?))
    }
}
