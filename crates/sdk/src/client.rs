//! The client: configuration, authentication and the one request loop every call goes through
//! (headers, retries, error classification).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT,
};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use tokio::sync::Mutex;
use tracing::Instrument as _;
use url::Url;

use crate::call::RequestOptions;
use crate::error::{ApiError, Error};
use crate::metadata_document::is_loopback;
use crate::resources::{OAuth, OAuthClients, OAuthGrants, WellKnown};
use crate::retry::{self, Backoff};

/// Where the official API lives; every path is relative to it.
pub const DEFAULT_BASE_URL: &str = "https://api.telnyx.com/v2";
/// How long one attempt may take, connection and body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times a failed attempt is retried (so at most three attempts by default).
pub const DEFAULT_MAX_RETRIES: u32 = 2;

const SDK_USER_AGENT: &str = concat!("telnyx-oauth-rust/", env!("CARGO_PKG_VERSION"));
/// A cached client-credentials token is renewed this long before it expires, so that it does not
/// expire in flight (the official SDKs use the same margin).
const TOKEN_RENEWAL_MARGIN: Duration = Duration::from_secs(10);

/// The longest a client-credentials token is kept before it is renewed, whatever `expires_in`
/// says (so that a huge value cannot overflow the clock).
const MAX_TOKEN_CACHE: Duration = Duration::from_secs(24 * 60 * 60);

/// The largest answer read: past it the call fails with [`Error::Decode`] (a `Content-Length`
/// over it fails before the body is read), so a hostile server cannot make the client buffer
/// without bound.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The most of an error answer's body kept in [`ApiError::raw_body`](crate::ApiError); the rest
/// is not read.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// How the token, introspection and revocation bodies are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyEncoding {
    /// `application/x-www-form-urlencoded`, as RFC 6749 §4, RFC 7662 §2.1 and RFC 7009 §2.1
    /// define these requests.
    #[default]
    Form,
    /// `application/json`, as the official Python SDK sends them.
    Json,
}

/// A Telnyx OAuth API client. Cheap to clone: clones share one connection pool and one cached
/// client-credentials token.
///
/// ```no_run
/// # async fn run() -> Result<(), telnyx_oauth::Error> {
/// let client = telnyx_oauth::Client::new("KEY0123456789")?;
/// let page = client.oauth_clients().list(&Default::default()).await?;
/// println!("{} clients", page.meta.total_results);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Options of [`Client::with_options`]; empty for a client from the builder.
    options: RequestOptions,
}

struct Inner {
    http: reqwest::Client,
    timeout: Duration,
    base_url: Url,
    auth: Auth,
    max_retries: u32,
    backoff: Backoff,
    body_encoding: BodyEncoding,
    default_headers: HeaderMap,
}

enum Auth {
    /// No credential: requests go out without `Authorization`, as the official SDKs do.
    None,
    ApiKey(HeaderValue),
    ClientCredentials(TokenSource),
}

/// Client-credentials mode: a token from `<base>/oauth/token`, cached until shortly before it
/// expires.
struct TokenSource {
    /// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
    basic: HeaderValue,
    cached: Mutex<Option<CachedToken>>,
}

