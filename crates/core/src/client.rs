//! OAuth clients: the stored record, the settings a user or a registration may choose, and the
//! rules those settings obey.

use oauth_wire::{
    ClientType, CreateOAuthClient, GrantType, OAuthClient, RegistrationRequest,
    RegistrationResponse, TokenEndpointAuthMethod, UpdateOAuthClient,
};
use url::Url;

use crate::redirect_uri::{has_authority, RedirectUri, MAX_URI_LEN};
use crate::scope::{parse_scope_string, ScopeCatalogue, MANAGEMENT_SCOPE};
use crate::timefmt;
use crate::validation::{
    has_long_space_run, has_stacked_marks, is_blank_filler, is_check_mark, is_format_char,
    MAX_SPACE_RUN, MAX_STACKED_MARKS,
};
use crate::validation::{FieldError, ValidationErrors};
use crate::UnixSeconds;

/// The longest client_id this server reads, in bytes. Its own ids are UUIDs; a Client ID
/// Metadata Document's URL may be longer, up to this bound (the token endpoint refuses anything
/// longer before it reaches the database or a rate-limit key).
pub const MAX_CLIENT_ID_BYTES: usize = 255;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_REDIRECT_URIS: usize = 20;
pub const MAX_SCOPES: usize = 100;
pub const MAX_GRANT_TYPES: usize = 10;

/// Where a client came from, which decides whom it belongs to and what it may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOrigin {
    /// First-party: created by a member of an organization through the management API. It
    /// belongs to that organization, and its `client_credentials` tokens act for its creator.
    Management,
    /// Third-party: registered by anyone through `/oauth/register` (RFC 7591). It belongs to
    /// no user and to no organization with members, is never granted a scope the catalogue
    /// keeps from third parties (the management scope above all), and its
    /// `client_credentials` tokens act for no user.
    Registration,
    /// Third-party, exactly like [`ClientOrigin::Registration`]: identified by a Client ID
    /// Metadata Document (its `client_id` is the document's https URL), and kept up to date from
    /// that document.
    MetadataDocument,
}

impl ClientOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientOrigin::Management => "management",
            ClientOrigin::Registration => "registration",
            ClientOrigin::MetadataDocument => "metadata_document",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "management" => Some(ClientOrigin::Management),
            "registration" => Some(ClientOrigin::Registration),
            "metadata_document" => Some(ClientOrigin::MetadataDocument),
            _ => None,
        }
    }
}

/// The organization that holds every third-party client. No user is ever a member of it, so
/// no management credential reaches its clients.
pub const THIRD_PARTY_ORG_ID: &str = "org_third_party_clients";
/// Its name, which no user's organization may take.
pub const THIRD_PARTY_ORG_NAME: &str = "(third-party clients)";

/// A client as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub client_id: String,
    /// The owning organization; [`THIRD_PARTY_ORG_ID`] for a third-party client.
    pub org_id: String,
    /// The user who created it; empty for a third-party client.
    pub user_id: String,
    pub origin: ClientOrigin,
    /// SHA-256 of the secret; `None` for a public client.
    pub secret_hash: Option<String>,
    pub verified: bool,
    pub created_at: UnixSeconds,
    pub updated_at: UnixSeconds,
    pub settings: ClientDraft,
}

/// What a client's owner chooses. Only [`ClientDraft::validate`]d drafts are stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDraft {
    pub name: String,
    pub client_type: ClientType,
    pub require_pkce: bool,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// The client's public keys, a JWK set as JSON text, for `private_key_jwt` (RFC 7523).
    pub jwks: Option<String>,
    /// Where the client publishes its JWK set; never set together with `jwks`.
    pub jwks_uri: Option<String>,
    /// `web` or `native` when the registration said so ([`check_application_type`]).
    pub application_type: Option<String>,
}

/// A partial update: `None` leaves a setting alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientPatch(pub UpdateOAuthClient);

impl Client {
    /// A new client record with this id, created `now`; a confidential client gets a fresh
    /// 256-bit secret, returned in the clear this once (only its hash is kept).
    pub fn new<R: rand::RngCore + rand::CryptoRng>(
        client_id: String,
        settings: ClientDraft,
        origin: ClientOrigin,
        (org_id, user_id): (&str, &str),
        now: UnixSeconds,
        rng: &mut R,
    ) -> (Self, Option<String>) {
        let secret = settings
            .uses_secret()
            .then(|| crate::secret::random_token(rng));
        let client = Client {
            client_id,
            org_id: org_id.to_owned(),
            user_id: user_id.to_owned(),
            origin,
            secret_hash: secret.as_deref().map(crate::secret::hash_secret),
            verified: false,
            created_at: now,
            updated_at: now,
            settings,
        };
        (client, secret)
    }

    pub fn is_confidential(&self) -> bool {
        self.settings.client_type == ClientType::Confidential
    }

    /// May this client authenticate with a signed JWT (RFC 7523 §2.2)? When it has keys and
    /// its method is `private_key_jwt`, or `none` (a public client that may also prove itself).
    pub fn accepts_assertions(&self) -> bool {
        self.settings.has_keys()
            && matches!(
                self.settings.token_endpoint_auth_method,
                TokenEndpointAuthMethod::PrivateKeyJwt | TokenEndpointAuthMethod::None
            )
    }

    /// Must this client authenticate with a signed JWT?
    pub fn requires_assertion(&self) -> bool {
        self.settings.token_endpoint_auth_method == TokenEndpointAuthMethod::PrivateKeyJwt
    }

    /// Is the client allowed this grant type now?
    pub fn allows_grant(&self, grant: &GrantType) -> bool {
        self.settings.grant_types.contains(grant)
    }

    /// Must this client's authorization requests carry a PKCE challenge now? RFC 9700 §2.1.1:
    /// a public client must, a confidential one should; a third party (registered, or a
    /// metadata document) must too, as OAuth 2.1 asks of every client, so that its code is
    /// useless to whoever injects or steals it; and so must a client whose settings ask for it.
    pub fn requires_pkce(&self) -> bool {
        self.settings.client_type == ClientType::Public
            || self.settings.require_pkce
            || self.is_third_party()
    }

