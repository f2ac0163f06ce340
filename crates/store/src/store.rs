//! The one implementation of [`Store`], for both engines: each method is a call into the
//! module of its area (`accounts`, `clients`, `grants`, `tokens`, `keys`, `audit`).

use async_trait::async_trait;
use oauth_core::{Client, ClientDraft, PageSpec, UnixSeconds};

use crate::engine::Engine;
use crate::writes::Exec;
use crate::{accounts, audit, clients, grants, keys, registration, tokens};
use crate::{
    AccountStore, ApiKey, Approval, AuditStore, AuthorizationCode, ClientFilter, ClientStore,
    CodeExchange, CodeRedemption, ConsentRequest, Decide, Grant, GrantStore, KeyStore,
    LoginReservation, NewApiKey, NewRefreshToken, NewSecurityEvent, NewSession, NewTokenFamily,
    NewUser, Organization, Page, RefreshRotation, RefreshToken, Result, SecurityEvent,
    SecurityEventFilter, Store, StoredSigningKey, TokenStore, User,
};

#[async_trait]
impl<B: Engine> AccountStore for B {
    async fn create_user(&self, new: NewUser) -> Result<(User, Organization)> {
        accounts::create_user(self, &new).await
    }

    async fn bootstrap_admin(&self, user: NewUser, key: NewApiKey) -> Result<bool> {
        accounts::bootstrap_admin(self, &user, &key).await
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        accounts::find_user_by_email(self, email).await
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>> {
        accounts::get_user(self, user_id).await
    }

    async fn get_organization(&self, org_id: &str) -> Result<Option<Organization>> {
        accounts::get_organization(self, org_id).await
    }

    async fn find_organization_by_name(&self, name: &str) -> Result<Option<Organization>> {
        accounts::find_organization_by_name(self, name).await
    }

    async fn organization_owner(&self, org_id: &str) -> Result<Option<User>> {
        accounts::organization_owner(self, org_id).await
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        accounts::create_api_key(self, &key).await
    }

    async fn authenticate_api_key(
        &self,
        key_hash: &str,
        now: UnixSeconds,
    ) -> Result<Option<(ApiKey, User)>> {
        accounts::authenticate_api_key(self, key_hash, now).await
    }

    async fn revoke_api_key(&self, key_id: &str, now: UnixSeconds) -> Result<bool> {
        accounts::revoke_api_key(self, key_id, now).await
    }

    async fn create_session(&self, session: NewSession) -> Result<()> {
        accounts::create_session(self, &session).await
    }

    async fn session_user(&self, id_hash: &str, now: UnixSeconds) -> Result<Option<User>> {
        accounts::session_user(self, id_hash, now).await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<bool> {
        accounts::delete_session(self, id_hash).await
    }

    async fn record_login_failure(
        &self,
        keys: &[String],
        now: UnixSeconds,
        forget_before: UnixSeconds,
    ) -> Result<()> {
        accounts::record_login_failure(self, keys, now, forget_before).await
    }

    async fn login_failures(&self, key: &str, since: UnixSeconds) -> Result<u64> {
        accounts::login_failures(self, key, since).await
    }

    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        accounts::clear_login_failures(self, key).await
    }

    async fn reserve_login_attempt(
        &self,
        keys: &[(String, u64)],
        now: UnixSeconds,
        since: UnixSeconds,
    ) -> Result<LoginReservation> {
        accounts::reserve_login_attempt(self, keys, now, since).await
    }

    async fn release_login_attempt(&self, keys: &[String], at: UnixSeconds) -> Result<()> {
        accounts::release_login_attempt(self, keys, at).await
    }
}

#[async_trait]
impl<B: Engine> ClientStore for B {
    async fn insert_client(&self, c: &Client) -> Result<()> {
        clients::insert(self, c).await
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<Client>> {
        clients::get(self, client_id).await
    }

    async fn get_org_client(&self, org_id: &str, client_id: &str) -> Result<Option<Client>> {
        clients::get_in_org(self, org_id, client_id).await
    }

    async fn list_clients(
        &self,
        org_id: &str,
        f: &ClientFilter,
        page: PageSpec,
    ) -> Result<Page<Client>> {
        clients::list(self, org_id, f, page).await
    }

    async fn update_client(
        &self,
        org_id: &str,
        client_id: &str,
        s: &ClientDraft,
        clear_verified: bool,
        now: UnixSeconds,
    ) -> Result<Option<Client>> {
        clients::update(self, org_id, client_id, s, clear_verified, now).await
    }

    async fn delete_client(&self, org_id: &str, client_id: &str) -> Result<bool> {
        clients::delete(self, org_id, client_id).await
    }

    async fn set_client_verified(
        &self,
        client_id: &str,
        verified: bool,
        now: UnixSeconds,
    ) -> Result<bool> {
        clients::set_verified(self, client_id, verified, now).await
    }

    async fn set_registration_token_hash(&self, client_id: &str, token_hash: &str) -> Result<()> {
        registration::set_token_hash(self, client_id, token_hash).await
    }

    async fn registration_token_hash(&self, client_id: &str) -> Result<Option<String>> {
        registration::token_hash(self, client_id).await
    }
}

#[async_trait]
impl<B: Engine> GrantStore for B {
    async fn create_consent(&self, c: &ConsentRequest) -> Result<()> {
        grants::create_consent(self, c).await
    }

