//! `/oauth_clients`: the organization's OAuth clients (list, create, get, update, delete).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use oauth_core::{Client, ClientDraft, ClientOrigin, ClientPatch, FieldError, PageRequest};
use oauth_store::{ClientEdit, ClientFilter, EditedClient};
use oauth_wire::{
    ClientType, CreateOAuthClient, Data, ErrorBody, GrantType, List, OAuthClient, UpdateOAuthClient,
};
use rand::rngs::OsRng;

use crate::accounts::new_id;
use crate::audit::{self, Event, EventKind};
use crate::error::ApiError;
use crate::extract::{Caller, CallerCredential, JsonBody, PathParam, QueryParams};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth_clients", get(list).post(create))
        .route("/oauth_clients/{id}", get(show).put(update).delete(remove))
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, show, update, remove))]
pub(super) struct Doc;

/// The query parameters `GET /oauth_clients` understands.
const LIST_PARAMS: &[&str] = &[
    "page[number]",
    "page[size]",
    "filter[client_type]",
    "filter[verified]",
    "filter[allowed_grant_types][contains]",
    "filter[name]",
    "filter[name][contains]",
    "filter[client_id]",
];

/// Longest filter value accepted; longer ones cannot match anything stored.
const MAX_FILTER_LEN: usize = 2000;

fn parse_list_query(q: &QueryParams) -> Result<(ClientFilter, oauth_core::PageSpec), ApiError> {
    let mut errors = q.unknown_list_params(LIST_PARAMS);
    for (k, v) in q.0.iter() {
        if k.starts_with("filter[") && v.len() > MAX_FILTER_LEN {
            errors.push(FieldError::new(
                k.to_owned(),
                "too_long",
                format!("at most {MAX_FILTER_LEN} characters"),
            ));
        }
    }
    let page = PageRequest {
        number: q.get("page[number]"),
        size: q.get("page[size]"),
    }
    .check();
    let page = match page {
        Ok(p) => Some(p),
        Err(e) => {
            errors.0.extend(e.0);
            None
        }
    };
    let mut filter = ClientFilter::default();
    if let Some(v) = q.get("filter[client_type]") {
        let t = ClientType::parse(v);
        if t.is_known() {
            filter.client_type = Some(t);
        } else {
            errors.push(FieldError::new(
                "filter[client_type]",
                "invalid_value",
                "must be public or confidential",
            ));
        }
    }
    if let Some(v) = q.get("filter[verified]") {
        match v {
            "true" => filter.verified = Some(true),
            "false" => filter.verified = Some(false),
            _ => errors.push(FieldError::new(
                "filter[verified]",
                "invalid_value",
                "must be true or false",
            )),
        }
    }
    if let Some(v) = q.get("filter[allowed_grant_types][contains]") {
        let g = GrantType::parse(v);
        if g.is_known() {
            filter.grant_type = Some(g);
        } else {
            errors.push(FieldError::new(
                "filter[allowed_grant_types][contains]",
                "invalid_value",
                "must be authorization_code, client_credentials or refresh_token",
            ));
        }
    }
    filter.name = q.get("filter[name]").map(str::to_owned);
    filter.name_contains = q.get("filter[name][contains]").map(str::to_owned);
    filter.client_id = q.get("filter[client_id]").map(str::to_owned);
    match (errors.into_result(), page) {
        (Ok(()), Some(page)) => Ok((filter, page)),
        (Err(e), _) => Err(ApiError::bad_query(e)),
        (Ok(()), None) => Err(ApiError::bad_request("invalid page parameters")),
    }
}