    /// May the member `editor` give this client `new` settings? A first-party client whose
    /// `client_credentials` grant carries the management scope makes tokens that act on the
    /// management API for the member who created it (threat-model.md, "Who acts for whom").
    /// Only that member may give a client this power: another member of the organization may
    /// keep or take it away, never add it, or their change would let whoever holds the
    /// client's secret act as the creator.
    pub fn check_edit_by(&self, editor: &str, new: &ClientDraft) -> Result<(), ValidationErrors> {
        if editor == self.user_id
            || self.settings.manages_for_its_creator()
            || !new.manages_for_its_creator()
        {
            return Ok(());
        }
        let pointer = if self.allows_grant(&GrantType::ClientCredentials) {
            "/allowed_scopes"
        } else {
            "/allowed_grant_types"
        };
        Err(ValidationErrors(vec![FieldError::new(
            pointer,
            "creator_only",
            format!(
                "only the member who created this client may give it both client_credentials and the {MANAGEMENT_SCOPE} scope: its client_credentials tokens would act for that member"
            ),
        )]))
    }

    /// Registered by a third party rather than created by an organization.
    pub fn is_third_party(&self) -> bool {
        matches!(
            self.origin,
            ClientOrigin::Registration | ClientOrigin::MetadataDocument
        )
    }

    /// May this client be granted `scope` now, with a user's consent? It must be in the
    /// catalogue. A first-party client may be granted its allowed scopes (a member sets them).
    /// A third-party client may be granted any scope open to third parties: its registered
    /// `scope` is what it asks for by default, not a ceiling (RFC 7591 §2 calls them the scopes
    /// it "can use"), so that it can step up when a resource asks for more (MCP's
    /// `insufficient_scope` challenge) without registering again. A ceiling would protect
    /// nothing anyway: anyone may register a client with every open scope, and the user's
    /// consent decides.
    pub fn may_be_granted(&self, scope: &str, catalogue: &ScopeCatalogue) -> bool {
        match catalogue.get(scope) {
            None => false,
            Some(def) if self.is_third_party() => def.allows_third_party(),
            Some(_) => self.settings.scopes.iter().any(|s| s == scope),
        }
    }

    /// The client's own scopes that it may be granted now, in its order: what an authorization
    /// request without `scope` gets (RFC 6749 §3.3), and, with no user to consent, the most a
    /// client-credentials token gets.
    pub fn own_scopes(&self, catalogue: &ScopeCatalogue) -> Vec<String> {
        self.settings
            .scopes
            .iter()
            .filter(|s| self.may_be_granted(s, catalogue))
            .cloned()
            .collect()
    }

    /// Is `presented` one of the client's registered redirect URIs (exactly; for a loopback
    /// URI, on any port)?
    pub fn accepts_redirect_uri(&self, presented: &str) -> bool {
        self.settings
            .redirect_uris
            .iter()
            .any(|reg| RedirectUri::parse(reg).is_ok_and(|r| r.matches(presented)))
    }

    /// The scopes this client may be granted now with a user's consent
    /// ([`Client::may_be_granted`]): a first-party client's allowed scopes still in the
    /// catalogue, in its order; for a third party, every scope open to third parties, in the
    /// catalogue's order.
    pub fn grantable_scopes(&self, catalogue: &ScopeCatalogue) -> Vec<String> {
        if self.is_third_party() {
            return catalogue.third_party_names();
        }
        self.own_scopes(catalogue)
    }

    /// The management API's view. `client_secret` is filled only by the create response.
    pub fn to_wire(&self, client_secret: Option<String>) -> OAuthClient {
        let s = &self.settings;
        OAuthClient {
            record_type: "oauth_client".to_owned(),
            client_id: self.client_id.clone(),
            client_secret,
            name: s.name.clone(),
            org_id: self.org_id.clone(),
            user_id: self.user_id.clone(),
            client_type: s.client_type.clone(),
            require_pkce: s.require_pkce,
            allowed_grant_types: s.grant_types.clone(),
            allowed_scopes: s.scopes.clone(),
            redirect_uris: s.redirect_uris.clone(),
            logo_uri: s.logo_uri.clone(),
            policy_uri: s.policy_uri.clone(),
            tos_uri: s.tos_uri.clone(),
            created_at: timefmt::datetime(self.created_at),
            updated_at: timefmt::datetime(self.updated_at),
        }
    }

    /// The RFC 7591 §3.2.1 view of a freshly registered client.
    pub fn to_registration_response(&self, client_secret: Option<String>) -> RegistrationResponse {
        let s = &self.settings;
        RegistrationResponse {
            client_id: self.client_id.clone(),
            client_id_issued_at: self.created_at,
            client_secret_expires_at: client_secret.as_ref().map(|_| 0),
            client_secret,
            client_name: Some(s.name.clone()),
            grant_types: s.grant_types.clone(),
            response_types: if s.grant_types.contains(&GrantType::AuthorizationCode) {
                vec!["code".to_owned()]
            } else {
                vec![]
            },
            redirect_uris: s.redirect_uris.clone(),
            scope: Some(s.scopes.join(" ")),
            token_endpoint_auth_method: Some(s.token_endpoint_auth_method.clone()),
            logo_uri: s.logo_uri.clone(),
            policy_uri: s.policy_uri.clone(),
            tos_uri: s.tos_uri.clone(),
            jwks: s.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            jwks_uri: s.jwks_uri.clone(),
            application_type: s.application_type.clone(),
            registration_client_uri: None,
            registration_access_token: None,
        }
    }
}

