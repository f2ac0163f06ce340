//! `ApiError`: every failure a handler returns, turned into the JSON body of docs/api.md
//! (`{"error", "error_description", "errors"?}`) with the right status and headers.
//!
//! Internal failures are logged with their detail and answered with a generic message: no SQL,
//! file path or stack trace ever reaches a caller.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use oauth_core::{FieldError, ValidationErrors};
use oauth_store::StoreError;
use oauth_wire::{ErrorBody, ErrorObject, ErrorSource};

/// Whether a field error points into the JSON body or names a query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Body,
    Query,
}

/// Carried in the extensions of every error response: the description, for the pages to say
/// the same thing in HTML (`routes::errors_as_pages`).
#[derive(Debug, Clone)]
pub struct ErrorText(pub String);

/// Boxed, so that `Result<T, ApiError>` stays one pointer wide on the happy path.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    error: &'static str,
    description: String,
    fields: Vec<FieldError>,
    source: Source,
    headers: HeaderMap,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status,
            error,
            description: description.into(),
            fields: Vec::new(),
            source: Source::Body,
            headers: HeaderMap::new(),
        }))
    }

    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 422 with one entry per bad body field.
    pub fn validation(errors: ValidationErrors) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("validation failed: {errors}"),
        );
        e.0.fields = errors.0;
        e
    }

    /// 400 with one entry per bad query parameter.
    pub fn bad_query(errors: ValidationErrors) -> Self {
        let mut e = Self::bad_request(format!("invalid query: {errors}"));
        e.0.fields = errors.0;
        e.0.source = Source::Query;
        e
    }

    /// 401 for the management API, pointing at the protected resource metadata (RFC 9728 §5.1).
    pub fn unauthorized(
        error: &'static str,
        description: impl Into<String>,
        resource_metadata: &str,
    ) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, error, description);
        let challenge = if error == "invalid_token" {
            format!("Bearer error=\"invalid_token\", resource_metadata=\"{resource_metadata}\"")
        } else {
            format!("Bearer resource_metadata=\"{resource_metadata}\"")
        };
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            e.0.headers.insert(header::WWW_AUTHENTICATE, v);
        }
        e
    }

    /// RFC 6749 §5.2: an OAuth error at the token, introspection or revocation endpoint, 400.
    pub fn oauth(error: &'static str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, description)
    }

    /// RFC 6749 §5.2 `invalid_client`, 401, with `WWW-Authenticate: Basic` naming the realm:
    /// §5.2 asks for it when the client tried HTTP Basic, and RFC 9110 §15.5.2 of every 401,
    /// so it is there whichever way the client authenticated, or did not.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description).with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"oauth\", charset=\"UTF-8\""),
        )
    }

    /// RFC 6750 §3.1: a valid token without the scope a call needs, 403.
    pub fn insufficient_scope(scope: &str, resource_metadata: &str) -> Self {
        let mut e = Self::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("this call needs an access token with the `{scope}` scope"),
        );
        let challenge = format!(
            "Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{resource_metadata}\""
        );
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            e.0.headers.insert(header::WWW_AUTHENTICATE, v);
        }
        e
    }

    pub fn unavailable() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the service is temporarily unavailable; retry shortly",
        );
        e.0.headers
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        e
    }

    /// 429: a request-rate limit was reached; retry after `retry_after_secs` (1..=60).
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let secs = retry_after_secs.clamp(1, 60);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry after {secs} s"),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(secs))
    }

    /// A bug or a broken dependency. The detail goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the server could not complete the request",
        )
    }

    /// RFC 7591 §3.2.2: a body that cannot be read as client metadata (malformed, or of the
    /// wrong shape: 400 or 422) is `invalid_client_metadata`, 400, its headers kept. Any other
    /// failure to read it (too large, too slow, not JSON at all) keeps its own status.
    pub fn as_client_metadata_error(mut self) -> Self {
        if matches!(
            self.0.status,
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
        ) {
            self.0.status = StatusCode::BAD_REQUEST;
            self.0.error = "invalid_client_metadata";
            self.0.fields.clear();
        }
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.0.headers.insert(name, value);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn error_code(&self) -> &'static str {
        self.0.error
    }

    pub fn description(&self) -> &str {
        &self.0.description
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(detail) => {
                tracing::info!(%detail, "storage conflict");
                ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    "the request conflicts with the current state of the resource",
                )
                .with_header(
                    header::HeaderName::from_static("x-should-retry"),
                    HeaderValue::from_static("false"),
                )
            }
            StoreError::Unavailable(source) => {
                crate::metrics::database_error("unavailable");
                tracing::warn!(error = %source, "database unavailable");
                ApiError::unavailable()
            }
            StoreError::InvalidInput(detail) => {
                // Every parameter is checked before it reaches the database; this is the
                // backstop for a value that slipped past (warn, so that it gets noticed).
                crate::metrics::database_error("invalid_input");
                tracing::warn!(%detail, "the database refused a value of the request");
                ApiError::bad_request(
                    "a value in the request cannot be stored or looked up (a NUL byte, or a value too long)",
                )
            }
            StoreError::Internal(detail) => {
                crate::metrics::database_error("internal");
                ApiError::internal(detail)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = *self.0;
        let errors = this
            .fields
            .into_iter()
            .map(|f| ErrorObject {
                title: title_for(f.code).to_owned(),
                code: f.code.to_owned(),
                detail: Some(f.message),
                source: Some(match this.source {
                    Source::Body => ErrorSource {
                        pointer: Some(f.pointer),
                        parameter: None,
                    },
                    Source::Query => ErrorSource {
                        pointer: None,
                        parameter: Some(f.pointer),
                    },
                }),
            })
            .collect();
        let body = ErrorBody {
            error: this.error.to_owned(),
            error_description: Some(oauth_core::authorize::error_description(&this.description)),
            errors,
        };
        let mut resp = (this.status, Json(body)).into_response();
        resp.extensions_mut().insert(ErrorText(this.description));
        resp.headers_mut().extend(this.headers);
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

fn title_for(code: &str) -> &'static str {
    match code {
        "required" => "Required field missing",
        "too_long" => "Value too long",
        "out_of_range" => "Value out of range",
        "unknown_field" => "Unknown field",
        "invalid_type" => "Wrong type",
        "repeated" => "Parameter repeated",
        _ => "Invalid value",
    }
}
