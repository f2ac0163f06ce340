//! Extractors: request bodies and query strings parsed with clear errors, and the caller
//! identified from its credentials.
//!
//! Every body goes through [`JsonBody`] (or, for the OAuth endpoints, a form reader built on the
//! same limit), so that the rules hold everywhere: a wrong content type is 415, more than the
//! configured limit is 413, malformed JSON is 400 and a well-formed body with a bad field is 422
//! with a pointer to that field.

use axum::body::Body;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use oauth_core::entity::User;
use oauth_core::{jwt, secret, FieldError, ValidationErrors};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::json::{escape_pointer, parse_value, JsonError, NUL_IN_JSON};
use crate::state::AppState;
use crate::tokens;

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "the request body must be JSON: send Content-Type: application/json",
            ));
        }
        let bytes = read_body(req.into_body(), &state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    content_type(headers).is_some_and(|ct| {
        ct.eq_ignore_ascii_case("application/json")
            || (starts_with_ignoring_case(ct, "application/")
                && ends_with_ignoring_case(ct, "+json"))
    })
}

/// Whether `Content-Type` is `application/x-www-form-urlencoded` (in any case, parameters
/// ignored).
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    content_type(headers)
        .is_some_and(|ct| ct.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// The media type of `Content-Type`, without parameters, as sent: media types are compared
/// ignoring ASCII case (RFC 9110 §8.3.1), which the callers do.
fn content_type(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next().unwrap_or("").trim())
}

/// The `charset` parameter of `Content-Type`, in lowercase and unquoted, if there is one.
pub(crate) fn charset(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    v.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    })
}

fn starts_with_ignoring_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn ends_with_ignoring_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// Reads the request body: at most `config.max_body_bytes` (more is 413, and a declared
/// `Content-Length` over it is refused before a byte is read), within
/// `server.body_read_timeout_ms` of the head (408 after it, and the connection is closed), so
/// that a body sent a byte at a time cannot hold a connection for longer.
pub(crate) async fn read_body(body: Body, state: &AppState) -> Result<bytes::Bytes, ApiError> {
    let limit = state.config.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("the request body is larger than {limit} bytes"),
        )
    };
    if axum::body::HttpBody::size_hint(&body).lower() > limit as u64 {
        return Err(too_large().with_header(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        ));
    }
    let within = std::time::Duration::from_millis(state.config.server.body_read_timeout_ms);
    match tokio::time::timeout(within, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if is_over_limit(&e) => Err(too_large()),
        // A body that broke off or was framed wrongly (a malformed chunk): the request's
        // mistake, and the connection cannot be read further.
        Ok(Err(_)) => Err(
            ApiError::bad_request("the request body is malformed or was cut off").with_header(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            ),
        ),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request",
            format!(
                "the request body did not arrive within {} ms of its head",
                within.as_millis()
            ),
        )
        .with_header(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        )),
    }
}

/// Whether reading a body failed because it exceeded the limit, not because it was malformed.
fn is_over_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// JSON → `T`: a body that is not JSON at all (bad syntax, trailing bytes, invalid UTF-8, nesting
/// deeper than 128) is 400; JSON of the wrong shape is 422 with a pointer to the field. Every
/// body of this API is a JSON object.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = parse_value(bytes).map_err(|e| match e {
        JsonError::Malformed(e) => ApiError::bad_request(format!("malformed JSON body: {e}")),
        JsonError::Repeated(pointer) => {
            ApiError::validation(ValidationErrors(vec![FieldError::new(
                pointer,
                "duplicate_member",
                "this member name appears more than once in its object",
            )]))
        }
        JsonError::Nul(pointer) => ApiError::validation(ValidationErrors(vec![FieldError::new(
            pointer,
            "invalid_value",
            NUL_IN_JSON,
        )])),
    })?;
    if !value.is_object() {
        return Err(ApiError::validation(ValidationErrors(vec![
            FieldError::new(
                "/",
                "invalid_type",
                "the body must be a JSON object (expected a JSON object)",
            ),
        ])));
    }
    from_value(value)
}

/// A JSON value already read as `T`, a refusal pointing at the member that does not fit.
pub(crate) fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let pointer = json_pointer(err.path());
        let message = humanize(&err.into_inner().to_string());
        let (pointer, code) = refine(&pointer, &message);
        ApiError::validation(ValidationErrors(vec![FieldError::new(
            pointer, code, message,
        )]))
    })
}

fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut s = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => s.push_str(&format!("/{index}")),
            Segment::Map { key } => s.push_str(&format!("/{}", escape_pointer(key))),
            Segment::Enum { variant } => s.push_str(&format!("/{}", escape_pointer(variant))),
            Segment::Unknown => {}
        }
    }
    s
}

