//! `/oauth_clients`: the OAuth clients of the caller's organization.

use futures_util::Stream;
use oauth_wire::{ClientType, CreateOAuthClient, GrantType, OAuthClient, UpdateOAuthClient};
use reqwest::Method;

use crate::call::{self, Call};
use crate::client::{Client, Request};
use crate::error::Error;
use crate::pagination::{stream_from_request, Page};

/// Query of `GET /oauth_clients`; absent values are left out.
///
/// ```
/// use telnyx_oauth::{ClientType, ListOAuthClientsParams, OAuthClientFilter};
/// let params = ListOAuthClientsParams::new().page_size(50).filter(
///     OAuthClientFilter::new()
///         .client_type(ClientType::Confidential)
///         .name_contains("billing"),
/// );
/// assert_eq!(params.filter.name_contains.as_deref(), Some("billing"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListOAuthClientsParams {
    /// `page[number]`, from 1.
    pub page_number: Option<u64>,
    /// `page[size]`, 1 to 100 (server default 20).
    pub page_size: Option<u64>,
    /// The `filter[...]` parameters.
    pub filter: OAuthClientFilter,
}

/// The `filter[...]` parameters of `GET /oauth_clients`; start from [`OAuthClientFilter::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthClientFilter {
    /// `filter[client_type]`.
    pub client_type: Option<ClientType>,
    /// `filter[verified]`.
    pub verified: Option<bool>,
    /// `filter[allowed_grant_types][contains]`.
    pub allowed_grant_types_contains: Option<GrantType>,
    /// `filter[name]`: the exact name.
    pub name: Option<String>,
    /// `filter[name][contains]`.
    pub name_contains: Option<String>,
    /// `filter[client_id]`.
    pub client_id: Option<String>,
}

impl ListOAuthClientsParams {
    /// The first page of every client, with the server's page size.
    pub fn new() -> Self {
        ListOAuthClientsParams::default()
    }

    /// `page[number]`, from 1.
    pub fn page_number(mut self, number: u64) -> Self {
        self.page_number = Some(number);
        self
    }

    /// `page[size]`, 1 to 100.
    pub fn page_size(mut self, size: u64) -> Self {
        self.page_size = Some(size);
        self
    }

    /// The `filter[...]` parameters.
    pub fn filter(mut self, filter: OAuthClientFilter) -> Self {
        self.filter = filter;
        self
    }

    fn query(&self) -> Vec<(String, String)> {
        let mut q = super::page_query(self.page_number, self.page_size);
        let f = &self.filter;
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                q.push((k.to_owned(), v));
            }
        };
        put(
            "filter[client_type]",
            f.client_type.as_ref().map(ToString::to_string),
        );
        put("filter[verified]", f.verified.map(|v| v.to_string()));
        put(
            "filter[allowed_grant_types][contains]",
            f.allowed_grant_types_contains
                .as_ref()
                .map(ToString::to_string),
        );
        put("filter[name]", f.name.clone());
        put("filter[name][contains]", f.name_contains.clone());
        put("filter[client_id]", f.client_id.clone());
        q
    }
}

impl OAuthClientFilter {
    /// No filter: every client matches.
    pub fn new() -> Self {
        OAuthClientFilter::default()
    }

    /// `filter[client_type]`.
    pub fn client_type(mut self, client_type: ClientType) -> Self {
        self.client_type = Some(client_type);
        self
    }

    /// `filter[verified]`.
    pub fn verified(mut self, verified: bool) -> Self {
        self.verified = Some(verified);
        self
    }

    /// `filter[allowed_grant_types][contains]`.
    pub fn allowed_grant_types_contains(mut self, grant_type: GrantType) -> Self {
        self.allowed_grant_types_contains = Some(grant_type);
        self
    }

    /// `filter[name]`: the exact name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// `filter[name][contains]`.
    pub fn name_contains(mut self, part: impl Into<String>) -> Self {
        self.name_contains = Some(part.into());
        self
    }

    /// `filter[client_id]`.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }
}

/// The organization's OAuth clients.
#[derive(Debug, Clone, Copy)]
pub struct OAuthClients<'a> {
    client: &'a Client,
}