    async fn get_consent(
        &self,
        token_hash: &str,
        user_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<ConsentRequest>> {
        grants::get_consent(self, token_hash, user_id, now).await
    }

    async fn consume_consent(
        &self,
        token_hash: &str,
        user_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<ConsentRequest>> {
        grants::consume_consent(self, token_hash, user_id, now).await
    }

    async fn approve_consent(
        &self,
        token_hash: &str,
        user_id: &str,
        a: &Approval,
    ) -> Result<Option<(ConsentRequest, Grant, AuthorizationCode)>> {
        grants::approve_consent(self, token_hash, user_id, a).await
    }

    async fn redeem_authorization_code(
        &self,
        code_hash: &str,
        now: UnixSeconds,
    ) -> Result<CodeRedemption> {
        grants::redeem_code(self, code_hash, now).await
    }

    async fn exchange_authorization_code(
        &self,
        code_hash: &str,
        client_id: &str,
        family: &NewTokenFamily,
        now: UnixSeconds,
        decide: Decide,
    ) -> Result<CodeExchange> {
        grants::exchange_code(self, code_hash, client_id, family, now, decide).await
    }

    async fn list_grants(&self, user_id: &str, page: PageSpec) -> Result<Page<Grant>> {
        grants::list(self, user_id, page).await
    }

    async fn get_user_grant(&self, user_id: &str, grant_id: &str) -> Result<Option<Grant>> {
        grants::get_user_grant(self, user_id, grant_id).await
    }

    async fn find_client_grant(&self, user_id: &str, client_id: &str) -> Result<Option<Grant>> {
        grants::find_client_grant(self, user_id, client_id).await
    }

    async fn revoke_grant(
        &self,
        user_id: &str,
        grant_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<Grant>> {
        grants::revoke(self, user_id, grant_id, now).await
    }

    async fn live_grant(&self, grant_id: &str) -> Result<Option<Grant>> {
        grants::live(self, grant_id).await
    }

    async fn touch_grant(&self, grant_id: &str, now: UnixSeconds) -> Result<bool> {
        grants::touch(self, grant_id, now).await
    }

    async fn purge_authorization(
        &self,
        now: UnixSeconds,
        forget_failures_before: UnixSeconds,
        limit: i64,
    ) -> Result<u64> {
        grants::purge_authorization(self, now, forget_failures_before, limit).await
    }
}

#[async_trait]
impl<B: Engine> TokenStore for B {
    async fn live_token_family(&self, family_id: &str) -> Result<bool> {
        tokens::live_family(self, family_id).await
    }

    async fn revoke_access_token(
        &self,
        jti: &str,
        exp: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool> {
        tokens::revoke_access(self, jti, exp, now).await
    }

    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool> {
        tokens::is_access_revoked(self, jti).await
    }

    async fn purge_revoked_tokens(&self, now: UnixSeconds, limit: i64) -> Result<u64> {
        tokens::purge_revoked(self, now, limit).await
    }

    async fn insert_refresh_token(&self, token: &NewRefreshToken) -> Result<()> {
        tokens::insert_refresh_token(self, token).await
    }

    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        tokens::find_refresh(self, token_hash).await
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &NewRefreshToken,
        now: UnixSeconds,
    ) -> Result<RefreshRotation> {
        tokens::rotate_refresh(self, old_hash, new, now).await
    }

    async fn revoke_refresh_token_family(
        &self,
        token_hash: &str,
        now: UnixSeconds,
    ) -> Result<Option<String>> {
        tokens::revoke_refresh_family(self, token_hash, now).await
    }

    async fn purge_refresh_tokens(&self, now: UnixSeconds, limit: i64) -> Result<u64> {
        tokens::purge_refresh(self, now, limit).await
    }
}

#[async_trait]
impl<B: Engine> KeyStore for B {
    async fn list_signing_keys(&self, now: UnixSeconds) -> Result<Vec<StoredSigningKey>> {
        keys::list(self, now).await
    }

    async fn insert_first_signing_key(
        &self,
        key: &StoredSigningKey,
        now: UnixSeconds,
    ) -> Result<bool> {
        keys::insert_first(self, key, now).await
    }

    async fn rotate_signing_key(
        &self,
        key: &StoredSigningKey,
        retire_others_after: UnixSeconds,
    ) -> Result<()> {
        keys::rotate(self, key, retire_others_after).await
    }

    async fn purge_retired_signing_keys(&self, now: UnixSeconds, limit: i64) -> Result<u64> {
        keys::purge_retired(self, now, limit).await
    }
}

#[async_trait]
impl<B: Engine> AuditStore for B {
    async fn record_security_event(&self, e: &NewSecurityEvent) -> Result<i64> {
        audit::record(self, e).await
    }

    async fn list_security_events(
        &self,
        f: &SecurityEventFilter,
        limit: i64,
    ) -> Result<Vec<SecurityEvent>> {
        audit::list(self, f, limit).await
    }

    async fn purge_security_events(&self, before: UnixSeconds, limit: i64) -> Result<u64> {
        audit::purge(self, before, limit).await
    }
}

#[async_trait]
impl<B: Engine> Store for B {
    async fn migrate(&self) -> Result<()> {
        self.run_migrations().await
    }

    async fn ping(&self) -> Result<()> {
        self.acquire().await?.execute("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn close(&self) {
        self.close_connections().await;
    }
}