impl ClientDraft {
    /// From `POST /oauth_clients`, validated.
    pub fn from_create(
        req: CreateOAuthClient,
        catalogue: &ScopeCatalogue,
    ) -> Result<Self, ValidationErrors> {
        let auth = if req.client_type == ClientType::Public {
            TokenEndpointAuthMethod::None
        } else {
            TokenEndpointAuthMethod::ClientSecretBasic
        };
        let draft = ClientDraft {
            name: req.name,
            client_type: req.client_type,
            require_pkce: req.require_pkce.unwrap_or(false),
            grant_types: dedup(req.allowed_grant_types),
            scopes: dedup(req.allowed_scopes),
            redirect_uris: dedup(req.redirect_uris.unwrap_or_default()),
            logo_uri: req.logo_uri,
            policy_uri: req.policy_uri,
            tos_uri: req.tos_uri,
            token_endpoint_auth_method: auth,
            jwks: None,
            jwks_uri: None,
            application_type: None,
        }
        .normalized();
        draft.validate(catalogue)?;
        Ok(draft)
    }

    /// Applies `PUT /oauth_clients/{id}` to the current settings, then validates the result as a
    /// whole (removing the last redirect URI of an `authorization_code` client is an error).
    pub fn apply(
        &self,
        patch: ClientPatch,
        catalogue: &ScopeCatalogue,
    ) -> Result<Self, ValidationErrors> {
        let p = patch.0;
        let mut d = self.clone();
        if let Some(v) = p.name {
            d.name = v;
        }
        if let Some(v) = p.allowed_scopes {
            d.scopes = dedup(v);
        }
        if let Some(v) = p.allowed_grant_types {
            d.grant_types = dedup(v);
        }
        if let Some(v) = p.redirect_uris {
            d.redirect_uris = dedup(v);
        }
        if let Some(v) = p.require_pkce {
            d.require_pkce = v;
        }
        if let Some(v) = p.logo_uri {
            d.logo_uri = v;
        }
        if let Some(v) = p.policy_uri {
            d.policy_uri = v;
        }
        if let Some(v) = p.tos_uri {
            d.tos_uri = v;
        }
        let d = d.normalized();
        d.validate(catalogue)?;
        Ok(d)
    }

