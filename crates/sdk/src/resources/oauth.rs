//! `/oauth/*`: the protocol endpoints (authorize, consent, grants, token, introspection,
//! revocation, JWKS, dynamic registration).

use std::fmt;

use oauth_wire::{
    ConsentDetails, CreateGrantRequest, CreateGrantResponse, IntrospectRequest, IntrospectResponse,
    JwkSet, RegistrationRequest, RegistrationResponse, RevokeRequest, TokenRequest, TokenResponse,
};
use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};

use crate::call::{self, Call};
use crate::client::{Body, Client, Request};
use crate::error::Error;

/// `response_type` of an authorization request (RFC 6749 §3.1.1). New values may be added in a
/// minor release.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseType {
    /// `code`: the authorization code flow, the only one this API speaks.
    #[default]
    Code,
    /// A value this version does not know, sent as is.
    Other(String),
}

impl ResponseType {
    /// The value as sent on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ResponseType::Code => "code",
            ResponseType::Other(s) => s,
        }
    }
}

impl fmt::Display for ResponseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// PKCE `code_challenge_method` (RFC 7636 §4.3). New values may be added in a minor release.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeChallengeMethod {
    /// `S256`: the challenge is BASE64URL(SHA-256(verifier)).
    S256,
    /// `plain`: accepted only where the server operator enabled it.
    Plain,
    /// A value this version does not know, sent as is.
    Other(String),
}

impl CodeChallengeMethod {
    /// The value as sent on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            CodeChallengeMethod::S256 => "S256",
            CodeChallengeMethod::Plain => "plain",
            CodeChallengeMethod::Other(s) => s,
        }
    }
}

impl fmt::Display for CodeChallengeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Query of `GET /oauth/authorize` (RFC 6749 §4.1.1, RFC 7636 §4.3); absent values are left out.
/// Its `Debug` shows `state` as `<redacted>`.
///
/// ```
/// use telnyx_oauth::{random_state, AuthorizeParams, Pkce};
/// let pkce = Pkce::new(); // keep pkce.verifier() for the token request
/// let state = random_state(); // keep it to compare with the answer's
/// let params = AuthorizeParams::new("client-id", "https://example.com/cb")
///     .scope("admin")
///     .state(&state)
///     .pkce(&pkce);
/// assert_eq!(params.client_id, "client-id");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizeParams {
    /// `response_type` (default `code`).
    pub response_type: ResponseType,
    /// `client_id`: the client asking for authorization.
    pub client_id: String,
    /// `redirect_uri`: one of the client's registered redirect URIs.
    pub redirect_uri: String,
    /// `scope`: space-separated scopes.
    pub scope: Option<String>,
    /// `state`, returned unchanged with the answer.
    pub state: Option<String>,
    /// `code_challenge` (PKCE).
    pub code_challenge: Option<String>,
    /// `code_challenge_method` (PKCE).
    pub code_challenge_method: Option<CodeChallengeMethod>,
}

impl fmt::Debug for AuthorizeParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `state` binds the answer to the user's session (RFC 6749 §10.12): not for logs.
        f.debug_struct("AuthorizeParams")
            .field("response_type", &self.response_type)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scope", &self.scope)
            .field("state", &self.state.as_ref().map(|_| "<redacted>"))
            .field("code_challenge", &self.code_challenge)
            .field("code_challenge_method", &self.code_challenge_method)
            .finish()
    }
}

impl AuthorizeParams {
    /// An authorization code request (`response_type=code`) for `client_id`, answered at
    /// `redirect_uri`.
    pub fn new(client_id: impl Into<String>, redirect_uri: impl Into<String>) -> Self {
        AuthorizeParams {
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            ..Default::default()
        }
    }

    /// `response_type` (default `code`).
    pub fn response_type(mut self, response_type: ResponseType) -> Self {
        self.response_type = response_type;
        self
    }