/// serde says "missing field `name`" about the parent object; point at the field itself.
/// "unknown field `x`" gets its own code.
fn refine(pointer: &str, message: &str) -> (String, &'static str) {
    if let Some(field) = between(message, "missing field `", "`") {
        return (format!("{pointer}/{}", escape_pointer(field)), "required");
    }
    if let Some(field) = between(message, "unknown field `", "`") {
        // The path may already end at the unknown field.
        let own = format!("/{}", escape_pointer(field));
        let pointer = if pointer.ends_with(&own) {
            pointer.to_owned()
        } else {
            format!("{pointer}{own}")
        };
        return (pointer, "unknown_field");
    }
    let pointer = if pointer.is_empty() { "/" } else { pointer };
    (pointer.to_owned(), "invalid_type")
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &s[s.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// serde's messages name Rust types ("expected struct CreateOAuthClient"); say "a JSON object".
fn humanize(message: &str) -> String {
    match message.find("expected struct ") {
        Some(i) => {
            let rest = &message[i + "expected struct ".len()..];
            let after = rest
                .find(|c: char| !c.is_alphanumeric() && c != '_')
                .unwrap_or(rest.len());
            format!("{}expected a JSON object{}", &message[..i], &rest[after..])
        }
        None => message.to_owned(),
    }
}

/// The longest path parameter that can name something: ids and tokens are far shorter.
pub const MAX_PATH_PARAM_BYTES: usize = 1024;

/// One path parameter (an id, a token), percent-decoded. A segment that does not decode to
/// UTF-8 names nothing: 404 with the JSON error body (axum's own rejection is plain text). Nor
/// does one holding a control character (`%00`, `%0A`...) or longer than
/// [`MAX_PATH_PARAM_BYTES`]: no id or token has them, so they never reach the database.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let not_found = |why: &str| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such resource: {why}"),
            )
        };
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) if value.chars().any(char::is_control) => {
                Err(not_found("the path holds a control character"))
            }
            Ok(axum::extract::Path(value)) if value.len() > MAX_PATH_PARAM_BYTES => Err(not_found(
                &format!("the path segment is longer than {MAX_PATH_PARAM_BYTES} bytes"),
            )),
            Ok(axum::extract::Path(value)) => Ok(PathParam(value)),
            Err(_) => Err(not_found("the path is not valid UTF-8")),
        }
    }
}

/// The query string as key/value pairs, each key at most once (RFC 6749 §3.1: a repeated
/// parameter is an error, never "first one wins"). These are the management lists' pages and
/// filters, none of which can hold a control character: one (`%00`, `%0A`...) is refused with
/// the parameter named.
pub struct QueryParams(pub crate::form::Params);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        let control = |k: String| {
            ApiError::bad_query(ValidationErrors(vec![FieldError::new(
                k,
                "invalid_value",
                "a control character (such as %00) is not allowed in a query parameter",
            )]))
        };
        match crate::form::Params::parse(raw.as_bytes()) {
            Ok(params) => {
                let control_in = params
                    .iter()
                    .find(|(k, v)| {
                        k.chars().any(char::is_control) || v.chars().any(char::is_control)
                    })
                    .map(|(k, _)| k.escape_debug().to_string());
                match control_in {
                    Some(k) => Err(control(k)),
                    None => Ok(QueryParams(params)),
                }
            }
            Err(crate::form::FormError::Repeated(k)) => {
                Err(ApiError::bad_query(ValidationErrors(vec![
                    FieldError::new(k, "repeated", "this parameter appears more than once"),
                ])))
            }
            Err(crate::form::FormError::Nul(k)) => Err(control(k)),
            Err(crate::form::FormError::NotUtf8) => Err(ApiError::bad_request(
                "the query string is not UTF-8 once percent-decoded",
            )),
        }
    }
}

