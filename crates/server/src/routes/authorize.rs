//! `GET /oauth/authorize` (RFC 6749 §4.1.1): check the request in the order of
//! `oauth_core::authorize`, find the user, and hand over to the consent step.
//!
//! ```text
//! client/redirect_uri in doubt ─→ HTML error page (400/404/422), never a redirect
//! other errors, client not verified, nobody signed in
//!                   ───────────→ HTML error page (RFC 9700 §4.11.2: open registration must
//!                                not make this server an open redirector)
//! other errors ────────────────→ 302 redirect_uri?error=..&error_description=..&state=..&iss=..
//! nobody signed in ────────────→ 302 /login?return_to=<this request>
//! consent already given (opt) ─→ 302 redirect_uri?code=..&state=..&iss=..
//! otherwise ───────────────────→ 302 <consent page>?consent_token=..
//! ```

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use oauth_core::authorize::{error_redirect, AuthorizeError, AuthorizePolicy, AuthorizeQuery};
use oauth_core::cimd::{classify, ClientIdKind};

use crate::cimd::{document_policy, NotDescribed, Refusal};
use crate::consent;
use crate::error::ApiError;
use crate::form::FormError;
use crate::html;
use crate::rate_limit::RateLimiters;
use crate::respond::found;
use crate::session;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/oauth/authorize", get(authorize))
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(authorize))]
pub(super) struct Doc;

/// Why the decoder refused the link's query, for its page. A parameter's name is the caller's
/// text: cut short (the page escapes it).
fn unreadable_query(e: &FormError) -> String {
    let shown = |name: &str| {
        let mut shown: String = name.chars().take(MAX_NAME_SHOWN).collect();
        if shown.len() < name.len() {
            shown.push('…');
        }
        shown
    };
    match e {
        FormError::NotUtf8 => {
            "The link's parameters are not valid UTF-8 once percent-decoded.".to_owned()
        }
        FormError::Nul(name) => format!(
            "The link's parameter `{}` holds a NUL character (%00), which no parameter may hold.",
            shown(name)
        ),
        // `decode` keeps repeats, for the request's own checks to name in their order.
        FormError::Repeated(name) => format!(
            "The link's parameter `{}` appears more than once.",
            shown(name)
        ),
    }
}

fn refused_document(why: &str) -> Response {
    html::message(
        StatusCode::BAD_REQUEST,
        "This sign-in link is not valid",
        &format!("The application's client metadata document was refused: {why}."),
    )
}

/// The longest parameter name, in characters, an error page repeats.
const MAX_NAME_SHOWN: usize = 64;

/// To the sign-in page, which brings the browser back to this request (`return_to`); a request
/// too long to come back to is a page that says so instead.
fn sign_in_first(uri: &axum::http::Uri) -> Response {
    let here = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/oauth/authorize");
    if here.len() > oauth_core::return_to::MAX_RETURN_TO_BYTES {
        // Signing in could not bring the browser back to a request this long; say so rather
        // than lose it.
        return html::message(
            StatusCode::URI_TOO_LONG,
            "This sign-in link is too long",
            "The application's request is too long to come back to after signing in. Please go back to the application and try again.",
        );
    }
    let login = format!(
        "/login?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", here)
            .finish()
    );
    found(&login)
}