    /// `scope`: space-separated scopes.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// `state`, returned unchanged with the answer.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// `code_challenge` of `pkce` with method `S256` (RFC 7636 §4.3); the verifier stays with
    /// the caller for the token request.
    pub fn pkce(self, pkce: &crate::Pkce) -> Self {
        self.code_challenge(pkce.challenge(), CodeChallengeMethod::S256)
    }

    /// `code_challenge` and `code_challenge_method` (PKCE, RFC 7636 §4.3).
    pub fn code_challenge(
        mut self,
        challenge: impl Into<String>,
        method: CodeChallengeMethod,
    ) -> Self {
        self.code_challenge = Some(challenge.into());
        self.code_challenge_method = Some(method);
        self
    }

    fn query(&self) -> Vec<(String, String)> {
        let mut q = vec![
            ("response_type".to_owned(), self.response_type.to_string()),
            ("client_id".to_owned(), self.client_id.clone()),
            ("redirect_uri".to_owned(), self.redirect_uri.clone()),
        ];
        let optional = [
            ("scope", self.scope.clone()),
            ("state", self.state.clone()),
            ("code_challenge", self.code_challenge.clone()),
            (
                "code_challenge_method",
                self.code_challenge_method.as_ref().map(ToString::to_string),
            ),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                q.push((k.to_owned(), v));
            }
        }
        q
    }
}

/// The answer of `GET /oauth/authorize`: the server redirects (302) and the redirect is not
/// followed, so the caller sees where it points (the login page, the consent page, or the
/// client's `redirect_uri` carrying an error).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizeRedirect {
    /// The status of the answer (302 for a redirect).
    pub status: StatusCode,
    /// The `Location` header, when the server sent one.
    pub location: Option<String>,
}

/// The location without its query, which carries the consent token (or the client's `state`).
impl std::fmt::Debug for AuthorizeRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizeRedirect")
            .field("status", &self.status)
            .field(
                "location",
                &self.location.as_deref().map(oauth_wire::QueryHidden),
            )
            .finish()
    }
}

/// The OAuth protocol endpoints.
#[derive(Debug, Clone, Copy)]
pub struct OAuth<'a> {
    client: &'a Client,
}

