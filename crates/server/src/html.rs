//! The server's own HTML pages (sign-in, consent, messages): askama templates, auto-escaped,
//! served with headers that forbid script (but the consent page's own, by its hash), framing and
//! leaking the URL (which can carry a consent token) in a `Referer`.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The stylesheet every page links; served at [`CSS_PATH`] so that the CSP can stay
/// `style-src 'self'` with no inline style.
pub const CSS: &str = include_str!("../assets/oauth.css");
pub const CSS_PATH: &str = "/assets/oauth.css";

/// The consent page's one script, inline (`assets/consent.js`): it hides the decision for a
/// moment each time the page comes to the front. The page's CSP allows this text alone, by its
/// hash ([`consent_script_source`]); every other page runs no script.
pub const CONSENT_SCRIPT: &str = include_str!("../assets/consent.js");

/// `'sha256-...'` of [`CONSENT_SCRIPT`], the CSP source that lets it run.
pub fn consent_script_source() -> &'static str {
    static SOURCE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(CONSENT_SCRIPT.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    });
    &SOURCE
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    /// A way on that the user may take, as (link, what it says).
    pub onward: Option<(&'a str, String)>,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub csrf_token: &'a str,
    pub return_to: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub email: &'a str,
    pub csrf_token: &'a str,
}

/// One app on the connected apps page.
pub struct AppLine {
    pub grant_id: String,
    pub name: String,
    pub verified: bool,
    pub scopes: Vec<String>,
    pub granted_at: String,
    pub last_used_at: Option<String>,
    pub redirect_host: String,
    /// For one installation of a shared (metadata-document) client: the host this grant's
    /// authorizations return to, which tells installations apart.
    pub installation_host: Option<String>,
    /// That installation is an application on the user's device (a loopback redirect).
    pub installation_local: bool,
    /// For a metadata-document client: the host and path of its document, which tell apart two
    /// documents with the same name, as on the consent page.
    pub document: Option<(String, String)>,
}

/// Where the metadata document of a client whose id is its URL is published: its host (with a
/// port other than the scheme's), and its path, since one host may publish the documents of
/// many makers' applications under the same name (a code host, a storage bucket); `None` for
/// any other client (their ids are not URLs).
pub fn document_place(client_id: &str) -> Option<(String, String)> {
    if !(client_id.starts_with("https://") || client_id.starts_with("http://")) {
        return None;
    }
    let u = url::Url::parse(client_id).ok()?;
    let host = match (u.host_str()?, u.port()) {
        (host, Some(port)) => format!("{host}:{port}"),
        (host, None) => host.to_owned(),
    };
    Some((host, u.path().to_owned()))
}

#[derive(Template)]
#[template(path = "apps.html")]
pub struct AppsPage<'a> {
    pub email: &'a str,
    pub apps: Vec<AppLine>,
    pub csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "password.html")]
pub struct PasswordPage<'a> {
    pub email: &'a str,
    pub csrf_token: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
}

pub struct ScopeLine {
    pub name: String,
    pub description: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub name: &'a str,
    pub initial: String,
    pub logo_uri: Option<&'a str>,
    pub policy_uri: Option<&'a str>,
    pub tos_uri: Option<&'a str>,
    pub verified: bool,
    pub email: &'a str,
    pub scopes: Vec<ScopeLine>,
    pub return_host: String,
    /// What the access is for (RFC 8707): the resource the request names, or this server (the
    /// issuer) when it names none.
    pub resource: &'a str,
    /// `resource` is this server itself.
    pub resource_is_issuer: bool,
    /// For a client identified by a metadata document: the host and path of its client id URL.
    pub document: Option<(String, String)>,
    /// The redirect URI is on this device (a loopback address or localhost, or a private-use
    /// scheme): the page warns that any program there may be posing as the application.
    pub local_redirect: bool,
    pub consent_token: &'a str,
    pub csrf_token: &'a str,
    /// [`CONSENT_SCRIPT`].
    pub script: &'static str,
}