#[utoipa::path(
    get,
    path = "/oauth/authorize",
    operation_id = "AuthorizeOAuth",
    tag = "OAuth",
    summary = "Start the authorization code flow (RFC 6749 §4.1.1)",
    params(
        ("response_type" = String, Query, description = "`code`"),
        ("client_id" = String, Query, description = "The client"),
        ("redirect_uri" = String, Query, description = "One of the client's registered redirect URIs"),
        ("scope" = Option<String>, Query, description = "Space-separated scopes"),
        ("state" = Option<String>, Query, description = "Returned unchanged to the client"),
        ("code_challenge" = Option<String>, Query, description = "PKCE challenge (RFC 7636)"),
        ("code_challenge_method" = Option<String>, Query, description = "`S256` (or `plain` when enabled)"),
    ),
    responses(
        (status = 200, description = "Not sent by this server; listed for compatibility"),
        (status = 302, description = "To the sign-in page, the consent page, or the client with `code` or `error`"),
        (status = 400, description = "A malformed request whose redirect cannot be trusted", content_type = "text/html"),
        (status = 404, description = "Unknown client", content_type = "text/html"),
        (status = 422, description = "Unregistered redirect URI", content_type = "text/html"),
        (status = 429, description = "Rate limited", content_type = "text/html"),
    ),
    security((), ("session" = [])),
)]
async fn authorize(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    // The URI as requested, `/v2` prefix included, for the way back after signing in.
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    // Per client address, before anything is read (docs/rate-limits.md): 429, a page.
    if let Err(page) = state
        .rate_limits
        .authorize_ip(peer.ip(), state.clock.now())
        .await
    {
        return Ok(page);
    }
    let raw = uri.query().unwrap_or("");
    // Repeats are kept: the request's own checks refuse them, in their order.
    let pairs = match crate::form::decode(raw.as_bytes()) {
        Ok(pairs) => pairs,
        Err(e) => {
            return Ok(html::message(
                StatusCode::BAD_REQUEST,
                "This sign-in link is not valid",
                &unreadable_query(&e),
            ))
        }
    };
    let query = AuthorizeQuery(&pairs);
    // Who is asking: read here for the branches that need it before a document is fetched, and
    // again after a fetch (below).
    let mut viewer = session::viewer(&state, &headers).await?;
    let mut described = None;
    let mut client = match query.client_id() {
        Ok(id) => match classify(id, document_policy(&state.config.registration)) {
            ClientIdKind::Registered => state.store.get_client(id).await?,
            // A Client ID Metadata Document: any refusal is a page, never a redirect (the
            // redirect URIs are the document's, and it was not accepted).
            ClientIdKind::Refused(why) => return Ok(refused_document(&why)),
            // Nobody signed in, and a document this server knows nothing of: signing in comes
            // first, and the document is fetched when the browser comes back. A page elsewhere
            // can make its visitors' browsers request made-up document URLs (an image needs no
            // permission, and carries no session cookie); otherwise each would make this server
            // fetch from a host that page names, and spend the visitors' network's budget for
            // new documents (`documents_per_ip`).
            ClientIdKind::Document(url)
                if viewer.is_none()
                    && crate::cimd::is_new(
                        &state.documents,
                        state.store.as_ref(),
                        &url,
                        state.clock.now(),
                    )
                    .await? =>
            {
                return Ok(sign_in_first(&uri));
            }
            ClientIdKind::Document(url) => match crate::cimd::describe(
                &state.documents,
                state.store.as_ref(),
                &state.config,
                state.clock.now(),
                (&url, peer.ip()),
                || state.rate_limits.document_ip(peer.ip(), state.clock.now()),
            )
            .await
            {
                Ok(d) => {
                    let client = d.client().clone();
                    described = Some(d);
                    Some(client)
                }
                Err(NotDescribed::Refused(Refusal::Document(why))) => {
                    return Ok(refused_document(&why.to_string()))
                }
                Err(NotDescribed::Refused(Refusal::Answer(e))) => return Err(e),
                Err(NotDescribed::Limited(page)) => return Ok(page),
            },
        },
        Err(_) => None,
    };
    // Fetching a document can take seconds, and the session may end meanwhile (signed out, or
    // signed out by the owner from another browser): what follows (storing the client, a
    // consent request, a code) is for the caller as they are now.
    if described.is_some() {
        viewer = session::viewer(&state, &headers).await?;
    }
    let resources = state.known_resources();
    let policy = AuthorizePolicy {
        allow_plain_pkce: state.config.authorization.allow_plain_pkce,
        resources: &resources,
        catalogue: &state.config.scopes,
    };
    let request = match query.validate(client.as_ref(), policy) {
        Ok(r) => r,
        Err(AuthorizeError::Page { status, message }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            return Ok(html::message(
                status,
                "This sign-in link is not valid",
                &message,
            ));
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            error,
            description,
            state: client_state,
        }) => {
            // Anyone may register a client with any https redirect URI, and any member of any
            // organization may create one: an unverified client's errors are shown here, with
            // a link on that the user may take, and never sent to its redirect URI
            // automatically (RFC 9700 §4.11.2), unless the user signed in is of the client's
            // own organization. A link to this server would otherwise bounce the browser to
            // whatever address the client's maker registered, even right after the user
            // signed in here.
            let verified = client.as_ref().is_some_and(|c| c.verified);
            let own = match (&client, &viewer) {
                (Some(c), Some(v)) => !c.is_third_party() && c.org_id == v.user.org_id,
                _ => false,
            };
            let refused = format!("The application's request was refused ({error}): {description}");
            let title = "This sign-in link is not valid";
            if !verified && !own {
                let to = error_redirect(
                    &redirect_uri,
                    error,
                    &description,
                    client_state.as_deref(),
                    &state.issuer,
                );
                return Ok(html::message_with_way_on(
                    StatusCode::BAD_REQUEST,
                    title,
                    &refused,
                    &to,
                ));
            }
            return Ok(found(&error_redirect(
                &redirect_uri,
                error,
                &description,
                client_state.as_deref(),
                &state.issuer,
            )));
        }
    };

    let Some(viewer) = viewer else {
        return Ok(sign_in_first(&uri));
    };
    // A document client named for the first time is stored only now, for a signed-in user's
    // valid request: naming document URLs anonymously stores nothing.
    if let Some(d) = described {
        let new = matches!(d, crate::cimd::Described::New(_));
        // A new client is stored for this address: its day's budget bounds how many.
        if new {
            if let Err(wait) = state
                .rate_limits
                .storing_client_allowed(peer.ip(), state.clock.now())
                .await
            {
                return Ok(RateLimiters::page_429(
                    "Too many new applications were added from your network today.",
                    wait,
                ));
            }
        }
        let stored = d.stored(state.store.as_ref(), state.clock.now()).await;
        // Only the request that stored the row spends: the others that described the same new
        // document at once (each waited for the one fetch) found it stored, and their
        // addresses' budgets are not theirs to pay from.
        if matches!(stored, Ok((_, crate::cimd::Created::ByThisCall))) {
            state
                .rate_limits
                .client_stored(peer.ip(), state.clock.now())
                .await;
        }
        match stored {
            Ok((stored, _)) => client = Some(stored),
            Err(Refusal::Document(why)) => return Ok(refused_document(&why.to_string())),
            Err(Refusal::Answer(e)) => return Err(e),
        }
    }

    let may_skip = client
        .as_ref()
        .is_some_and(|c| oauth_core::authorize::may_skip_consent(c, &request.redirect_uri));
    if state.config.authorization.skip_consent_if_granted && may_skip {
        if let Some(grant) = state
            .store
            .find_client_grant(
                &viewer.user.id,
                &request.client_id,
                &oauth_core::cimd::installation(&request.client_id, &request.redirect_uri),
            )
            .await?
        {
            // A request for no resource asks for the issuer (the management API): covered only
            // by a grant never approved for another resource, since the grant does not record
            // the issuer by name. A user who approved a client for an MCP server alone is asked
            // before it gets a token for their organization.
            let covered = request.scopes.iter().all(|s| grant.scopes.contains(s))
                && match &request.resource {
                    Some(r) => grant.resources.contains(r),
                    None => grant.resources.iter().all(|r| *r == *state.issuer),
                };
            if covered {
                let token = consent::create(&state, &viewer.user.id, &request).await?;
                if let Some(location) = consent::decide(&state, &viewer.user, &token, true).await? {
                    return Ok(found(&location));
                }
            }
        }
    }

    let token = consent::create(&state, &viewer.user.id, &request).await?;
    let base = state
        .config
        .authorization
        .consent_url
        .as_deref()
        .unwrap_or("/consent");
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(found(&format!("{base}{sep}consent_token={token}")))
}
