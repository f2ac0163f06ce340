//! `/oauth_grants`: the caller's own grants (list, get, revoke). Another user's grant answers
//! 404, as if it did not exist. Revoked grants are gone from every answer.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use oauth_core::entity::Grant;
use oauth_core::{timefmt, PageRequest, PageSpec};
use oauth_wire::{Data, ErrorBody, List, OAuthGrant};

use crate::audit::{self, Event, EventKind};
use crate::error::ApiError;
use crate::extract::{Caller, PathParam, QueryParams};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth_grants", get(list))
        .route("/oauth_grants/{id}", get(show).delete(revoke))
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, revoke))]
pub(super) struct Doc;

fn to_wire(g: &Grant) -> OAuthGrant {
    OAuthGrant {
        id: g.id.clone(),
        record_type: "oauth_grant".to_owned(),
        client_id: g.client_id.clone(),
        scopes: g.scopes.clone(),
        created_at: timefmt::datetime(g.created_at),
        last_used_at: g.last_used_at.map(timefmt::datetime),
    }
}

const LIST_PARAMS: &[&str] = &["page[number]", "page[size]"];

/// Pagination exactly as `/oauth_clients`: unknown `page[..]`/`filter[..]` keys and
/// out-of-range values are 400 with the parameter named.
fn parse_page(q: &QueryParams) -> Result<PageSpec, ApiError> {
    let mut errors = q.unknown_list_params(LIST_PARAMS);
    let page = PageRequest {
        number: q.get("page[number]"),
        size: q.get("page[size]"),
    }
    .check();
    match page {
        Ok(p) if errors.0.is_empty() => Ok(p),
        Ok(_) => Err(ApiError::bad_query(errors)),
        Err(e) => {
            errors.0.extend(e.0);
            Err(ApiError::bad_query(errors))
        }
    }
}

#[utoipa::path(
    get,
    path = "/oauth_grants",
    operation_id = "ListOAuthGrants",
    tag = "OAuth Grants",
    summary = "List the caller's grants",
    params(
        ("page[size]" = Option<u64>, Query, description = "Results per page, 1..=100 (default 20)"),
        ("page[number]" = Option<u64>, Query, description = "Page number, from 1 (default 1)"),
    ),
    responses(
        (status = 200, description = "One page of grants", body = List<OAuthGrant>),
        (status = 400, description = "A bad page parameter, named in `errors`", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 429, description = "Rate limited; see `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<OAuthGrant>>, ApiError> {
    let page = parse_page(&query)?;
    let found = state.store.list_grants(&caller.user.id, page).await?;
    Ok(Json(List {
        data: found.items.iter().map(to_wire).collect(),
        meta: page.meta(found.total),
    }))
}

#[utoipa::path(
    get,
    path = "/oauth_grants/{id}",
    operation_id = "GetOAuthGrant",
    tag = "OAuth Grants",
    summary = "Get one of the caller's grants",
    params(("id" = String, Path, description = "The grant id")),
    responses(
        (status = 200, description = "The grant", body = Data<OAuthGrant>),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "No such grant of the caller", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> Result<Json<Data<OAuthGrant>>, ApiError> {
    let grant = state
        .store
        .get_user_grant(&caller.user.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("OAuth grant"))?;
    Ok(Json(Data {
        data: to_wire(&grant),
    }))
}

/// Revokes the grant and, in the same transaction, its outstanding codes, its refresh tokens
/// and every token family under it; access tokens check their family (and so the grant) on use
/// and stop working at once.
#[utoipa::path(
    delete,
    path = "/oauth_grants/{id}",
    operation_id = "RevokeOAuthGrant",
    tag = "OAuth Grants",
    summary = "Revoke one of the caller's grants, and every token under it",
    params(("id" = String, Path, description = "The grant id")),
    responses(
        (status = 200, description = "The revoked grant", body = Data<OAuthGrant>),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "No such grant of the caller", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> Result<Json<Data<OAuthGrant>>, ApiError> {
    let now = state.clock.now();
    let grant = state
        .store
        .revoke_grant(&caller.user.id, &id, now)
        .await?
        .ok_or_else(|| ApiError::not_found("OAuth grant"))?;
    audit::record(
        state.store.as_ref(),
        now,
        Event::new(EventKind::GrantRevoked)
            .user(&caller.user)
            .client_id(&grant.client_id)
            .grant_id(&grant.id)
            .detail("by", "user"),
    )
    .await;
    Ok(Json(Data {
        data: to_wire(&grant),
    }))
}