impl<'a> OAuthClients<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        OAuthClients { client }
    }

    /// `GET /oauth_clients`: one page of clients. Secrets are never listed.
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// use telnyx_oauth::{GrantType, ListOAuthClientsParams, OAuthClientFilter};
    /// let page = client
    ///     .oauth_clients()
    ///     .list(&ListOAuthClientsParams::new().filter(
    ///         OAuthClientFilter::new().allowed_grant_types_contains(GrantType::ClientCredentials),
    ///     ))
    ///     .await?;
    /// println!("page {} of {}", page.meta.page_number, page.meta.total_pages);
    /// # Ok(()) }
    /// ```
    pub fn list(&self, params: &ListOAuthClientsParams) -> Call<'a, Page<OAuthClient>> {
        Call::new(self.client, Ok(self.list_request(params)), Page::decode)
    }

    /// Every matching client, across all pages (the same filters on every page).
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// let mut clients = std::pin::pin!(client.oauth_clients().list_auto(&Default::default()));
    /// while let Some(c) = clients.next().await {
    ///     println!("{}", c?.name);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list_auto(
        &self,
        params: &ListOAuthClientsParams,
    ) -> impl Stream<Item = Result<OAuthClient, Error>> + Send + 'static {
        stream_from_request(self.client.clone(), self.list_request(params))
    }

    fn list_request(&self, params: &ListOAuthClientsParams) -> Request {
        Request::get("/oauth_clients", &["oauth_clients"]).query(params.query())
    }

    /// `POST /oauth_clients`: creates a client. The answer of a confidential client carries its
    /// `client_secret`, the only time it is shown.
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// use telnyx_oauth::{ClientType, CreateOAuthClient, GrantType};
    /// let oauth_client = client
    ///     .oauth_clients()
    ///     .create(&CreateOAuthClient::new(
    ///         "My OAuth client",
    ///         ClientType::Confidential,
    ///         [GrantType::ClientCredentials],
    ///         ["admin"],
    ///     ))
    ///     .await?;
    /// println!("{}", oauth_client.client_id);
    /// # Ok(()) }
    /// ```
    pub fn create(&self, params: &CreateOAuthClient) -> Call<'a, OAuthClient> {
        // The answer is the only place the new client's secret is shown: a create the server
        // may have done is not sent again (docs/sdk.md, "Retries").
        let req = Request::new(Method::POST, "/oauth_clients", &["oauth_clients"])
            .once_answered()
            .json(params);
        Call::new(self.client, req, call::data)
    }

    /// `GET /oauth_clients/{id}`.
    ///
    /// An `id` that is empty, `.` or `..`, or contains `/` is refused with
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) before anything is sent; so are
    /// the ids of the other methods.
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// let oauth_client = client
    ///     .oauth_clients()
    ///     .retrieve("182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e")
    ///     .await?;
    /// println!("{} {:?}", oauth_client.name, oauth_client.redirect_uris);
    /// # Ok(()) }
    /// ```
    pub fn retrieve(&self, id: &str) -> Call<'a, OAuthClient> {
        let req = super::path_param("id", id)
            .map(|id| Request::get("/oauth_clients/{id}", &["oauth_clients", id]));
        Call::new(self.client, req, call::data)
    }

    /// `PUT /oauth_clients/{id}`: a partial update; fields not set are left alone and the
    /// `clear_*` setters clear an optional link.
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// use telnyx_oauth::UpdateOAuthClient;
    /// let oauth_client = client
    ///     .oauth_clients()
    ///     .update(
    ///         "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e",
    ///         &UpdateOAuthClient::new().name("Renamed").clear_logo_uri(),
    ///     )
    ///     .await?;
    /// println!("{}", oauth_client.updated_at);
    /// # Ok(()) }
    /// ```
    pub fn update(&self, id: &str, params: &UpdateOAuthClient) -> Call<'a, OAuthClient> {
        let req = super::path_param("id", id).and_then(|id| {
            Request::new(Method::PUT, "/oauth_clients/{id}", &["oauth_clients", id]).json(params)
        });
        Call::new(self.client, req, call::data)
    }

    /// `DELETE /oauth_clients/{id}` (answered 204 without a body).
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// client
    ///     .oauth_clients()
    ///     .delete("182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn delete(&self, id: &str) -> Call<'a, ()> {
        let req = super::path_param("id", id).map(|id| {
            Request::new(
                Method::DELETE,
                "/oauth_clients/{id}",
                &["oauth_clients", id],
            )
            .accept("*/*")
        });
        Call::new(self.client, req, call::unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_leaves_out_absent_values_and_uses_bracket_keys() {
        assert!(ListOAuthClientsParams::default().query().is_empty());
        let q = ListOAuthClientsParams {
            page_number: Some(2),
            page_size: Some(5),
            filter: OAuthClientFilter {
                client_type: Some(ClientType::Public),
                verified: Some(false),
                allowed_grant_types_contains: Some(GrantType::RefreshToken),
                name: Some("a b".into()),
                name_contains: Some("x".into()),
                client_id: Some("id".into()),
            },
        }
        .query();
        let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("page[number]", "2"),
                ("page[size]", "5"),
                ("filter[client_type]", "public"),
                ("filter[verified]", "false"),
                ("filter[allowed_grant_types][contains]", "refresh_token"),
                ("filter[name]", "a b"),
                ("filter[name][contains]", "x"),
                ("filter[client_id]", "id"),
            ]
        );
    }
}