impl<'a> OAuth<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        OAuth { client }
    }

    /// `GET /oauth/authorize`: starts the authorization code flow (RFC 6749 §4.1.1) and returns
    /// the redirect without following it. An unknown client or unregistered `redirect_uri`
    /// answers with an HTML error page, returned as a status error.
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// use telnyx_oauth::{AuthorizeParams, CodeChallengeMethod};
    /// let result = client
    ///     .oauth()
    ///     .retrieve_authorize(
    ///         &AuthorizeParams::new("550e8400-e29b-41d4-a716-446655440000", "https://example.com")
    ///             .scope("admin")
    ///             .state("af0ifjsldkj")
    ///             .code_challenge(
    ///                 "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    ///                 CodeChallengeMethod::S256,
    ///             ),
    ///     )
    ///     .await?;
    /// println!("{} -> {:?}", result.status, result.location);
    /// # Ok(()) }
    /// ```
    pub fn retrieve_authorize(&self, params: &AuthorizeParams) -> Call<'a, AuthorizeRedirect> {
        let req = Request::get("/oauth/authorize", &["oauth", "authorize"])
            .query(params.query())
            .accept("text/html")
            .redirect_is_answer();
        Call::new(self.client, Ok(req), |_, _, raw| {
            let location = raw
                .headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Ok(AuthorizeRedirect {
                status: raw.status,
                location,
            })
        })
    }

    /// `GET /oauth/consent/{consent_token}`: what the consent page shows about a pending
    /// authorization request (the `data` of the answer).
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// let oauth = client.oauth().retrieve("consent_token").await?;
    /// println!("{:?} asks for {:?}", oauth.name, oauth.requested_scopes);
    /// # Ok(()) }
    /// ```
    pub fn retrieve(&self, consent_token: &str) -> Call<'a, ConsentDetails> {
        let req = super::path_param("consent_token", consent_token).map(|token| {
            Request::get(
                "/oauth/consent/{consent_token}",
                &["oauth", "consent", token],
            )
        });
        Call::new(self.client, req, call::data)
    }

    /// `POST /oauth/grants`: the user's consent decision; the answer is where to send the
    /// browser (the client's `redirect_uri` with a `code`, or with `error=access_denied`).
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// use telnyx_oauth::CreateGrantRequest;
    /// let response = client
    ///     .oauth()
    ///     .grants(&CreateGrantRequest::new(
    ///         true,
    ///         "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.example",
    ///     ))
    ///     .await?;
    /// println!("{}", response.redirect_uri);
    /// # Ok(()) }
    /// ```
    pub fn grants(&self, params: &CreateGrantRequest) -> Call<'a, CreateGrantResponse> {
        // The consent token is spent by the decision: not sent again once it may have been.
        let req = Request::new(Method::POST, "/oauth/grants", &["oauth", "grants"])
            .single_use(true)
            .json(params);
        Call::new(self.client, req, call::json)
    }

    /// `POST /oauth/introspect` (RFC 7662): whether a token is active, and what it carries.
    /// Form-encoded unless the client was built with [`crate::BodyEncoding::Json`].
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// use telnyx_oauth::IntrospectRequest;
    /// let response = client
    ///     .oauth()
    ///     .introspect(&IntrospectRequest::new(
    ///         "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.example",
    ///     ))
    ///     .await?;
    /// println!("active: {}", response.active);
    /// # Ok(()) }
    /// ```
    pub fn introspect(&self, params: &IntrospectRequest) -> Call<'a, IntrospectResponse> {
        let req = self.protocol_post("/oauth/introspect", "introspect", params);
        Call::new(self.client, req, call::json)
    }

    /// `GET /oauth/jwks`: the public keys that verify access tokens (RFC 7517).
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// let response = client.oauth().retrieve_jwks().await?;
    /// for key in &response.keys {
    ///     // Only `kty` is required (RFC 7517 §4).
    ///     println!("{} {:?} {:?}", key.kty, key.kid, key.alg);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn retrieve_jwks(&self) -> Call<'a, JwkSet> {
        let req = Request::get("/oauth/jwks", &["oauth", "jwks"]);
        Call::new(self.client, Ok(req), call::json)
    }

    /// `POST /oauth/register`: dynamic client registration (RFC 7591), always JSON.
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// use telnyx_oauth::RegistrationRequest;
    /// let response = client
    ///     .oauth()
    ///     .register(
    ///         &RegistrationRequest::new()
    ///             .client_name("My app")
    ///             .redirect_uris(["https://example.com/callback"]),
    ///     )
    ///     .await?;
    /// println!("{} {:?}", response.client_id, response.client_secret);
    /// # Ok(()) }
    /// ```
    pub fn register(&self, params: &RegistrationRequest) -> Call<'a, RegistrationResponse> {
        // The answer is the only place the secret and registration access token are shown.
        let req = Request::new(Method::POST, "/oauth/register", &["oauth", "register"])
            .once_answered()
            .json(params);
        Call::new(self.client, req, call::json)
    }

    /// `GET /oauth/register/{client_id}` (RFC 7592 §2.1): the registration as it stands, read
    /// with the `registration_access_token` that came with it (sent as the bearer token of this
    /// call instead of the client's own credential).
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// let registration = client
    ///     .oauth()
    ///     .retrieve_registration("client-id", "registration-access-token")
    ///     .await?;
    /// println!("{:?}", registration.client_name);
    /// # Ok(()) }
    /// ```
    pub fn retrieve_registration(
        &self,
        client_id: &str,
        registration_access_token: &str,
    ) -> Call<'a, RegistrationResponse> {
        let req = super::path_param("client_id", client_id)
            .map(|id| Request::get("/oauth/register/{client_id}", &["oauth", "register", id]));
        registrant(
            Call::new(self.client, req, call::json),
            registration_access_token,
        )
    }

    /// `PUT /oauth/register/{client_id}` (RFC 7592 §2.2): replaces the registration's metadata
    /// under the server's registration rules; the authentication method cannot change.
    pub fn update_registration(
        &self,
        client_id: &str,
        registration_access_token: &str,
        params: &RegistrationRequest,
    ) -> Call<'a, RegistrationResponse> {
        let req = super::path_param("client_id", client_id).and_then(|id| {
            Request::new(
                Method::PUT,
                "/oauth/register/{client_id}",
                &["oauth", "register", id],
            )
            .json(params)
        });
        registrant(
            Call::new(self.client, req, call::json),
            registration_access_token,
        )
    }

    /// `DELETE /oauth/register/{client_id}` (RFC 7592 §2.3): deletes the client, with its
    /// grants and tokens (answered 204 without a body).
    pub fn delete_registration(
        &self,
        client_id: &str,
        registration_access_token: &str,
    ) -> Call<'a, ()> {
        let req = super::path_param("client_id", client_id).map(|id| {
            Request::new(
                Method::DELETE,
                "/oauth/register/{client_id}",
                &["oauth", "register", id],
            )
            .accept("*/*")
        });
        registrant(
            Call::new(self.client, req, call::unit),
            registration_access_token,
        )
    }

    /// `POST /oauth/token` (RFC 6749 §4.1.3, §4.4.2, §6): exchanges a code, client credentials or
    /// a refresh token for an access token. Form-encoded unless the client was built with
    /// [`crate::BodyEncoding::Json`].
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// use telnyx_oauth::{GrantType, TokenRequest};
    /// let response = client
    ///     .oauth()
    ///     .token(
    ///         &TokenRequest::new(GrantType::ClientCredentials)
    ///             .client_id("client-id")
    ///             .client_secret("client-secret"),
    ///     )
    ///     .await?;
    /// println!("{} expires in {} s", response.token_type, response.expires_in);
    /// # Ok(()) }
    /// ```
    pub fn token(&self, params: &TokenRequest) -> Call<'a, TokenResponse> {
        // A code or a refresh token is spent by the exchange: not sent again once it may have
        // been (a second presentation revokes what the first one issued).
        let single_use = params.code.is_some() || params.refresh_token.is_some();
        let req = self
            .protocol_post("/oauth/token", "token", params)
            .map(|r| r.single_use(single_use));
        Call::new(self.client, req, call::json)
    }

    /// `POST /oauth/revoke` (RFC 7009): revokes an access or refresh token. Revoking a token
    /// that is unknown or already revoked also succeeds (§2.2).
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// use telnyx_oauth::RevokeRequest;
    /// client
    ///     .oauth()
    ///     .revoke(&RevokeRequest::new("refresh-token").token_type_hint("refresh_token"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn revoke(&self, params: &RevokeRequest) -> Call<'a, ()> {
        let req = self.protocol_post("/oauth/revoke", "revoke", params);
        Call::new(self.client, req, call::unit)
    }

    /// A POST to `/oauth/<endpoint>` with the body in the configured encoding.
    fn protocol_post(
        &self,
        template: &'static str,
        endpoint: &str,
        params: &impl serde::Serialize,
    ) -> Result<Request, Error> {
        let body = Body::encode(params, self.client.body_encoding())?;
        Ok(Request::new(Method::POST, template, &["oauth", endpoint]).body(body))
    }
}

/// A call authenticated with a registration access token (RFC 7592 §3) instead of the
/// client's own credential.
fn registrant<'a, T: Send + 'a>(call: Call<'a, T>, registration_access_token: &str) -> Call<'a, T> {
    call.header(
        "Authorization",
        format!("Bearer {registration_access_token}"),
    )
}
