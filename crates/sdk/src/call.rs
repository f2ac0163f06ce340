//! One API call before it is sent: per-call options, and the choice between the decoded body
//! alone and the body with the answer's status and headers.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use oauth_wire::Data;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use crate::client::{Client, Raw, Request};
use crate::error::Error;

/// Options for one call, or for every call of a client through [`Client::with_options`]: the
/// same knobs as the official SDKs' request options. Unset options keep the client's value.
///
/// ```no_run
/// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
/// use std::time::Duration;
/// use telnyx_oauth::RequestOptions;
/// let options = RequestOptions::new()
///     .timeout(Duration::from_secs(5))
///     .max_retries(0)
///     .header("x-request-source", "nightly-job");
/// let found = client
///     .oauth_clients()
///     .retrieve("182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e")
///     .with_options(options)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestOptions {
    /// How long one attempt may take, connection and body included.
    pub timeout: Option<Duration>,
    /// How many times a transient failure is retried (0 disables retries).
    pub max_retries: Option<u32>,
    /// Headers sent with the call, replacing any header of the same name the SDK or the
    /// client's default headers would send.
    pub headers: Vec<(String, String)>,
}

/// The headers by name only: their values may be credentials.
impl std::fmt::Debug for RequestOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("RequestOptions")
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("headers", &names)
            .finish()
    }
}

impl RequestOptions {
    /// No option set: everything as the client is configured.
    pub fn new() -> Self {
        RequestOptions::default()
    }

    /// How long one attempt may take; exceeding it is [`Error::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many times a transient failure is retried (0 disables retries).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// A header for the call. An invalid name or value fails the call with [`Error::Config`]
    /// before anything is sent.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `over`'s options where set, this one's elsewhere; headers of both, `over`'s last.
    pub(crate) fn overlay(&self, over: &RequestOptions) -> RequestOptions {
        RequestOptions {
            timeout: over.timeout.or(self.timeout),
            max_retries: over.max_retries.or(self.max_retries),
            headers: self.headers.iter().chain(&over.headers).cloned().collect(),
        }
    }

    /// The headers, checked. A later header of a name replaces an earlier one.
    pub(crate) fn header_map(&self) -> Result<HeaderMap, Error> {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::Config(format!("invalid header name {name:?}")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| Error::Config(format!("invalid value for header {name}")))?;
            // A call's own header may carry a credential (the registration access token is
            // one): every value is kept out of debug output, as the client's own are.
            value.set_sensitive(true);
            map.insert(name, value);
        }
        Ok(map)
    }
}

/// A decoded answer with the HTTP status and headers it came with, from
/// [`Call::with_raw_response`].
///
/// ```no_run
/// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
/// let response = client
///     .oauth_clients()
///     .retrieve("182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e")
///     .with_raw_response()
///     .await?;
/// println!("{} {:?}", response.status, response.headers.get("x-request-id"));
/// let oauth_client = response.into_data();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Response<T> {
    /// The HTTP status of the answer.
    pub status: StatusCode,
    /// The answer's headers.
    pub headers: HeaderMap,
    /// The decoded body, as the plain call returns it.
    pub data: T,
}

impl<T> Response<T> {
    /// The decoded body alone.
    pub fn into_data(self) -> T {
        self.data
    }
}

/// Turns a whole answer into the value a method returns.
pub(crate) type Decoder<T> = fn(&Client, &Request, &Raw) -> Result<T, Error>;

/// One API call, returned by every method of the resources. Await it for the decoded answer;
/// before that, [`Call::with_options`] (or [`Call::timeout`], [`Call::max_retries`],
/// [`Call::header`]) changes how this call alone is sent, and [`Call::with_raw_response`] returns
/// the status and headers next to the decoded answer.
///
/// Nothing is sent until the call is awaited.
#[must_use = "a call sends nothing until it is awaited"]
pub struct Call<'a, T> {
    client: &'a Client,
    /// The request, or why it could not be built (an invalid id, a body that cannot be encoded):
    /// the error is returned when the call is awaited, and nothing is sent.
    request: Result<Request, Error>,
    decode: Decoder<T>,
}

impl<T> std::fmt::Debug for Call<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Call");
        match &self.request {
            Ok(r) => d.field("method", &r.method).field("path", &r.template),
            Err(e) => d.field("error", e),
        };
        d.finish_non_exhaustive()
    }
}

impl<'a, T: Send + 'a> Call<'a, T> {
    pub(crate) fn new(
        client: &'a Client,
        request: Result<Request, Error>,
        decode: Decoder<T>,
    ) -> Self {
        Call {
            client,
            request,
            decode,
        }
    }

    /// Sends this call with `options` over the client's (options set earlier on this call stay
    /// unless `options` sets them too).
    pub fn with_options(mut self, options: RequestOptions) -> Self {
        if let Ok(req) = &mut self.request {
            req.options = req.options.overlay(&options);
        }
        self
    }

    /// How long each attempt of this call may take.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.with_options(RequestOptions::new().timeout(timeout))
    }

    /// How many times this call is retried after a transient failure.
    pub fn max_retries(self, retries: u32) -> Self {
        self.with_options(RequestOptions::new().max_retries(retries))
    }

    /// A header sent with this call only.
    pub fn header(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.with_options(RequestOptions::new().header(name, value))
    }

    /// Sends the call and returns the decoded answer (what awaiting the call does).
    pub async fn send(self) -> Result<T, Error> {
        self.with_raw_response().await.map(Response::into_data)
    }

    /// Sends the call and returns the decoded answer with its status and headers.
    pub async fn with_raw_response(self) -> Result<Response<T>, Error> {
        let request = self.request?;
        let raw = self.client.execute(&request).await?;
        let data = (self.decode)(self.client, &request, &raw)?;
        let mut headers = raw.headers;
        crate::error::hide_credentials(&mut headers);
        Ok(Response {
            status: raw.status,
            headers,
            data,
        })
    }
}

impl<'a, T: Send + 'a> IntoFuture for Call<'a, T> {
    type Output = Result<T, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// The body as JSON.
pub(crate) fn json<T: DeserializeOwned>(_: &Client, _: &Request, raw: &Raw) -> Result<T, Error> {
    serde_json::from_slice(&raw.body).map_err(|source| Error::Decode {
        status: raw.status,
        source,
    })
}

/// The `data` member of a JSON body.
pub(crate) fn data<T: DeserializeOwned>(c: &Client, r: &Request, raw: &Raw) -> Result<T, Error> {
    json::<Data<T>>(c, r, raw).map(|d| d.data)
}

/// Nothing: the body is empty or irrelevant.
pub(crate) fn unit(_: &Client, _: &Request, _: &Raw) -> Result<(), Error> {
    Ok(())
}