impl QueryParams {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }

    /// Each `filter[..]` or `page[..]` parameter outside `known`, named: a list refuses what it
    /// does not understand rather than ignoring a filter the caller meant.
    pub fn unknown_list_params(&self, known: &[&str]) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        for (k, _) in self.0.iter() {
            if (k.starts_with("filter[") || k.starts_with("page[")) && !known.contains(&k) {
                errors.push(FieldError::new(
                    k,
                    "unknown_parameter",
                    format!(
                        "unknown parameter; this list understands {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        errors
    }
}

/// The user a management call acts for, identified by `Authorization: Bearer <credential>`:
/// an API key (`KEY...`), or an access token this server issued (a JWT), which acts for its
/// user — for a client-credentials token of a first-party client, the member who created it —
/// and must carry the [`MANAGEMENT_SCOPE`]. A third-party client's token never acts here,
/// whatever it carries (docs/threat-model.md).
pub struct Caller {
    pub user: User,
    pub credential: CallerCredential,
}

/// How the caller authenticated.
#[derive(Debug, Clone)]
pub enum CallerCredential {
    ApiKey { id: String },
    AccessToken { client_id: String, jti: String },
}

impl Caller {
    /// Whether the caller acts through an access token (a user's grant to a client, or a
    /// machine client's token) rather than an API key of its own: what it may bring into being
    /// is narrower (`ClientDraft::check_delegated_change`).
    pub fn is_delegated(&self) -> bool {
        matches!(self.credential, CallerCredential::AccessToken { .. })
    }
}

/// The scope an access token needs on the management API.
pub use oauth_core::scope::MANAGEMENT_SCOPE;

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let metadata = state.protected_resource_metadata_url();
        let Some(token) = bearer_token(&parts.headers) else {
            return Err(ApiError::unauthorized(
                "unauthorized",
                "authentication required: send Authorization: Bearer <API key or access token>",
                &metadata,
            ));
        };
        if !token.starts_with(secret::API_KEY_PREFIX) && jwt::looks_like_jwt(token) {
            return access_token_caller(&state, token, &metadata).await;
        }
        let hash = secret::hash_secret(token);
        match state
            .store
            .authenticate_api_key(&hash, state.clock.now())
            .await?
        {
            Some((key, user)) => Ok(Caller {
                user,
                credential: CallerCredential::ApiKey { id: key.id },
            }),
            None => {
                state.log_paces.api_key_rejected(token, state.clock.now());
                Err(ApiError::unauthorized(
                    "invalid_token",
                    "the API key is unknown or revoked",
                    &metadata,
                ))
            }
        }
    }
}

/// RFC 6750 §3.1 / RFC 9068 §4: the token must be active and meant for this server (`aud` is the
/// issuer); without the management scope it is 403 `insufficient_scope`.
async fn access_token_caller(
    state: &AppState,
    token: &str,
    metadata: &str,
) -> Result<Caller, ApiError> {
    let rejected = || {
        ApiError::unauthorized(
            "invalid_token",
            "the access token is invalid, expired or revoked",
            metadata,
        )
    };
    let Some(active) = tokens::active_access_token(state, token, Some(&state.issuer)).await? else {
        let pace = &state.log_paces.rejected_access_token;
        if let Some(not_logged) = pace.admit(state.clock.now()) {
            tracing::info!(token = %secret::log_label(token), not_logged, "rejected access token");
        }
        return Err(rejected());
    };
    // A third-party client is never granted the management scope, and a client that lost it
    // no longer has it: a token that carries it anyway (issued before the trust model, before
    // the client's scopes changed, or under an older catalogue) is refused as if it did not.
    if !active.may_manage(&state.config.scopes) {
        return Err(ApiError::insufficient_scope(MANAGEMENT_SCOPE, metadata));
    }
    let Some(user) = tokens::token_user(state, &active).await? else {
        return Err(rejected());
    };
    Ok(Caller {
        user,
        credential: CallerCredential::AccessToken {
            client_id: active.claims.client_id,
            jti: active.claims.jti,
        },
    })
}

/// The credential of `Authorization: Bearer <credential>` (scheme case-insensitive). One that
/// holds a control character (a tab inside) is no credential: no key or token has one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty() && !token.chars().any(char::is_control)).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_compared_ignoring_case_and_parameters() {
        let with = |ct: &[u8]| {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                axum::http::HeaderValue::from_bytes(ct).unwrap(),
            );
            (is_json(&h), is_form(&h))
        };
        assert_eq!(with(b"application/json"), (true, false));
        assert_eq!(with(b"Application/JSON; charset=utf-8"), (true, false));
        assert_eq!(with(b" application/merge-patch+JSON "), (true, false));
        assert_eq!(
            with(b"APPLICATION/X-WWW-FORM-URLENCODED;charset=UTF-8"),
            (false, true)
        );
        for not in [
            &b"text/json"[..],
            b"application/jsonx",
            b"+json",
            b"application/",
            b"application/x-www-form-urlencodedx",
            b"multipart/form-data",
            b"",
            b"application/\xc3\xa9+json",
        ] {
            assert_eq!(
                with(not),
                (false, false),
                "{}",
                String::from_utf8_lossy(not)
            );
        }
        assert_eq!(
            (is_json(&HeaderMap::new()), is_form(&HeaderMap::new())),
            (false, false)
        );
    }

    #[test]
    fn repeated_member_names_are_found_at_any_depth() {
        let repeated = |b: &[u8]| match parse_value(b) {
            Err(JsonError::Repeated(p)) => Some(p),
            Ok(_) => None,
            Err(JsonError::Malformed(e)) => panic!("{e}"),
            Err(JsonError::Nul(p)) => panic!("NUL at {p}"),
        };
        assert_eq!(repeated(br#"{"a":1,"b":[1,{"c":2}]}"#), None);
        assert_eq!(repeated(br#"{"a":{"x":1},"b":{"x":2}}"#), None);
        assert_eq!(
            repeated(br#"{"name":"a","name":"b"}"#).as_deref(),
            Some("/name")
        );
        // Escapes decode before comparing: "n\u0061me" is "name".
        assert_eq!(
            repeated(br#"{"name":"a","n\u0061me":"b"}"#).as_deref(),
            Some("/name")
        );
        assert_eq!(
            repeated(br#"{"a":[0,{"x/y":1,"x/y":2}]}"#).as_deref(),
            Some("/a/1/x~1y")
        );
    }

    #[test]
    fn nul_in_a_string_or_member_name_is_refused_with_its_pointer() {
        let nul = |b: &[u8]| match parse_value(b) {
            Err(JsonError::Nul(p)) => Some(p),
            Ok(_) => None,
            Err(JsonError::Malformed(e)) => panic!("{e}"),
            Err(JsonError::Repeated(p)) => panic!("repeated {p}"),
        };
        assert_eq!(nul(br#"{"a":"x\u0000"}"#).as_deref(), Some("/a"));
        assert_eq!(
            nul(br#"{"a":[1,{"b":"\u0000"}]}"#).as_deref(),
            Some("/a/1/b")
        );
        assert_eq!(nul(br#"{"ok":1,"x\u0000y":1}"#).as_deref(), Some("/x\0y"));
        assert_eq!(nul(br#""\u0000""#).as_deref(), Some(""));
        // Other escaped control characters are text, as JSON says.
        assert_eq!(nul(br#"{"a":"\u0001\t\n"}"#), None);
        let err =
            parse_json::<serde_json::Value>(br#"{"name":"a\u0000"}"#).expect_err("NUL is refused");
        let response = axum::response::IntoResponse::into_response(err);
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn bearer_credentials_with_control_characters_are_none() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            bearer_token(&h).map(str::to_owned)
        };
        assert_eq!(with("Bearer KEYabc").as_deref(), Some("KEYabc"));
        assert_eq!(with("bearer  KEYabc\t").as_deref(), Some("KEYabc"));
        assert_eq!(with("Bearer KEY\tabc"), None);
        assert_eq!(with("Bearer "), None);
    }

    #[test]
    fn values_are_those_serde_json_builds() {
        for body in [
            &br#"{"a":[1,-2,3.5,1e300,18446744073709551615,true,null,"x\u00e9"],"b":{}}"#[..],
            br#"[]"#,
            br#""s""#,
            br#"0"#,
        ] {
            let ours = parse_value(body).unwrap_or_else(|_| panic!("{body:?}"));
            let theirs: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(ours, theirs);
        }
        for bad in [&b"{\"a\":1} x"[..], b"{\"a\":", b"\xff", b""] {
            assert!(
                matches!(parse_value(bad), Err(JsonError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_body_with_a_repeated_member_is_refused_with_its_pointer() {
        #[derive(serde::Deserialize, Debug)]
        struct Body {
            #[allow(dead_code)]
            name: String,
        }
        let err = parse_json::<Body>(br#"{"name":"a","name":"b"}"#)
            .expect_err("a repeated name is refused");
        let response = axum::response::IntoResponse::into_response(err);
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(parse_json::<Body>(br#"{"name":"a"}"#).is_ok());
    }

    #[test]
    fn humanize_hides_rust_type_names() {
        assert_eq!(
            humanize("invalid type: sequence, expected struct CreateOAuthClient at line 1"),
            "invalid type: sequence, expected a JSON object at line 1"
        );
    }

    #[test]
    fn refine_points_at_missing_fields() {
        assert_eq!(
            refine("", "missing field `name` at line 1 column 2"),
            ("/name".to_owned(), "required")
        );
        assert_eq!(
            refine("", "unknown field `foo`, expected one of"),
            ("/foo".to_owned(), "unknown_field")
        );
        assert_eq!(
            refine("/foo", "unknown field `foo`, expected one of"),
            ("/foo".to_owned(), "unknown_field")
        );
        assert_eq!(
            refine("/a/0", "invalid type"),
            ("/a/0".to_owned(), "invalid_type")
        );
    }
}