/// Only http(s) links reach an `href` or `src` (client validation already demands it; this
/// keeps a `javascript:` URL out of the page whatever the database holds).
pub fn web_url(u: Option<&str>) -> Option<&str> {
    u.filter(|u| url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "https" | "http")))
}

/// A rendered page with the security headers. `form_action` adds sources to the CSP's
/// `form-action` (the consent form's redirect target: browsers apply `form-action` to the
/// redirect that follows a form submission).
pub fn page(
    status: StatusCode,
    body: Result<String, askama::Error>,
    form_action: &str,
) -> Response {
    page_running(status, body, form_action, None)
}

/// [`page`], allowing the one inline script whose CSP source (its hash) is `script`.
pub fn page_running(
    status: StatusCode,
    body: Result<String, askama::Error>,
    form_action: &str,
    script: Option<&str>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "rendering a page");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server could not render this page",
            )
                .into_response();
        }
    };
    let script_src = script
        .map(|s| format!("; script-src {s}"))
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' https: http:; \
         form-action 'self'{form_action}; frame-ancestors 'none'; base-uri 'none'{script_src}"
    );
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// A page that says one thing.
pub fn message(status: StatusCode, title: &str, message: &str) -> Response {
    message_page(status, title, message, None)
}

fn message_page(
    status: StatusCode,
    title: &str,
    message: &str,
    onward: Option<(&str, String)>,
) -> Response {
    let body = MessagePage {
        title,
        message,
        onward,
    };
    page(status, body.render(), "")
}

/// A page that says one thing and offers the user a link on to `to` (an error response for an
/// application's registered redirect URI), naming where it goes. Only a URL of a scheme that
/// cannot run in this page becomes the link; any other, the page says nothing of.
pub fn message_with_way_on(status: StatusCode, title: &str, message: &str, to: &str) -> Response {
    let safe = url::Url::parse(to).is_ok_and(|u| {
        !matches!(
            u.scheme(),
            "javascript" | "data" | "vbscript" | "file" | "blob" | "about"
        )
    });
    let onward = safe.then(|| (to, format!("Go back to {}", return_host(to))));
    message_page(status, title, message, onward)
}

/// The CSP source for where a redirect URI points: its origin for http(s), its scheme for a
/// private-use scheme (RFC 8252 §7.1). Built from the parsed URL, so nothing from the URI but
/// scheme, host and port reaches the header.
pub fn csp_source(redirect_uri: &str) -> String {
    let Ok(u) = url::Url::parse(redirect_uri) else {
        return String::new();
    };
    match (u.scheme(), u.host_str()) {
        // A host the URL parser lets through with `;` or `,` (no DNS name has them) would end
        // the directive or the source list.
        (scheme @ ("http" | "https"), Some(host))
            if host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b)) =>
        {
            match u.port() {
                Some(p) => format!(" {scheme}://{host}:{p}"),
                None => format!(" {scheme}://{host}"),
            }
        }
        ("http" | "https", _) => String::new(),
        (scheme, _)
            if scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            format!(" {scheme}:")
        }
        _ => String::new(),
    }
}

/// What the user is told about where the browser goes next: the host (or the scheme of an
/// app's private-use URI).
pub fn return_host(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(u) => match u.host_str() {
            Some(h) => match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            },
            None => format!("the app ({}:)", u.scheme()),
        },
        Err(_) => redirect_uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_sources_carry_only_scheme_host_port() {
        assert_eq!(csp_source("https://a.example/cb?x=1"), " https://a.example");
        assert_eq!(
            csp_source("http://127.0.0.1:4000/cb"),
            " http://127.0.0.1:4000"
        );
        assert_eq!(csp_source("com.example.app:/cb"), " com.example.app:");
        assert_eq!(csp_source("http://[::1]:8080/cb"), " http://[::1]:8080");
        // A host that would end the directive or the list adds no source at all.
        for odd in ["https://a;sandbox/cb", "https://a,b/cb", "https://a;b,c/cb"] {
            assert!(url::Url::parse(odd).is_ok(), "{odd} parses");
            assert_eq!(csp_source(odd), "", "{odd}");
        }
        assert_eq!(return_host("https://a.example/cb"), "a.example");
    }
}