    /// From `POST /oauth/register` (RFC 7591 §2), with the RFC's defaults: grant types
    /// `["authorization_code"]`, response types `["code"]`, auth method `client_secret_basic`.
    /// A missing `scope` means `policy.default_scopes`. The client is a third party: scopes the
    /// catalogue keeps from third parties are left out of what it asked for (RFC 7591 §2: the
    /// server may replace requested metadata; the response says what was registered), and
    /// `client_credentials` is refused unless `policy.allow_client_credentials`.
    pub fn from_registration(
        req: RegistrationRequest,
        policy: &RegistrationPolicy<'_>,
    ) -> Result<Self, RegistrationError> {
        let catalogue = policy.catalogue;
        check_application_type(
            req.application_type.as_deref(),
            req.redirect_uris.as_deref().unwrap_or_default(),
        )?;
        let auth = req
            .token_endpoint_auth_method
            .unwrap_or(TokenEndpointAuthMethod::ClientSecretBasic);
        if !auth.is_known() {
            return Err(RegistrationError::metadata(format!(
                "token_endpoint_auth_method {:?} is not supported; use none, client_secret_basic, client_secret_post or private_key_jwt",
                auth.as_str()
            )));
        }
        let jwks = match &req.jwks {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => {
                crate::client_assertion::parse_jwks(v).map_err(RegistrationError::metadata)?;
                Some(
                    serde_json::to_string(v)
                        .map_err(|e| RegistrationError::metadata(e.to_string()))?,
                )
            }
        };
        let jwks_uri = match req.jwks_uri.as_deref() {
            None => None,
            Some(u) => Some(
                crate::client_assertion::check_jwks_uri(u, policy.allow_http_loopback)
                    .map_err(RegistrationError::metadata)?
                    .to_string(),
            ),
        };
        match (&jwks, &jwks_uri, &auth) {
            (Some(_), Some(_), _) => {
                return Err(RegistrationError::metadata(
                    "jwks and jwks_uri are exclusive: send one of them (RFC 7591 §2)",
                ))
            }
            (None, None, TokenEndpointAuthMethod::PrivateKeyJwt) => {
                return Err(RegistrationError::metadata(
                    "private_key_jwt needs the client's public keys: send jwks or jwks_uri",
                ))
            }
            (
                Some(_),
                _,
                TokenEndpointAuthMethod::ClientSecretBasic
                | TokenEndpointAuthMethod::ClientSecretPost,
            )
            | (
                _,
                Some(_),
                TokenEndpointAuthMethod::ClientSecretBasic
                | TokenEndpointAuthMethod::ClientSecretPost,
            ) => {
                return Err(RegistrationError::metadata(
                    "jwks and jwks_uri go with private_key_jwt (or none), not with a client secret",
                ))
            }
            _ => {}
        }
        let grant_types = dedup(
            req.grant_types
                .unwrap_or_else(|| vec![GrantType::AuthorizationCode]),
        );
        let response_types = dedup(req.response_types.unwrap_or_else(|| vec!["code".into()]));
        if let Some(rt) = response_types.iter().find(|rt| *rt != "code") {
            return Err(RegistrationError::metadata(format!(
                "response type {rt:?} is not supported; only \"code\" is"
            )));
        }
        // RFC 7591 §2.1: grant_types and response_types must agree.
        let wants_code = grant_types.contains(&GrantType::AuthorizationCode);
        if wants_code == response_types.is_empty() {
            return Err(RegistrationError::metadata(
                "grant_types and response_types disagree: authorization_code goes with the response type \"code\", and \"code\" needs authorization_code",
            ));
        }
        if grant_types.contains(&GrantType::ClientCredentials) && !policy.allow_client_credentials {
            return Err(RegistrationError::metadata(
                "grant type client_credentials cannot be registered here: a registered client acts only for the users who authorize it (use authorization_code)",
            ));
        }
        let (requested, explicit) = match req.scope {
            Some(s) => (
                parse_scope_string(&s)
                    .map_err(|e| RegistrationError::metadata(format!("scope: {e}")))?,
                true,
            ),
            None => (policy.default_scopes.to_vec(), false),
        };
        // Unknown scopes stay in, for `validate` to name; known ones closed to third parties
        // are narrowed away.
        let scopes: Vec<String> = requested
            .iter()
            .filter(|s| !catalogue.contains(s) || catalogue.allows_third_party(s))
            .cloned()
            .collect();
        if scopes.is_empty() {
            return Err(RegistrationError::metadata(if explicit {
                "none of the requested scopes can be granted to a registered client"
            } else {
                "this server offers no scopes to registered clients"
            }));
        }
        let client_type = if auth == TokenEndpointAuthMethod::None {
            ClientType::Public
        } else {
            ClientType::Confidential
        };
        let name = req
            .client_name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "Unnamed client".to_owned());
        let draft = ClientDraft {
            name,
            client_type,
            require_pkce: false,
            grant_types,
            scopes,
            redirect_uris: dedup(req.redirect_uris.unwrap_or_default()),
            logo_uri: req.logo_uri,
            policy_uri: req.policy_uri,
            tos_uri: req.tos_uri,
            token_endpoint_auth_method: auth,
            jwks,
            jwks_uri,
            application_type: req.application_type,
        }
        .normalized();
        draft
            .validate(catalogue)
            .map_err(RegistrationError::from_validation)?;
        Ok(draft)
    }

    /// Does this client authenticate with a shared secret (and so get one)?
    pub fn uses_secret(&self) -> bool {
        self.client_type == ClientType::Confidential
            && matches!(
                self.token_endpoint_auth_method,
                TokenEndpointAuthMethod::ClientSecretBasic
                    | TokenEndpointAuthMethod::ClientSecretPost
            )
    }

    /// Does this client's `client_credentials` grant carry the management scope? Such a
    /// first-party client's machine tokens act for the member who created it.
    pub fn manages_for_its_creator(&self) -> bool {
        self.grant_types.contains(&GrantType::ClientCredentials)
            && self.scopes.iter().any(|s| s == MANAGEMENT_SCOPE)
    }

    /// May a change made with an access token, not an API key, leave the client with these
    /// settings (`before`: as stored, `None` for a new client)? Not when it gives the client
    /// `client_credentials`: an access token acts within a grant its user can revoke (or a
    /// machine client its organization can delete), and a machine credential it made, whose
    /// secret its answer hands over, would outlive that end: a standing way in that revoking
    /// the grant does not close (threat-model.md, "Who acts for whom"). Only an API key, which
    /// its member holds themselves, brings one into being. A client that has the grant may
    /// keep it or lose it.
    pub fn check_delegated_change(
        before: Option<&ClientDraft>,
        after: &ClientDraft,
    ) -> Result<(), ValidationErrors> {
        let machine = |d: &ClientDraft| d.grant_types.contains(&GrantType::ClientCredentials);
        if !machine(after) || before.is_some_and(machine) {
            return Ok(());
        }
        Err(ValidationErrors(vec![FieldError::new(
            "/allowed_grant_types",
            "api_key_required",
            "only an API key may give a client client_credentials: a client made or changed with an access token would keep acting after the grant behind that token ends",
        )]))
    }

    /// Has this client registered public keys (`jwks` or `jwks_uri`)?
    pub fn has_keys(&self) -> bool {
        self.jwks.is_some() || self.jwks_uri.is_some()
    }

    /// Does `new` change what users are shown or where they are sent (name, logo, the policy
    /// and terms links of the consent page, redirect URIs)? A verified mark vouches for those,
    /// and does not cover new values.
    pub fn changes_what_users_see(&self, new: &ClientDraft) -> bool {
        self.name != new.name
            || self.logo_uri != new.logo_uri
            || self.policy_uri != new.policy_uri
            || self.tos_uri != new.tos_uri
            || self.redirect_uris != new.redirect_uris
    }

    /// How the client proves itself, in three kinds that a registration update may not cross:
    /// nothing (`none`), a shared secret, or a signed JWT.
    pub fn auth_kind(&self) -> &'static str {
        match self.token_endpoint_auth_method {
            TokenEndpointAuthMethod::None => "none",
            TokenEndpointAuthMethod::PrivateKeyJwt => "private_key_jwt",
            _ => "a client secret",
        }
    }

    /// Public clients always need PKCE (RFC 9700 §2.1.1); say so in the stored record.
    fn normalized(mut self) -> Self {
        if self.client_type == ClientType::Public {
            self.require_pkce = true;
            self.token_endpoint_auth_method = TokenEndpointAuthMethod::None;
        }
        self
    }

    /// Every rule a stored client obeys; one error per bad field, each with a JSON pointer in the
    /// management API's field names.
    pub fn validate(&self, catalogue: &ScopeCatalogue) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::default();
        let name = self.name.trim();
        if name.is_empty() {
            e.push(FieldError::new(
                "/name",
                "required",
                "name must not be empty",
            ));
        } else if self.name.chars().count() > MAX_NAME_CHARS {
            e.push(FieldError::new(
                "/name",
                "too_long",
                format!("name must be at most {MAX_NAME_CHARS} characters"),
            ));
        } else if self
            .name
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        {
            // The line and paragraph separators break a line where they are shown as text (the
            // CLI's `clients verify`, a log, a JSON viewer) as a newline would.
            e.push(FieldError::new(
                "/name",
                "invalid_value",
                "name must not contain control characters or line separators",
            ));
        } else if self.name.chars().any(is_format_char) {
            // Bidirectional overrides and zero-width characters make a name read as another
            // on the consent page.
            e.push(FieldError::new(
                "/name",
                "invalid_value",
                "name must not contain invisible formatting characters (bidirectional controls, zero-width characters)",
            ));
        } else if self.name.chars().any(is_blank_filler) || has_long_space_run(&self.name) {
            e.push(FieldError::new(
                "/name",
                "invalid_value",
                format!(
                    "name must not be padded: no blank fillers (Hangul fillers, the blank Braille pattern) and at most {MAX_SPACE_RUN} spaces in a row"
                ),
            ));
        } else if self.name.chars().any(is_check_mark) {
            // The consent page marks a verified client with a check mark.
            e.push(FieldError::new(
                "/name",
                "invalid_value",
                "name must not contain a check mark (the consent page marks verified applications with one)",
            ));
        } else if has_stacked_marks(&self.name) {
            // A pile of combining marks draws over the lines around the name (the verified
            // badge among them).
            e.push(FieldError::new(
                "/name",
                "invalid_value",
                format!(
                    "name must not start with a combining mark or put more than {MAX_STACKED_MARKS} on one letter"
                ),
            ));
        }

        if !self.client_type.is_known() {
            e.push(FieldError::new(
                "/client_type",
                "invalid_value",
                format!(
                    "client_type {:?} is not one of public, confidential",
                    self.client_type.as_str()
                ),
            ));
        }

        if self.grant_types.is_empty() {
            e.push(FieldError::new(
                "/allowed_grant_types",
                "required",
                "allowed_grant_types needs at least one grant type",
            ));
        } else if self.grant_types.len() > MAX_GRANT_TYPES {
            e.push(FieldError::new(
                "/allowed_grant_types",
                "too_long",
                "allowed_grant_types has too many entries",
            ));
        }
        for (i, g) in self.grant_types.iter().enumerate() {
            if !g.is_known() {
                e.push(FieldError::new(
                    format!("/allowed_grant_types/{i}"),
                    "invalid_value",
                    format!(
                        "grant type {:?} is not one of authorization_code, client_credentials, refresh_token",
                        g.as_str()
                    ),
                ));
            }
        }
        let has = |g: GrantType| self.grant_types.contains(&g);
        if has(GrantType::ClientCredentials) && self.client_type == ClientType::Public {
            e.push(FieldError::new(
                "/allowed_grant_types",
                "invalid_value",
                "client_credentials needs a confidential client (RFC 6749 §4.4): a public client has no secret to authenticate with",
            ));
        }
        if has(GrantType::RefreshToken) && !has(GrantType::AuthorizationCode) {
            e.push(FieldError::new(
                "/allowed_grant_types",
                "invalid_value",
                "refresh_token is issued only with authorization_code; add authorization_code or remove refresh_token",
            ));
        }

        if self.scopes.is_empty() {
            e.push(FieldError::new(
                "/allowed_scopes",
                "required",
                "allowed_scopes needs at least one scope",
            ));
        } else if self.scopes.len() > MAX_SCOPES {
            e.push(FieldError::new(
                "/allowed_scopes",
                "too_long",
                format!("allowed_scopes must have at most {MAX_SCOPES} entries"),
            ));
        }
        for (i, s) in self.scopes.iter().enumerate() {
            if !catalogue.contains(s) {
                e.push(FieldError::new(
                    format!("/allowed_scopes/{i}"),
                    "invalid_value",
                    format!(
                        "scope {:?} is not offered by this server; known scopes: {}",
                        truncate(s, 64),
                        catalogue.names().join(", ")
                    ),
                ));
            }
        }

        if self.redirect_uris.len() > MAX_REDIRECT_URIS {
            e.push(FieldError::new(
                "/redirect_uris",
                "too_long",
                format!("redirect_uris must have at most {MAX_REDIRECT_URIS} entries"),
            ));
        }
        for (i, u) in self.redirect_uris.iter().enumerate() {
            if let Err(why) = RedirectUri::parse(u) {
                e.push(FieldError::new(
                    format!("/redirect_uris/{i}"),
                    "invalid_value",
                    format!("redirect URI {why}"),
                ));
            }
        }
        if has(GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            e.push(FieldError::new(
                "/redirect_uris",
                "required",
                "authorization_code needs at least one redirect URI",
            ));
        }

        for (field, value) in [
            ("logo_uri", &self.logo_uri),
            ("policy_uri", &self.policy_uri),
            ("tos_uri", &self.tos_uri),
        ] {
            if let Some(v) = value {
                if let Err(why) = check_web_uri(v) {
                    e.push(FieldError::new(
                        format!("/{field}"),
                        "invalid_value",
                        format!("{field} {why}"),
                    ));
                }
            }
        }
        e.into_result()
    }
}

