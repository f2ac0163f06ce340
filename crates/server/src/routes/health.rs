//! Probes for process managers and load balancers: `/healthz` (the process answers) and
//! `/readyz` (the database answers too).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct HealthStatus {
    status: String,
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz))]
pub(super) struct Doc;

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "Healthz",
    tag = "Health",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = HealthStatus)),
    security(()),
)]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 503 with `Retry-After` while the database cannot be reached.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "Readyz",
    tag = "Health",
    summary = "Readiness: the database answers",
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`", body = HealthStatus),
        (status = 503, description = "The database cannot be reached; see `Retry-After`", body = oauth_wire::ErrorBody),
    ),
    security(()),
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.store.ping().await {
        Ok(()) => Ok(Json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::unavailable())
        }
    }
}
