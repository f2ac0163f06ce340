//! `/oauth_grants`: the caller's own grants (list, get, revoke). Another user's grant answers
//! 404, as if it did not exist. Revoked grants are gone from every answer.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use oauth_core::entity::Grant;
use oauth_core::{timefmt, FieldError, PageRequest, PageSpec, ValidationErrors};
use oauth_wire::{Data, List, OAuthGrant};

use crate::audit::{self, Event, EventKind};
use crate::error::ApiError;
use crate::extract::{Caller, PathParam, QueryParams};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth_grants", get(list))
        .route("/oauth_grants/{id}", get(show).delete(revoke))
}

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
    let mut errors = ValidationErrors::default();
    for (k, _) in &q.0 {
        if (k.starts_with("filter[") || k.starts_with("page["))
            && !LIST_PARAMS.contains(&k.as_str())
        {
            errors.push(FieldError::new(
                k.clone(),
                "unknown_parameter",
                format!(
                    "unknown parameter; this list understands {}",
                    LIST_PARAMS.join(", ")
                ),
            ));
        }
    }
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