/// A link shown to users (logo, policy, terms): an absolute http(s) URL with a host and no userinfo.
fn check_web_uri(s: &str) -> Result<(), String> {
    if s.len() > MAX_URI_LEN {
        return Err(format!("must be at most {MAX_URI_LEN} characters"));
    }
    if !s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("must be printable ASCII without spaces".into());
    }
    let url = Url::parse(s).map_err(|_| "must be an absolute URL".to_owned())?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err("must be an http or https URL".into());
    }
    // The url crate reads `https:///x` and `https:x` as `https://x/`: the text must spell the
    // host where it belongs.
    if !has_authority(s) {
        return Err("must be an http or https URL with a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain userinfo".into());
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn dedup<T: PartialEq>(v: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// What the operator decided about registration.
#[derive(Debug, Clone, Copy)]
pub struct RegistrationPolicy<'a> {
    pub catalogue: &'a ScopeCatalogue,
    /// The scopes of a registration that names none.
    pub default_scopes: &'a [String],
    /// May a registration ask for `client_credentials`? Only when the operator says so, and
    /// only behind an initial access token.
    pub allow_client_credentials: bool,
    /// May a `jwks_uri` use plain http on a loopback host (development only)?
    pub allow_http_loopback: bool,
}

/// A registration refused, in RFC 7591 §3.2.2 terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationError {
    /// `invalid_redirect_uri` or `invalid_client_metadata`.
    pub code: &'static str,
    pub description: String,
}

