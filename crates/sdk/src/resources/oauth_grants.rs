//! `/oauth_grants`: the standing authorizations the calling user has given to clients.

use futures_util::Stream;
use oauth_wire::OAuthGrant;
use reqwest::Method;

use crate::call::{self, Call};
use crate::client::{Client, Request};
use crate::error::Error;
use crate::pagination::{stream_from_request, Page};

/// Query of `GET /oauth_grants`; absent values are left out.
///
/// ```
/// let params = telnyx_oauth::ListOAuthGrantsParams::new().page_size(50);
/// assert_eq!(params.page_size, Some(50));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListOAuthGrantsParams {
    /// `page[number]`, from 1.
    pub page_number: Option<u64>,
    /// `page[size]`, 1 to 100 (server default 20).
    pub page_size: Option<u64>,
}

impl ListOAuthGrantsParams {
    /// The first page, with the server's page size.
    pub fn new() -> Self {
        ListOAuthGrantsParams::default()
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

    fn query(&self) -> Vec<(String, String)> {
        super::page_query(self.page_number, self.page_size)
    }
}

/// The calling user's OAuth grants.
#[derive(Debug, Clone, Copy)]
pub struct OAuthGrants<'a> {
    client: &'a Client,
}

impl<'a> OAuthGrants<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        OAuthGrants { client }
    }

    /// `GET /oauth_grants`: one page of grants.
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// let page = client.oauth_grants().list(&Default::default()).await?;
    /// for grant in &page.data {
    ///     println!("{} {} {:?}", grant.id, grant.client_id, grant.scopes);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list(&self, params: &ListOAuthGrantsParams) -> Call<'a, Page<OAuthGrant>> {
        Call::new(self.client, Ok(self.list_request(params)), Page::decode)
    }

    /// Every grant, across all pages.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// let mut grants = std::pin::pin!(client.oauth_grants().list_auto(&Default::default()));
    /// while let Some(grant) = grants.next().await {
    ///     println!("{}", grant?.id);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list_auto(
        &self,
        params: &ListOAuthGrantsParams,
    ) -> impl Stream<Item = Result<OAuthGrant, Error>> + Send + 'static {
        stream_from_request(self.client.clone(), self.list_request(params))
    }

    fn list_request(&self, params: &ListOAuthGrantsParams) -> Request {
        Request::get("/oauth_grants", &["oauth_grants"]).query(params.query())
    }

    /// `GET /oauth_grants/{id}`.
    ///
    /// An `id` that is empty, `.` or `..`, or contains `/` is refused with
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) before anything is sent; so are
    /// the ids of the other methods.
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// let grant = client.oauth_grants().retrieve("182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e").await?;
    /// println!("{:?}", grant.last_used_at);
    /// # Ok(()) }
    /// ```
    pub fn retrieve(&self, id: &str) -> Call<'a, OAuthGrant> {
        let req = super::path_param("id", id)
            .map(|id| Request::get("/oauth_grants/{id}", &["oauth_grants", id]));
        Call::new(self.client, req, call::data)
    }

    /// `DELETE /oauth_grants/{id}`: revokes the grant and returns it.
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// let revoked = client.oauth_grants().delete("182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e").await?;
    /// println!("revoked {}", revoked.id);
    /// # Ok(()) }
    /// ```
    pub fn delete(&self, id: &str) -> Call<'a, OAuthGrant> {
        let req = super::path_param("id", id)
            .map(|id| Request::new(Method::DELETE, "/oauth_grants/{id}", &["oauth_grants", id]));
        Call::new(self.client, req, call::data)
    }
}
