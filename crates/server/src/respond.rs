//! Small response builders shared by the routes: redirects and the no-store headers of token
//! responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A redirect to `location` with this status, never cached (the location may carry a code or a
/// consent token). A location that is not a valid header value is left out.
fn redirect(status: StatusCode, location: &str) -> Response {
    let mut resp = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// 302 Found: the authorization request's answers.
pub fn found(location: &str) -> Response {
    redirect(StatusCode::FOUND, location)
}

/// 303 See Other: the answer to a form post.
pub fn see_other(location: &str) -> Response {
    redirect(StatusCode::SEE_OTHER, location)
}

/// RFC 6749 §5.1: token responses must not be cached.
pub fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