/// OpenID Connect Dynamic Client Registration §2 `application_type`, checked against the
/// redirect URIs as that specification does: a `web` client's redirect URIs are https and not
/// on a loopback host; a `native` client's are a private-use scheme or http on a loopback host
/// (RFC 8252 §7.1, §7.3). `None` (not sent) checks nothing: plain OAuth clients, MCP clients
/// among them, do not send it, and the registration rules still apply. Another value is
/// `invalid_client_metadata`; a redirect URI that does not fit is `invalid_redirect_uri`.
pub fn check_application_type(
    application_type: Option<&str>,
    redirect_uris: &[String],
) -> Result<(), RegistrationError> {
    let Some(kind) = application_type else {
        return Ok(());
    };
    let misfit = |uri: &str, why: &str| RegistrationError {
        code: "invalid_redirect_uri",
        description: format!("redirect URI {uri:?} does not fit application_type {kind:?}: {why}"),
    };
    for uri in redirect_uris {
        let Ok(url) = url::Url::parse(uri) else {
            continue; // refused by the redirect URI rules, with their own message
        };
        let loopback = url.host_str().is_some_and(crate::cimd::is_loopback_host);
        match kind {
            "web" if url.scheme() != "https" => {
                return Err(misfit(uri, "a web client's redirect URIs use https"))
            }
            "web" if loopback => {
                return Err(misfit(uri, "a web client's redirect URIs are not on localhost"))
            }
            "web" => {}
            "native" if url.scheme() == "https" => {
                return Err(misfit(
                    uri,
                    "a native client's redirect URIs are a private-use scheme or http on a loopback host; register an https redirect URI as a web client",
                ))
            }
            "native" if url.scheme() == "http" && !loopback => {
                return Err(misfit(uri, "a native client's http redirect URIs are on a loopback host"))
            }
            "native" => {}
            other => {
                return Err(RegistrationError::metadata(format!(
                    "application_type {other:?} is not supported; use web or native"
                )))
            }
        }
    }
    if !matches!(kind, "web" | "native") {
        return Err(RegistrationError::metadata(format!(
            "application_type {kind:?} is not supported; use web or native"
        )));
    }
    Ok(())
}

impl RegistrationError {
    fn metadata(description: impl Into<String>) -> Self {
        Self {
            code: "invalid_client_metadata",
            description: description.into(),
        }
    }

