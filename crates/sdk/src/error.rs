//! The one error type of the SDK, classified the way the official Telnyx SDKs classify theirs.

use std::fmt;

use oauth_wire::ErrorBody;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

/// Everything a call can fail with.
///
/// Status errors are split by status code exactly like the official SDKs' error classes
/// (`BadRequestError`, `AuthenticationError`, ...); each carries an [`ApiError`] with the status,
/// the response headers and the decoded error body (boxed, to keep `Result`s small).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 400.
    #[error("bad request: {0}")]
    BadRequest(Box<ApiError>),
    /// 401: a missing, unknown or expired credential.
    #[error("authentication failed: {0}")]
    Authentication(Box<ApiError>),
    /// 403.
    #[error("permission denied: {0}")]
    PermissionDenied(Box<ApiError>),
    /// 404.
    #[error("not found: {0}")]
    NotFound(Box<ApiError>),
    /// 409.
    #[error("conflict: {0}")]
    Conflict(Box<ApiError>),
    /// 422: the request was understood but a value is invalid.
    #[error("unprocessable entity: {0}")]
    UnprocessableEntity(Box<ApiError>),
    /// 429.
    #[error("rate limited: {0}")]
    RateLimit(Box<ApiError>),
    /// 500 and above.
    #[error("server error: {0}")]
    InternalServer(Box<ApiError>),
    /// Any other unsuccessful status (405, 413, 415, ...).
    #[error("unexpected status: {0}")]
    Status(Box<ApiError>),
    /// The request never got an answer: DNS, refused connection, TLS, reset.
    #[error("connection error: {0}")]
    Connection(#[source] reqwest::Error),
    /// The request (or reading its answer) took longer than the configured timeout.
    #[error("request timed out: {0}")]
    Timeout(#[source] reqwest::Error),
    /// A successful answer whose body is not what the API promises.
    #[error("cannot decode the {status} response: {source}")]
    Decode {
        /// The status of the answer.
        status: StatusCode,
        /// What was wrong with the body.
        #[source]
        source: serde_json::Error,
    },
    /// Nothing was sent: a path parameter (an id, a consent token) is empty, is `.` or `..`, or
    /// contains `/`, `\` or a control character, any of which would send the request to another
    /// path than the one the method names.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// Nothing was sent: the client was configured with something unusable (an invalid base URL
    /// or header), or a request body could not be encoded.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    /// Builds the status error that matches `status`.
    pub(crate) fn from_status(api: ApiError) -> Self {
        let api = Box::new(api);
        match api.status.as_u16() {
            400 => Error::BadRequest(api),
            401 => Error::Authentication(api),
            403 => Error::PermissionDenied(api),
            404 => Error::NotFound(api),
            409 => Error::Conflict(api),
            422 => Error::UnprocessableEntity(api),
            429 => Error::RateLimit(api),
            s if s >= 500 => Error::InternalServer(api),
            _ => Error::Status(api),
        }
    }

    /// The details of a status error; `None` for connection, timeout, decoding and configuration
    /// errors.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::BadRequest(a)
            | Error::Authentication(a)
            | Error::PermissionDenied(a)
            | Error::NotFound(a)
            | Error::Conflict(a)
            | Error::UnprocessableEntity(a)
            | Error::RateLimit(a)
            | Error::InternalServer(a)
            | Error::Status(a) => Some(a),
            _ => None,
        }
    }

    /// The HTTP status of a status error.
    pub fn status(&self) -> Option<StatusCode> {
        self.api_error().map(|a| a.status)
    }

    /// The decoded error body of a status error, when the server sent one.
    pub fn body(&self) -> Option<&ErrorBody> {
        self.api_error().and_then(|a| a.body.as_ref())
    }
}

/// An unsuccessful HTTP answer. Fields may be added in a minor release.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status (400 and above).
    pub status: StatusCode,
    /// The answer's headers (`Retry-After`, `x-request-id`, ...).
    pub headers: HeaderMap,
    /// The JSON error body (`error`, `error_description`, `errors[]`); `None` when the body was
    /// not that JSON (an HTML error page of `/oauth/authorize`, an empty body).
    pub body: Option<ErrorBody>,
    /// The body as received, for the cases `body` cannot describe.
    pub raw_body: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, mut headers: HeaderMap, raw_body: String) -> Self {
        let body = serde_json::from_str::<ErrorBody>(&raw_body).ok();
        hide_credentials(&mut headers);
        ApiError {
            status,
            headers,
            body,
            raw_body,
        }
    }
}

/// Marks the answer headers that may carry a credential as sensitive, so that their values stay
/// out of debug output: a cookie the answer sets, and a redirect's `Location` (the
/// authorization endpoint's holds the code or the consent token in its query).
pub(crate) fn hide_credentials(headers: &mut HeaderMap) {
    for name in [
        reqwest::header::SET_COOKIE,
        reqwest::header::LOCATION,
        reqwest::header::CONTENT_LOCATION,
    ] {
        if let reqwest::header::Entry::Occupied(mut values) = headers.entry(name) {
            for value in values.iter_mut() {
                value.set_sensitive(true);
            }
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        match &self.body {
            Some(b) => {
                write!(f, " {}", b.error)?;
                if let Some(d) = &b.error_description {
                    write!(f, ": {d}")?;
                }
                for e in &b.errors {
                    let at = e
                        .source
                        .as_ref()
                        .and_then(|s| s.pointer.as_deref().or(s.parameter.as_deref()))
                        .unwrap_or("");
                    write!(f, "; {at} {}", e.detail.as_deref().unwrap_or(&e.title))?;
                }
                Ok(())
            }
            None if self.raw_body.is_empty() => Ok(()),
            // An HTML page or other text: show a short prefix, never a whole page.
            None => {
                let short: String = self.raw_body.chars().take(200).collect();
                write!(f, " {short}")
            }
        }
    }
}
