//! The records the server keeps about people and authorizations, as the domain sees them:
//! organizations, users and their API keys, pending consent requests, grants, authorization
//! codes and refresh tokens. The store reads and writes them; the rules in this crate decide
//! on them. Secrets appear only as hashes.

use crate::UnixSeconds;

/// An organization: its members share its OAuth clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub created_at: UnixSeconds,
}

/// A user, a member of one organization; the password only as its argon2id hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: UnixSeconds,
}

/// An API key of a user (the key itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub created_at: UnixSeconds,
    pub last_used_at: Option<UnixSeconds>,
    pub revoked_at: Option<UnixSeconds>,
}

/// A pending authorization request (the consent token's record). `token_hash` is the SHA-256
/// of the consent token; the token itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRequest {
    pub token_hash: String,
    pub user_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub resource: Option<String>,
    pub created_at: UnixSeconds,
    pub expires_at: UnixSeconds,
}

/// A user's standing authorization of a client (`/oauth_grants`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    /// Which installation of the client (`cimd::installation`): empty but for
    /// metadata-document clients, whose grants are kept per redirect URI.
    pub installation: String,
    pub scopes: Vec<String>,
    /// RFC 8707 resources approved for this client.
    pub resources: Vec<String>,
    pub created_at: UnixSeconds,
    pub updated_at: UnixSeconds,
    pub last_used_at: Option<UnixSeconds>,
    pub revoked_at: Option<UnixSeconds>,
}

/// An authorization code (RFC 6749 §4.1.2) as stored: bound to its client, redirect URI, PKCE
/// challenge, scopes, resource, user and grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub resource: Option<String>,
    pub created_at: UnixSeconds,
    pub expires_at: UnixSeconds,
    /// The token family its exchange started; `None` until it is exchanged.
    pub family_id: Option<String>,
}

/// A stored refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub resource: Option<String>,
    pub created_at: UnixSeconds,
    pub expires_at: UnixSeconds,
    pub used_at: Option<UnixSeconds>,
    pub revoked_at: Option<UnixSeconds>,
    /// `None` for a token from before token families (it falls back to its grant).
    pub family_id: Option<String>,
}