#[derive(Clone)]
struct CachedToken {
    bearer: HeaderValue,
    renew_at: Instant,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a credential.
        let auth = match self.inner.auth {
            Auth::None => "none",
            Auth::ApiKey(_) => "api key",
            Auth::ClientCredentials(_) => "client credentials",
        };
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url.as_str())
            .field("auth", &auth)
            .field("max_retries", &self.inner.max_retries)
            .field("body_encoding", &self.inner.body_encoding)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client that authenticates with an API key (`Authorization: Bearer <key>`) against
    /// `https://api.telnyx.com/v2`.
    ///
    /// ```no_run
    /// let client = telnyx_oauth::Client::new("KEY0123456789")?;
    /// # Ok::<(), telnyx_oauth::Error>(())
    /// ```
    pub fn new(api_key: impl Into<String>) -> Result<Client, Error> {
        Client::builder().api_key(api_key).build()
    }

    /// A client configured from the environment: `TELNYX_API_KEY`, `TELNYX_BASE_URL`, and, when
    /// no API key is set, `TELNYX_CLIENT_ID` with `TELNYX_CLIENT_SECRET` for client-credentials
    /// mode. A missing key is not an error: requests then go out without credentials.
    ///
    /// ```no_run
    /// let client = telnyx_oauth::Client::from_env()?;
    /// # Ok::<(), telnyx_oauth::Error>(())
    /// ```
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_env().build()
    }

    /// A client in client-credentials mode (RFC 6749 §4.4): it obtains an access token from the
    /// configured base URL's `/oauth/token` with HTTP Basic, caches it, renews it 10 s before it
    /// expires, and fetches a fresh one once when a request answers 401.
    ///
    /// ```no_run
    /// let client = telnyx_oauth::Client::with_client_credentials("client-id", "client-secret")?;
    /// # Ok::<(), telnyx_oauth::Error>(())
    /// ```
    pub fn with_client_credentials(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Client, Error> {
        Client::builder()
            .client_credentials(client_id, client_secret)
            .build()
    }

    /// A builder with the defaults (nothing read from the environment).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let client = telnyx_oauth::Client::builder()
    ///     .api_key("KEY0123456789")
    ///     .base_url("http://127.0.0.1:8080")
    ///     .timeout(Duration::from_secs(10))
    ///     .max_retries(4)
    ///     .default_header("x-request-source", "billing-job")
    ///     .build()?;
    /// # Ok::<(), telnyx_oauth::Error>(())
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The base URL every path is appended to.
    pub fn base_url(&self) -> &str {
        self.inner.base_url.as_str()
    }

    /// The discovery documents.
    pub fn well_known(&self) -> WellKnown<'_> {
        WellKnown::new(self)
    }

    /// The OAuth protocol endpoints.
    pub fn oauth(&self) -> OAuth<'_> {
        OAuth::new(self)
    }

    /// The organization's OAuth clients.
    pub fn oauth_clients(&self) -> OAuthClients<'_> {
        OAuthClients::new(self)
    }

    /// The user's OAuth grants.
    pub fn oauth_grants(&self) -> OAuthGrants<'_> {
        OAuthGrants::new(self)
    }

    /// A client whose every call uses `options` (over this client's, call by call options over
    /// both), like the official SDKs' `with_options`. The clone shares this client's connection
    /// pool and cached token.
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// use std::time::Duration;
    /// use telnyx_oauth::RequestOptions;
    /// let patient = client.with_options(RequestOptions::new().timeout(Duration::from_secs(120)));
    /// let page = patient.oauth_clients().list(&Default::default()).await?;
    /// # Ok(()) }
    /// ```
    pub fn with_options(&self, options: RequestOptions) -> Client {
        Client {
            inner: self.inner.clone(),
            options: self.options.overlay(&options),
        }
    }

    pub(crate) fn body_encoding(&self) -> BodyEncoding {
        self.inner.body_encoding
    }

    /// Sends `req` with this client's credentials and reads the whole answer; an answer below
    /// 400 is returned as is, everything else is an error.
    pub(crate) async fn execute(&self, req: &Request) -> Result<Raw, Error> {
        let options = self.options.overlay(&req.options);
        let extra_headers = options.header_map()?;
        let span = tracing::debug_span!(
            "telnyx_oauth.request",
            method = %req.method,
            path = req.template,
            status = tracing::field::Empty,
            retries = tracing::field::Empty,
        );
        let call = Attempts {
            options: &options,
            extra_headers: &extra_headers,
            // `X-Stainless-Retry-Count` numbers this call's attempts only; a token fetch on the
            // way counts its own.
            count: 0,
            retries: 0,
        };
        self.send(req, call).instrument(span).await
    }

    async fn send(&self, req: &Request, mut call: Attempts<'_>) -> Result<Raw, Error> {
        // A call that brings its own credential (an RFC 7592 registration access token) is sent
        // with it alone: no client-credentials token is fetched for it, and its 401 does not
        // make the client drop the one it holds.
        if call
            .extra_headers
            .contains_key(reqwest::header::AUTHORIZATION)
        {
            return self.attempts(req, None, &mut call).await;
        }
        match &self.inner.auth {
            Auth::None => self.attempts(req, None, &mut call).await,
            Auth::ApiKey(bearer) => self.attempts(req, Some(bearer), &mut call).await,
            Auth::ClientCredentials(source) => {
                let token = self.access_token(source).await?;
                match self.attempts(req, Some(&token), &mut call).await {
                    // The token may have been revoked or the server restarted with new keys:
                    // drop it and try once more with a fresh one (not a call that spends a
                    // one-time credential: that is never sent twice).
                    Err(Error::Authentication(_)) if !req.single_use => {
                        source.forget(&token).await;
                        let fresh = self.access_token(source).await?;
                        self.attempts(req, Some(&fresh), &mut call).await
                    }
                    other => other,
                }
            }
        }
    }

    /// The cached client-credentials token, fetched first when missing or about to expire. The
    /// fetch uses the client's options, not those of the call that needed the token.
    async fn access_token(&self, source: &TokenSource) -> Result<HeaderValue, Error> {
        // Holding the lock across the fetch makes concurrent callers wait for one token request
        // instead of each sending their own.
        let mut cached = source.cached.lock().await;
        if let Some(t) = cached.as_ref() {
            if Instant::now() < t.renew_at {
                return Ok(t.bearer.clone());
            }
        }
        let requested_at = Instant::now();
        // RFC 6749 §4.4.2; the client authenticates with HTTP Basic, not in the body.
        let grant = oauth_wire::TokenRequest::new(oauth_wire::GrantType::ClientCredentials);
        let body = Body::encode(&grant, self.inner.body_encoding)?;
        let req = Request::new(Method::POST, "/oauth/token", &["oauth", "token"]).body(body);
        let extra_headers = self.options.header_map()?;
        let mut fetch = Attempts {
            options: &self.options,
            extra_headers: &extra_headers,
            count: 0,
            retries: 0,
        };
        let span = tracing::debug_span!(
            "telnyx_oauth.request",
            method = %req.method,
            path = req.template,
            status = tracing::field::Empty,
            retries = tracing::field::Empty,
        );
        let raw = self
            .attempts(&req, Some(&source.basic), &mut fetch)
            .instrument(span)
            .await?;
        let status = raw.status;
        let token: oauth_wire::TokenResponse =
            serde_json::from_slice(&raw.body).map_err(|source| Error::Decode { status, source })?;
        // RFC 6749 §7.1: a client must not use a token whose type it does not understand.
        if !token.token_type.eq_ignore_ascii_case("bearer") {
            return Err(Error::Decode {
                status,
                source: serde::de::Error::custom(format!(
                    "token_type {:?} is not Bearer",
                    token.token_type
                )),
            });
        }
        let bearer = bearer_value(&token.access_token)?;
        let lifetime =
            Duration::from_secs(u64::try_from(token.expires_in).unwrap_or(0)).min(MAX_TOKEN_CACHE);
        let renew_at = requested_at + lifetime.saturating_sub(TOKEN_RENEWAL_MARGIN);
        *cached = Some(CachedToken {
            bearer: bearer.clone(),
            renew_at,
        });
        Ok(bearer)
    }

    /// The retry loop: sends `req`, reads the whole body, and tries again after a transient
    /// failure (connection, timeout, a body cut short, a retryable status). `call.count` numbers
    /// the call's attempts for `X-Stainless-Retry-Count`.
    async fn attempts(
        &self,
        req: &Request,
        auth: Option<&HeaderValue>,
        call: &mut Attempts<'_>,
    ) -> Result<Raw, Error> {
        let inner = &self.inner;
        let span = tracing::Span::current();
        let url = self.url(req)?;
        let max_retries = call.options.max_retries.unwrap_or(inner.max_retries);
        span.record("retries", call.retries);
        loop {
            let attempt = self.build(&url, req, auth, call);
            call.count += 1;
            // The budget is the call's: a resend after a token renewal spends from the same one.
            let may_retry = call.retries < max_retries;
            // Why this attempt failed, and how long the server asked us to wait.
            let (reason, asked): (&str, Option<Duration>) = match attempt.send().await {
                Err(e) => {
                    // A one-time credential goes again only if no connection was made: after a
                    // timeout or a reset the server may have spent it, and presenting it again
                    // would count as a replay (a refresh token's whole family revoked).
                    if !may_retry || (!req.repeatable() && !e.is_connect()) {
                        return Err(transport_error(e));
                    }
                    (failure_reason(&e), None)
                }
                Ok(mut resp) => {
                    // A caller's HTTP client may follow redirects: the answer of another URL is
                    // not this call's (and is not trusted with what it carries).
                    let answered = resp.url();
                    if answered.origin() != url.origin() || answered.path() != url.path() {
                        return Err(Error::Config(
                            "the HTTP client followed a redirect: build it with \
                             reqwest::redirect::Policy::none()"
                                .into(),
                        ));
                    }
                    let status = resp.status();
                    span.record("status", status.as_u16());
                    let headers = resp.headers().clone();
                    // A redirect is an answer only where the call asks for one: elsewhere it
                    // means the request was not done (a proxy sending http to https, say),
                    // and is an error like any other status.
                    let answer =
                        status.is_success() || (req.redirect_is_answer && status.is_redirection());
                    if answer {
                        // The body is part of the answer: one cut short is retried like a
                        // connection that failed.
                        match read_capped(&mut resp, MAX_RESPONSE_BYTES).await {
                            Ok(Ok(body)) => {
                                return Ok(Raw {
                                    status,
                                    headers,
                                    body: body.into(),
                                })
                            }
                            Ok(Err(too_large)) => {
                                return Err(Error::Decode {
                                    status,
                                    source: serde::de::Error::custom(too_large),
                                })
                            }
                            Err(e) if !may_retry || !req.repeatable() => {
                                return Err(transport_error(e))
                            }
                            Err(e) => (failure_reason(&e), None),
                        }
                    } else if !(may_retry
                        && retry::should_retry(status, &headers, req.repeatable()))
                    {
                        // The answer is final; a body we cannot read still leaves the status.
                        let text = read_error_body(&mut resp).await;
                        return Err(Error::from_status(ApiError::new(status, headers, text)));
                    } else {
                        drop(resp);
                        ("status", retry::server_delay(&headers, SystemTime::now()))
                    }
                }
            };
            let delay =
                asked.unwrap_or_else(|| inner.backoff.delay_with_random_jitter(call.retries));
            call.retries += 1;
            span.record("retries", call.retries);
            // Never the URL or the error's text: both can carry ids.
            tracing::debug!(
                retry = call.retries,
                reason,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "retrying the request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    fn url(&self, req: &Request) -> Result<Url, Error> {
        let mut url = self.inner.base_url.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| Error::Config("the base URL cannot take a path".into()))?;
            segments.pop_if_empty();
            // Each segment is percent-encoded, so an id can never change the path.
            segments.extend(req.path.iter());
        }
        Ok(url)
    }

    fn build(
        &self,
        url: &Url,
        req: &Request,
        auth: Option<&HeaderValue>,
        call: &Attempts<'_>,
    ) -> reqwest::RequestBuilder {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(req.accept));
        headers.insert(USER_AGENT, HeaderValue::from_static(SDK_USER_AGENT));
        headers.insert("x-stainless-lang", HeaderValue::from_static("rust"));
        headers.insert(
            "x-stainless-package-version",
            HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
        );
        for (name, value) in crate::platform::HEADERS.iter() {
            headers.insert(*name, value.clone());
        }
        headers.insert("x-stainless-retry-count", HeaderValue::from(call.count));
        if let Some(a) = auth {
            headers.insert(AUTHORIZATION, a.clone());
        }
        // Configured default headers win over ours, as in the official SDKs.
        for (name, value) in &self.inner.default_headers {
            headers.insert(name.clone(), value.clone());
        }
        // And the options' headers win over both.
        for name in call.extra_headers.keys() {
            headers.remove(name);
        }
        for (name, value) in call.extra_headers {
            headers.append(name.clone(), value.clone());
        }
        let mut builder = self
            .inner
            .http
            .request(req.method.clone(), url.clone())
            // Per request, so that it holds for an HTTP client the caller passed in too.
            .timeout(call.options.timeout.unwrap_or(self.inner.timeout))
            .query(&req.query);
        match &req.body {
            Body::Empty => {}
            Body::Json(bytes) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                builder = builder.body(bytes.clone());
            }
            Body::Form(text) => {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                builder = builder.body(text.clone());
            }
        }
        builder.headers(headers)
    }
}