    /// Maps management-API field errors onto RFC 7591's names and codes.
    fn from_validation(v: ValidationErrors) -> Self {
        let redirect = v.0.iter().any(|e| e.pointer.starts_with("/redirect_uris"));
        let description =
            v.0.iter()
                .map(|e| {
                    e.message
                        .replace("allowed_grant_types", "grant_types")
                        .replace("allowed_scopes", "scope")
                })
                .collect::<Vec<_>>()
                .join("; ");
        Self {
            code: if redirect {
                "invalid_redirect_uri"
            } else {
                "invalid_client_metadata"
            },
            description,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(json: serde_json::Value) -> Result<ClientDraft, ValidationErrors> {
        let req: CreateOAuthClient = serde_json::from_value(json)
            .map_err(|e| ValidationErrors(vec![FieldError::new("/", "parse", e.to_string())]))?;
        ClientDraft::from_create(req, &ScopeCatalogue::default())
    }

    fn pointers(r: Result<ClientDraft, ValidationErrors>) -> Vec<String> {
        r.err()
            .map(|e| e.0.into_iter().map(|f| f.pointer).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_valid_confidential_client() {
        let d = create(serde_json::json!({
            "name": "App", "allowed_scopes": ["admin", "admin"], "client_type": "confidential",
            "allowed_grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["https://app.example.com/cb"]
        }));
        let d = d.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.scopes, vec!["admin"]);
        assert!(!d.require_pkce);
    }

    #[test]
    fn public_clients_always_require_pkce() {
        let d = create(serde_json::json!({
            "name": "SPA", "allowed_scopes": ["admin"], "client_type": "public",
            "allowed_grant_types": ["authorization_code"], "require_pkce": false,
            "redirect_uris": ["http://127.0.0.1/cb"]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(d.require_pkce);
        assert_eq!(d.token_endpoint_auth_method, TokenEndpointAuthMethod::None);
    }

    #[test]
    fn each_rule_points_at_its_field() {
        assert_eq!(
            pointers(create(serde_json::json!({
                "name": " ", "allowed_scopes": ["nope"], "client_type": "confidential",
                "allowed_grant_types": ["authorization_code", "magic"],
                "redirect_uris": ["http://evil.example/cb"], "logo_uri": "javascript:alert(1)"
            }))),
            vec![
                "/name",
                "/allowed_grant_types/1",
                "/allowed_scopes/0",
                "/redirect_uris/0",
                "/logo_uri"
            ]
        );
        assert_eq!(
            pointers(create(serde_json::json!({
                "name": "x", "allowed_scopes": ["admin"], "client_type": "confidential",
                "allowed_grant_types": ["authorization_code"]
            }))),
            vec!["/redirect_uris"]
        );
        assert_eq!(
            pointers(create(serde_json::json!({
                "name": "x", "allowed_scopes": ["admin"], "client_type": "public",
                "allowed_grant_types": ["client_credentials"]
            }))),
            vec!["/allowed_grant_types"]
        );
        assert_eq!(
            pointers(create(serde_json::json!({
                "name": "x".repeat(201), "allowed_scopes": [], "client_type": "secret",
                "allowed_grant_types": []
            }))),
            vec![
                "/name",
                "/client_type",
                "/allowed_grant_types",
                "/allowed_scopes"
            ]
        );
    }

    #[test]
    fn patch_is_validated_as_a_whole() {
        let d = create(serde_json::json!({
            "name": "App", "allowed_scopes": ["admin"], "client_type": "confidential",
            "allowed_grant_types": ["authorization_code"],
            "redirect_uris": ["https://app.example.com/cb"], "logo_uri": "https://app.example.com/l.png"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let cat = ScopeCatalogue::default();
        let cleared = d
            .apply(
                ClientPatch(UpdateOAuthClient::new().clear_logo_uri().name("New")),
                &cat,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cleared.logo_uri, None);
        assert_eq!(cleared.name, "New");
        let broken = d.apply(
            ClientPatch(UpdateOAuthClient::new().redirect_uris(Vec::<String>::new())),
            &cat,
        );
        assert_eq!(pointers(broken), vec!["/redirect_uris"]);
    }

    #[test]
    fn an_access_token_may_not_bring_a_machine_credential_into_being() {
        let draft = |grants: serde_json::Value| {
            create(serde_json::json!({
                "name": "App", "allowed_scopes": ["messaging"], "client_type": "confidential",
                "allowed_grant_types": grants, "redirect_uris": ["https://app.example.com/cb"]
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let web = draft(serde_json::json!(["authorization_code"]));
        let machine = draft(serde_json::json!([
            "authorization_code",
            "client_credentials"
        ]));
        let refused = ClientDraft::check_delegated_change(None, &machine).unwrap_err();
        assert_eq!(refused.0[0].pointer, "/allowed_grant_types");
        assert_eq!(refused.0[0].code, "api_key_required");
        assert!(ClientDraft::check_delegated_change(Some(&web), &machine).is_err());
        // Anything else, and a machine client keeping or losing the grant, is left to the
        // other rules.
        assert_eq!(ClientDraft::check_delegated_change(None, &web), Ok(()));
        assert_eq!(
            ClientDraft::check_delegated_change(Some(&machine), &machine),
            Ok(())
        );
        assert_eq!(
            ClientDraft::check_delegated_change(Some(&machine), &web),
            Ok(())
        );
    }

    #[test]
    fn only_the_creator_may_let_client_credentials_act_with_the_management_scope() {
        let cat = ScopeCatalogue::default();
        let d = create(serde_json::json!({
            "name": "Web app", "allowed_scopes": ["admin", "messaging"], "client_type": "confidential",
            "allowed_grant_types": ["authorization_code"],
            "redirect_uris": ["https://app.example.com/cb"]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let (web, _) = Client::new(
            "c1".into(),
            d,
            ClientOrigin::Management,
            ("org1", "creator"),
            0,
            &mut rand::rngs::OsRng,
        );
        let patched = |client: &Client, patch: UpdateOAuthClient| {
            client
                .settings
                .apply(ClientPatch(patch), &cat)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let codes = |r: Result<(), ValidationErrors>| {
            r.err()
                .map(|e| {
                    e.0.into_iter()
                        .map(|f| (f.pointer, f.code))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let machine = patched(
            &web,
            UpdateOAuthClient::new()
                .allowed_grant_types([GrantType::AuthorizationCode, GrantType::ClientCredentials]),
        );
        assert!(machine.manages_for_its_creator());
        // Another member may not add the grant; the creator may.
        assert_eq!(
            codes(web.check_edit_by("other", &machine)),
            vec![("/allowed_grant_types".to_owned(), "creator_only")]
        );
        assert_eq!(web.check_edit_by("creator", &machine), Ok(()));
        // Nor the scope to a client that has the grant.
        let mut cc = web.clone();
        cc.settings = patched(
            &web,
            UpdateOAuthClient::new()
                .allowed_grant_types([GrantType::ClientCredentials])
                .allowed_scopes(["messaging"]),
        );
        let admin = patched(&cc, UpdateOAuthClient::new().allowed_scopes(["admin"]));
        assert_eq!(
            codes(cc.check_edit_by("other", &admin)),
            vec![("/allowed_scopes".to_owned(), "creator_only")]
        );
        // A client that has the power already may be changed, and lose it, by any member.
        let mut managing = web.clone();
        managing.settings = machine.clone();
        let renamed = patched(&managing, UpdateOAuthClient::new().name("Renamed"));
        assert_eq!(managing.check_edit_by("other", &renamed), Ok(()));
        let narrowed = patched(
            &managing,
            UpdateOAuthClient::new().allowed_scopes(["messaging"]),
        );
        assert_eq!(managing.check_edit_by("other", &narrowed), Ok(()));
        // A grant without the management scope acts for nobody on the management API.
        let plain_cc = patched(
            &web,
            UpdateOAuthClient::new()
                .allowed_grant_types([GrantType::AuthorizationCode, GrantType::ClientCredentials])
                .allowed_scopes(["messaging"]),
        );
        assert_eq!(web.check_edit_by("other", &plain_cc), Ok(()));
    }

    fn policy<'a>(cat: &'a ScopeCatalogue, defaults: &'a [String]) -> RegistrationPolicy<'a> {
        RegistrationPolicy {
            catalogue: cat,
            default_scopes: defaults,
            allow_client_credentials: false,
            allow_http_loopback: false,
        }
    }

    #[test]
    fn application_type_fits_the_redirect_uris() {
        let uris = |u: &[&str]| u.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let ok = |t: Option<&str>, u: &[&str]| check_application_type(t, &uris(u)).is_ok();
        let code =
            |t: Option<&str>, u: &[&str]| check_application_type(t, &uris(u)).err().map(|e| e.code);
        // Not sent: nothing to check (an MCP client's loopback redirect is fine).
        assert!(ok(
            None,
            &["http://127.0.0.1:3000/cb", "https://a.example/cb"]
        ));
        assert!(ok(Some("web"), &["https://a.example/cb"]));
        assert!(ok(
            Some("native"),
            &[
                "http://127.0.0.1/cb",
                "http://[::1]:9/cb",
                "http://localhost/cb",
                "com.example.app:/cb"
            ]
        ));
        for (t, u) in [
            ("web", "http://a.example/cb"),
            ("web", "https://localhost/cb"),
            ("web", "https://127.0.0.1/cb"),
            ("web", "com.example.app:/cb"),
            ("native", "https://a.example/cb"),
            ("native", "http://a.example/cb"),
        ] {
            assert_eq!(code(Some(t), &[u]), Some("invalid_redirect_uri"), "{t} {u}");
        }
        assert_eq!(
            code(Some("desktop"), &["https://a.example/cb"]),
            Some("invalid_client_metadata")
        );
        assert_eq!(code(Some("desktop"), &[]), Some("invalid_client_metadata"));
    }

    #[test]
    fn registration_defaults_and_errors() {
        let cat = ScopeCatalogue::default();
        let defaults = vec!["messaging".to_owned()];
        let p = policy(&cat, &defaults);
        let d = ClientDraft::from_registration(
            RegistrationRequest::new().redirect_uris(["https://a.example/cb"]),
            &p,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(d.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(d.client_type, ClientType::Confidential);
        assert_eq!(
            d.token_endpoint_auth_method,
            TokenEndpointAuthMethod::ClientSecretBasic
        );
        assert_eq!(d.scopes, defaults);

        let public = ClientDraft::from_registration(
            RegistrationRequest::new()
                .redirect_uris(["http://127.0.0.1/cb"])
                .token_endpoint_auth_method(TokenEndpointAuthMethod::None),
            &p,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(public.client_type, ClientType::Public);

        let bad_uri = ClientDraft::from_registration(
            RegistrationRequest::new().redirect_uris(["http://evil.example/cb"]),
            &p,
        );
        assert_eq!(bad_uri.err().map(|e| e.code), Some("invalid_redirect_uri"));

        let disagree = ClientDraft::from_registration(
            RegistrationRequest::new()
                .grant_types([GrantType::AuthorizationCode])
                .response_types(Vec::<String>::new())
                .redirect_uris(["https://a.example/cb"]),
            &p,
        );
        assert_eq!(
            disagree.err().map(|e| e.code),
            Some("invalid_client_metadata")
        );
    }

    #[test]
    fn registration_never_yields_the_management_scope_or_client_credentials() {
        let cat = ScopeCatalogue::default();
        let everything = cat.names();
        let open = policy(&cat, &everything);
        let uris = ["https://a.example/cb"];
        // Asked for with another scope: narrowed away.
        let d = ClientDraft::from_registration(
            RegistrationRequest::new()
                .redirect_uris(uris)
                .scope("admin messaging"),
            &open,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(d.scopes, vec!["messaging"]);
        // Asked for alone: nothing is left.
        let only_admin = ClientDraft::from_registration(
            RegistrationRequest::new()
                .redirect_uris(uris)
                .scope("admin"),
            &open,
        );
        assert_eq!(
            only_admin.err().map(|e| e.code),
            Some("invalid_client_metadata")
        );
        // Defaults that name it (an old configuration) lose it too.
        let d =
            ClientDraft::from_registration(RegistrationRequest::new().redirect_uris(uris), &open)
                .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!d.scopes.contains(&"admin".to_owned()));
        assert_eq!(d.scopes.len(), everything.len() - 1);
        // client_credentials only when the operator allows it.
        let cc = RegistrationRequest::new()
            .grant_types([GrantType::ClientCredentials])
            .response_types(Vec::<String>::new())
            .scope("admin");
        let refused = ClientDraft::from_registration(cc.clone(), &open);
        assert_eq!(
            refused.err().map(|e| e.code),
            Some("invalid_client_metadata")
        );
        let allowed = RegistrationPolicy {
            allow_client_credentials: true,
            ..open
        };
        assert!(ClientDraft::from_registration(cc, &allowed).is_err());
        let d = ClientDraft::from_registration(
            RegistrationRequest::new()
                .grant_types([GrantType::ClientCredentials])
                .response_types(Vec::<String>::new())
                .scope("admin voice"),
            &allowed,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(d.scopes, vec!["voice"]);
    }

    #[test]
    fn names_refuse_invisible_formatting() {
        for name in [
            "Good\u{202E}lppA",
            "Pay\u{200B}Pal",
            "\u{FEFF}App",
            "A\u{2066}B",
            "App\u{2028}verified: yes",
            "App\u{2029}",
            "App\nverified",
            // Padding, and the verified mark's look.
            "App\u{3164}\u{3164}",
            "\u{2800}App",
            "App\u{1160}",
            "App\u{00A0}\u{00A0}\u{00A0}Verified",
            "App    x",
            "Telnyx \u{2713} Verified application",
            "App \u{2705}",
            // Marks between the spaces do not break the run; more check marks.
            "Acme\u{00A0}\u{034F}\u{00A0}\u{034F}\u{00A0}\u{034F}Verified",
            "Acme\u{3000}\u{FE0F}\u{3000}\u{FE0F}\u{3000}x",
            "Acme \u{10102} Verified",
            "Acme \u{237B}",
        ] {
            let r = create(serde_json::json!({
                "name": name, "allowed_scopes": ["admin"], "client_type": "confidential",
                "allowed_grant_types": ["client_credentials"]
            }));
            assert_eq!(pointers(r), vec!["/name"], "{name:?}");
        }
        for name in ["Café 中文 😀", "한국어 앱", "Two  spaces", "Calc \u{221A}"] {
            assert!(
                create(serde_json::json!({
                    "name": name, "allowed_scopes": ["admin"], "client_type": "confidential",
                    "allowed_grant_types": ["client_credentials"]
                }))
                .is_ok(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn third_party_clients_are_granted_only_open_scopes_still_in_the_catalogue() {
        let cat = ScopeCatalogue::default();
        let settings = create(serde_json::json!({
            "name": "App", "allowed_scopes": ["admin", "voice", "gone"], "client_type": "confidential",
            "allowed_grant_types": ["client_credentials"]
        }));
        // "gone" is not in the catalogue, so the draft is refused; build the stored record by
        // hand, as if the catalogue had lost the scope after the client was created.
        assert!(settings.is_err());
        let mut client = Client {
            client_id: "c".into(),
            org_id: "o".into(),
            user_id: "u".into(),
            origin: ClientOrigin::Management,
            secret_hash: None,
            verified: false,
            created_at: 0,
            updated_at: 0,
            settings: create(serde_json::json!({
                "name": "App", "allowed_scopes": ["admin", "voice"], "client_type": "confidential",
                "allowed_grant_types": ["client_credentials"]
            }))
            .unwrap_or_else(|e| panic!("{e}")),
        };
        client.settings.scopes.push("gone".into());
        assert_eq!(client.grantable_scopes(&cat), vec!["admin", "voice"]);
        assert_eq!(client.own_scopes(&cat), vec!["admin", "voice"]);
        assert!(!client.may_be_granted("billing", &cat));
        client.origin = ClientOrigin::Registration;
        // A third party: its own scopes less the closed one by default, and with consent any
        // scope open to third parties; never admin, never one the catalogue lost.
        assert_eq!(client.own_scopes(&cat), vec!["voice"]);
        assert_eq!(
            client.grantable_scopes(&cat),
            vec!["messaging", "voice", "numbers", "billing", "profile"]
        );
        assert!(client.may_be_granted("billing", &cat));
        assert!(!client.may_be_granted("admin", &cat));
        assert!(!client.may_be_granted("gone", &cat));
        assert!(client.is_third_party());
    }
}