#[utoipa::path(
    get,
    path = "/oauth_clients",
    operation_id = "ListOAuthClients",
    tag = "OAuth Clients",
    summary = "List the organization's OAuth clients",
    params(
        ("page[size]" = Option<u64>, Query, description = "Results per page, 1..=100 (default 20)"),
        ("page[number]" = Option<u64>, Query, description = "Page number, from 1 (default 1)"),
        ("filter[client_type]" = Option<String>, Query, description = "`public` or `confidential`"),
        ("filter[verified]" = Option<bool>, Query, description = "Only verified (or unverified) clients"),
        ("filter[allowed_grant_types][contains]" = Option<String>, Query, description = "Clients allowed this grant type"),
        ("filter[name]" = Option<String>, Query, description = "Exact name"),
        ("filter[name][contains]" = Option<String>, Query, description = "Name contains this text, ignoring the case of ASCII letters"),
        ("filter[client_id]" = Option<String>, Query, description = "Exact client id"),
    ),
    responses(
        (status = 200, description = "One page of clients", body = List<OAuthClient>),
        (status = 400, description = "A bad page or filter parameter, named in `errors`", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 429, description = "Rate limited; see `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<oauth_wire::OAuthClient>>, ApiError> {
    let (filter, page) = parse_list_query(&query)?;
    let found = state
        .store
        .list_clients(&caller.user.org_id, &filter, page)
        .await?;
    Ok(Json(List {
        data: found.items.iter().map(|c| c.to_wire(None)).collect(),
        meta: page.meta(found.total),
    }))
}

#[utoipa::path(
    post,
    path = "/oauth_clients",
    operation_id = "CreateOAuthClient",
    tag = "OAuth Clients",
    summary = "Create an OAuth client",
    request_body = CreateOAuthClient,
    responses(
        (status = 201, description = "The new client; `client_secret` is shown this once", body = Data<OAuthClient>),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 422, description = "A field failed validation, named in `errors`", body = ErrorBody),
        (status = 429, description = "Rate limited; see `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateOAuthClient>,
) -> Result<impl IntoResponse, ApiError> {
    let settings =
        ClientDraft::from_create(req, &state.config.scopes).map_err(ApiError::validation)?;
    if caller.is_delegated() {
        ClientDraft::check_delegated_change(None, &settings).map_err(ApiError::validation)?;
    }
    let (client, secret) = Client::new(
        new_id(),
        settings,
        ClientOrigin::Management,
        (&caller.user.org_id, &caller.user.id),
        state.clock.now(),
        &mut OsRng,
    );
    let cap = state.config.max_clients_per_organization;
    if !state.store.insert_client_within(&client, cap).await? {
        return Err(ApiError::validation(oauth_core::ValidationErrors(vec![
            oauth_core::FieldError::new(
                "",
                "limit_reached",
                format!(
                    "this organization already has {cap} OAuth clients, the most it may have; delete one first"
                ),
            ),
        ])));
    }
    audit::record(
        state.store.as_ref(),
        client.created_at,
        event_by(&caller, EventKind::ClientCreated).client(&client),
    )
    .await;
    // The answer carries the secret: no cache may keep it (RFC 6749 §5.1 asks the same of a
    // token answer).
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(Data {
            data: client.to_wire(secret),
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/oauth_clients/{id}",
    operation_id = "GetOAuthClient",
    tag = "OAuth Clients",
    summary = "Get an OAuth client",
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "The client (never its secret)", body = Data<OAuthClient>),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "No such client in the caller's organization", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> Result<Json<Data<oauth_wire::OAuthClient>>, ApiError> {
    let client = state
        .store
        .get_org_client(&caller.user.org_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("OAuth client"))?;
    Ok(Json(Data {
        data: client.to_wire(None),
    }))
}

#[utoipa::path(
    put,
    path = "/oauth_clients/{id}",
    operation_id = "UpdateOAuthClient",
    tag = "OAuth Clients",
    summary = "Update an OAuth client (partial)",
    params(("id" = String, Path, description = "The client id")),
    request_body = UpdateOAuthClient,
    responses(
        (status = 200, description = "The updated client", body = Data<OAuthClient>),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "No such client in the caller's organization", body = ErrorBody),
        (status = 422, description = "A field failed validation, named in `errors`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
    body: Result<JsonBody<UpdateOAuthClient>, ApiError>,
) -> Result<Json<Data<oauth_wire::OAuthClient>>, ApiError> {
    let org = &caller.user.org_id;
    let not_found = || ApiError::not_found("OAuth client");
    let patch = match body {
        Ok(JsonBody(patch)) => patch,
        // An unknown id is 404 whatever the body says.
        Err(e) => {
            state
                .store
                .get_org_client(org, &id)
                .await?
                .ok_or_else(not_found)?;
            return Err(e);
        }
    };
    // The patch is applied to the client as stored when it is written, not as read here: two
    // updates at once both take effect.
    let catalogue = state.config.scopes.clone();
    let editor = caller.user.id.clone();
    let delegated = caller.is_delegated();
    let edit: ClientEdit = Box::new(move |current: &Client| {
        let settings = current
            .settings
            .apply(ClientPatch(patch.clone()), &catalogue)?;
        current.check_edit_by(&editor, &settings)?;
        if delegated {
            ClientDraft::check_delegated_change(Some(&current.settings), &settings)?;
        }
        // The verified mark vouches for what users see and where they are sent: a new name,
        // logo or redirect URI has not been vouched for.
        let clear_verified = current.settings.changes_what_users_see(&settings);
        Ok((settings, clear_verified))
    });
    let EditedClient {
        client: updated,
        verified_cleared: clear_verified,
    } = state
        .store
        .edit_client(org, &id, edit, state.clock.now())
        .await?
        .ok_or_else(not_found)?
        .map_err(ApiError::validation)?;
    let mut event = event_by(&caller, EventKind::ClientUpdated).client(&updated);
    if clear_verified {
        event = event.detail("verified_cleared", true);
    }
    audit::record(state.store.as_ref(), updated.updated_at, event).await;
    Ok(Json(Data {
        data: updated.to_wire(None),
    }))
}

#[utoipa::path(
    delete,
    path = "/oauth_clients/{id}",
    operation_id = "DeleteOAuthClient",
    tag = "OAuth Clients",
    summary = "Delete an OAuth client and everything issued to it",
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 204, description = "Deleted; no body"),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "No such client in the caller's organization", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> Result<StatusCode, ApiError> {
    if state.store.delete_client(&caller.user.org_id, &id).await? {
        audit::record(
            state.store.as_ref(),
            state.clock.now(),
            event_by(&caller, EventKind::ClientDeleted).client_id(&id),
        )
        .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("OAuth client"))
    }
}

/// An event of a change `caller` made: its user, and for an access token the client that held
/// it (`via_client`), so that the trail tells a member's own change from one an app made with
/// their grant.
fn event_by(caller: &Caller, kind: EventKind) -> Event {
    let event = Event::new(kind).user(&caller.user);
    match &caller.credential {
        CallerCredential::AccessToken { client_id, .. } => {
            event.detail("via_client", client_id.clone())
        }
        CallerCredential::ApiKey { .. } => event,
    }
}