impl TokenSource {
    /// Forgets `used` if it is still the cached token (another task may have renewed it).
    async fn forget(&self, used: &HeaderValue) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| t.bearer == *used) {
            *cached = None;
        }
    }
}

/// A whole answer below 400, before decoding.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

/// The state of one call's attempts: its options and how many attempts it has sent.
struct Attempts<'a> {
    options: &'a RequestOptions,
    extra_headers: &'a HeaderMap,
    count: u32,
    /// Retries spent so far, from the call's `max_retries`.
    retries: u32,
}

/// A fixed word for a failed attempt, for logs: the error's own text names the URL.
fn failure_reason(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "connection"
    }
}

/// Reads the body, at most `limit` bytes: `Ok(Err(why))` past it (a declared length over it
/// is refused before reading).
async fn read_capped(
    resp: &mut reqwest::Response,
    limit: usize,
) -> Result<Result<Vec<u8>, String>, reqwest::Error> {
    let too_large = || format!("the answer is larger than {limit} bytes");
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(Err(too_large()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(Err(too_large()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Ok(body))
}

/// An error answer's body as text: at most [`MAX_ERROR_BODY_BYTES`] of it, and nothing past
/// that is read; a body that cannot be read is empty.
async fn read_error_body(resp: &mut reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_ERROR_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ERROR_BODY_BYTES {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// The transport error, without its URL: a path segment can be a credential (a consent token)
/// and the query of an authorization request carries `state`.
fn transport_error(e: reqwest::Error) -> Error {
    let e = e.without_url();
    if e.is_timeout() {
        Error::Timeout(e)
    } else {
        Error::Connection(e)
    }
}

fn bearer_value(token: &str) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        Error::Config("the credential contains characters a header cannot carry".into())
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// One API call, before credentials and per-attempt headers are added.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: Method,
    /// The path as documented, with `{id}` for parameters: what logs show.
    pub template: &'static str,
    /// Path segments after the base URL, unencoded.
    pub path: Vec<String>,
    pub query: Vec<(String, String)>,
    pub body: Body,
    pub accept: &'static str,
    /// Whether a 3xx is the answer (`retrieve_authorize`); for every other call it is an error.
    pub redirect_is_answer: bool,
    /// Whether the request spends a one-time credential (an authorization code, a refresh
    /// token, a consent token): sent again only when it cannot have been acted on, and not
    /// with a fresh client-credentials token after a 401.
    pub single_use: bool,
    /// Whether the request creates something whose secret is shown only in its answer (a
    /// client, a registration): sent again only when it cannot have been acted on, since a
    /// second one would be made and the first one's secret lost with the answer.
    pub once_answered: bool,
    /// The call's own options, over the client's.
    pub options: RequestOptions,
}

impl Request {
    pub fn new(method: Method, template: &'static str, path: &[&str]) -> Self {
        Request {
            method,
            template,
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: Body::Empty,
            accept: "application/json",
            redirect_is_answer: false,
            single_use: false,
            once_answered: false,
            options: RequestOptions::default(),
        }
    }

    pub fn get(template: &'static str, path: &[&str]) -> Self {
        Request::new(Method::GET, template, path)
    }

    pub fn query(mut self, query: Vec<(String, String)>) -> Self {
        self.query = query;
        self
    }

    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    pub fn json(self, value: &impl Serialize) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::Config(format!("cannot encode the request body: {e}")))?;
        Ok(self.body(Body::Json(bytes)))
    }

    pub fn accept(mut self, accept: &'static str) -> Self {
        self.accept = accept;
        self
    }

    /// A 3xx answers this call (it is not followed).
    pub fn redirect_is_answer(mut self) -> Self {
        self.redirect_is_answer = true;
        self
    }

    /// This call spends a one-time credential ([`Request::single_use`]).
    pub fn single_use(mut self, single_use: bool) -> Self {
        self.single_use = single_use;
        self
    }

    /// This call creates something whose secret only its answer carries
    /// ([`Request::once_answered`]).
    pub fn once_answered(mut self) -> Self {
        self.once_answered = true;
        self
    }

    /// Whether a transient failure after the request went out may be retried: not when the
    /// server may have acted on it and acting twice does harm.
    pub fn repeatable(&self) -> bool {
        !(self.single_use || self.once_answered)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Body {
    Empty,
    Json(Vec<u8>),
    Form(String),
}

impl Body {
    /// Encodes `value` as the configured body encoding.
    pub fn encode(value: &impl Serialize, encoding: BodyEncoding) -> Result<Body, Error> {
        let bad = |e: String| Error::Config(format!("cannot encode the request body: {e}"));
        match encoding {
            BodyEncoding::Form => serde_urlencoded::to_string(value)
                .map(Body::Form)
                .map_err(|e| bad(e.to_string())),
            BodyEncoding::Json => serde_json::to_vec(value)
                .map(Body::Json)
                .map_err(|e| bad(e.to_string())),
        }
    }
}

/// Configures a [`Client`].
///
/// ```no_run
/// use std::time::Duration;
/// use telnyx_oauth::{BodyEncoding, Client};
///
/// let client = Client::builder()
///     .base_url("http://127.0.0.1:8080/v2")
///     .client_credentials("client-id", "client-secret")
///     .body_encoding(BodyEncoding::Json)
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// # Ok::<(), telnyx_oauth::Error>(())
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    base_url: String,
    api_key: Option<String>,
    client_credentials: Option<(String, String)>,
    timeout: Duration,
    max_retries: u32,
    backoff: Backoff,
    body_encoding: BodyEncoding,
    default_headers: Vec<(String, String)>,
    http_client: Option<reqwest::Client>,
    allow_plain_http: bool,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A URL with a password is refused by `build`; until then it is not shown.
        let base_url = match Url::parse(&self.base_url) {
            Ok(u) if u.username().is_empty() && u.password().is_none() => self.base_url.as_str(),
            Ok(_) => "<a URL with a user or password>",
            Err(_) => "<not a URL>",
        };
        f.debug_struct("ClientBuilder")
            .field("base_url", &base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field(
                "client_credentials",
                &self.client_credentials.as_ref().map(|(id, _)| id),
            )
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("body_encoding", &self.body_encoding)
            .field(
                "http_client",
                &self.http_client.as_ref().map(|_| "caller's"),
            )
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: None,
            client_credentials: None,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff: Backoff::default(),
            body_encoding: BodyEncoding::default(),
            default_headers: Vec::new(),
            http_client: None,
            allow_plain_http: false,
        }
    }
}

impl ClientBuilder {
    /// A builder preset from `TELNYX_API_KEY`, `TELNYX_BASE_URL`, `TELNYX_CLIENT_ID` and
    /// `TELNYX_CLIENT_SECRET` (empty values count as unset).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut b = ClientBuilder::default();
        if let Some(url) = var("TELNYX_BASE_URL") {
            b.base_url = url;
        }
        b.api_key = var("TELNYX_API_KEY");
        if b.api_key.is_none() {
            if let (Some(id), Some(secret)) = (var("TELNYX_CLIENT_ID"), var("TELNYX_CLIENT_SECRET"))
            {
                b.client_credentials = Some((id, secret));
            }
        }
        b
    }

    /// Authenticate with an API key (replaces client credentials).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self.client_credentials = None;
        self
    }

    /// Authenticate with a client-credentials token (replaces an API key); see
    /// [`Client::with_client_credentials`].
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.client_credentials = Some((client_id.into(), client_secret.into()));
        self.api_key = None;
        self
    }

    /// The base URL (default `https://api.telnyx.com/v2`). Every call, the `.well-known`
    /// documents and the client-credentials token included, goes to `<base>/...`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Accepts an `http` base URL whose host is not `localhost` or a loopback address (default
    /// no). Without it, [`build`](Self::build) refuses one: every call would carry the API key,
    /// the client secret or a token in clear across the network. For a network that is
    /// trusted end to end (a private link, a service mesh that encrypts).
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// How long one attempt may take (default 60 s); exceeding it is [`Error::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a transient failure is retried (default 2; 0 disables retries).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The computed backoff: `min(initial × 2ⁿ, max)` with jitter (default 0.5 s and 8 s). A
    /// delay the server asks for with `Retry-After` is honoured regardless.
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Backoff { initial, max };
        self
    }

    /// Encoding of the token, introspection and revocation bodies (default form-encoded).
    pub fn body_encoding(mut self, encoding: BodyEncoding) -> Self {
        self.body_encoding = encoding;
        self
    }

    /// A header sent with every request; it replaces a header of the same name the SDK sets.
    pub fn default_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.default_headers.push((name.into(), value.into()));
        self
    }

    /// Sends every request through `http`, an HTTP client of the caller's (a proxy, other TLS
    /// roots, a connection pool shared with the rest of a program) instead of one the SDK builds.
    ///
    /// The SDK's timeout still applies to each attempt and its headers (`User-Agent` included)
    /// are still sent; the connection settings are the caller's. Build it with redirects off
    /// (`reqwest::redirect::Policy::none()`): `retrieve_authorize` returns the redirect itself,
    /// and a followed redirect could carry the credentials to another host.
    ///
    /// ```no_run
    /// let http = reqwest::Client::builder()
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .build()
    ///     .expect("an HTTP client");
    /// let client = telnyx_oauth::Client::builder()
    ///     .api_key("KEY0123456789")
    ///     .http_client(http)
    ///     .build()?;
    /// # Ok::<(), telnyx_oauth::Error>(())
    /// ```
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http_client = Some(http);
        self
    }

    /// The client, or [`Error::Config`] for a base URL that is not an absolute http or https URL
    /// (an `http` one only on `localhost` or a loopback address, unless
    /// [`allow_plain_http`](Self::allow_plain_http)), an invalid default header or unusable
    /// credentials.
    pub fn build(self) -> Result<Client, Error> {
        // The URL itself is never in these errors: it could carry a password.
        let mut base_url = Url::parse(&self.base_url)
            .map_err(|e| Error::Config(format!("invalid base URL: {e}")))?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(Error::Config(format!(
                "the base URL must be an http or https URL, got scheme {:?}",
                base_url.scheme()
            )));
        }
        if base_url.scheme() == "http" && !self.allow_plain_http && !is_loopback(&base_url) {
            return Err(Error::Config(
                "an http base URL would carry credentials in clear: use https, a loopback \
                 address, or allow_plain_http(true) for a network trusted end to end"
                    .into(),
            ));
        }
        if !base_url.username().is_empty() || base_url.password().is_some() {
            return Err(Error::Config(
                "the base URL must not carry a user or password; use an API key or client credentials"
                    .into(),
            ));
        }
        base_url.set_query(None);
        base_url.set_fragment(None);
        let mut default_headers = HeaderMap::new();
        for (name, value) in &self.default_headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::Config(format!("invalid header name {name:?}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| Error::Config(format!("invalid value for header {name}")))?;
            default_headers.append(name, value);
        }
        let auth = match (self.api_key, self.client_credentials) {
            (Some(key), _) => Auth::ApiKey(bearer_value(&key)?),
            (None, Some((id, secret))) => Auth::ClientCredentials(TokenSource::new(&id, &secret)?),
            (None, None) => Auth::None,
        };
        let http = match self.http_client {
            Some(http) => http,
            None => {
                let mut http = reqwest::Client::builder()
                    .connect_timeout(self.timeout.min(Duration::from_secs(5)))
                    // The API answers without redirects, except /oauth/authorize, whose 302 is
                    // the answer itself. Following one would also carry credentials elsewhere.
                    .redirect(reqwest::redirect::Policy::none());
                // Plain http is reached directly: a proxy the environment names (`HTTP_PROXY`,
                // `ALL_PROXY`), on another host for all this knows, would read every
                // credential. Over https a proxy only relays the TLS connection.
                if base_url.scheme() == "http" {
                    http = http.no_proxy();
                }
                http.build()
                    .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?
            }
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                timeout: self.timeout,
                base_url,
                auth,
                max_retries: self.max_retries,
                backoff: self.backoff,
                body_encoding: self.body_encoding,
                default_headers,
            }),
            options: RequestOptions::default(),
        })
    }
}

impl TokenSource {
    fn new(client_id: &str, client_secret: &str) -> Result<Self, Error> {
        use base64::Engine as _;
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        let id: String = url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
        let secret: String =
            url::form_urlencoded::byte_serialize(client_secret.as_bytes()).collect();
        let mut basic = HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        ))
        .map_err(|_| Error::Config("invalid client credentials".into()))?;
        basic.set_sensitive(true);
        Ok(TokenSource {
            basic,
            cached: Mutex::new(None),
        })
    }
}
