//! Pages of a list and the stream that walks all of them (the seed's `auto_paging_each`).
//!
//! The rule is the official SDKs': stop when `data` is empty or `meta.page_number >=
//! meta.total_pages`; otherwise repeat the same request, every original query parameter kept,
//! with `page[number]` set to the current page number plus one. Without `meta.page_number` or
//! `meta.total_pages`, ask until an empty page comes, as they do. One rule is added: an answer
//! that is not the page asked for (a server that ignores `page[number]`) ends the walk, where
//! the official SDKs would ask for the same page forever. It is not the page asked for when its
//! `meta.page_number` names another, or, without one, when its body is the previous page's to
//! the byte.

use futures_util::Stream;
use oauth_wire::PageMeta;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::client::{Client, Raw, Request};
use crate::error::Error;

/// One page of a list: the items and the pagination metadata.
///
/// ```no_run
/// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
/// let mut page = client.oauth_clients().list(&Default::default()).await?;
/// loop {
///     for c in &page.data {
///         println!("{}", c.client_id);
///     }
///     match page.next_page().await? {
///         Some(next) => page = next,
///         None => break,
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// This page's items.
    pub data: Vec<T>,
    /// `page_number`, `page_size`, `total_pages` and `total_results`.
    pub meta: PageMeta,
    client: Client,
    request: Request,
    /// The page number asked for (`page[number]`, 1 when not sent).
    requested: u64,
    /// The answer lacked `meta.page_number` or `meta.total_pages`: pages follow until an empty
    /// one.
    open_ended: bool,
    /// The answer named no page number: whether it is the page asked for is told by comparing
    /// its body with the next one's.
    unnumbered: bool,
    /// A digest of the answer's body.
    digest: u64,
}

/// The request for the page after one, and that page's body digest.
struct Next {
    client: Client,
    request: Request,
    previous: u64,
}

fn digest(body: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

/// A list answer as the official SDKs read it: `meta`, and each of its members, may be missing.
#[derive(Deserialize)]
struct LenientList<T> {
    data: Vec<T>,
    #[serde(default)]
    meta: Option<LenientMeta>,
}

#[derive(Deserialize, Default)]
struct LenientMeta {
    page_number: Option<u64>,
    page_size: Option<u64>,
    total_pages: Option<u64>,
    total_results: Option<u64>,
}

impl<T: DeserializeOwned + Send + 'static> Page<T> {
    pub(crate) async fn fetch(client: Client, request: Request) -> Result<Self, Error> {
        let raw = client.execute(&request).await?;
        Page::decode(&client, &request, &raw)
    }

    /// The page `next` asks for; `None` when the answer is the previous page again (a server
    /// that ignores `page[number]` and names no page number).
    async fn fetch_next(next: Next) -> Result<Option<Self>, Error> {
        let page = Page::fetch(next.client, next.request).await?;
        Ok((!(page.unnumbered && page.digest == next.previous)).then_some(page))
    }

    /// The page in `raw`, remembering how it was asked for so that the next one can be.
    pub(crate) fn decode(client: &Client, request: &Request, raw: &Raw) -> Result<Self, Error> {
        let list: LenientList<T> = crate::call::json(client, request, raw)?;
        let asked = |name: &str| {
            request
                .query
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        };
        let requested = asked("page[number]").unwrap_or(1);
        let m = list.meta.unwrap_or_default();
        let open_ended = m.page_number.is_none() || m.total_pages.is_none();
        let unnumbered = m.page_number.is_none();
        let meta = PageMeta {
            page_number: m.page_number.unwrap_or(requested),
            page_size: m
                .page_size
                .or_else(|| asked("page[size]"))
                .unwrap_or(list.data.len() as u64),
            total_pages: m.total_pages.unwrap_or(0),
            total_results: m.total_results.unwrap_or(0),
        };
        Ok(Page {
            data: list.data,
            meta,
            client: client.clone(),
            request: request.clone(),
            requested,
            open_ended,
            unnumbered,
            digest: digest(&raw.body),
        })
    }

    /// True when another page may follow this one: this one has items and is the page asked
    /// for, and either the answer says more pages follow, or it says nothing about how many.
    pub fn has_next_page(&self) -> bool {
        if self.data.is_empty() || self.meta.page_number != self.requested {
            return false;
        }
        self.open_ended || self.meta.page_number < self.meta.total_pages
    }

    /// Fetches the following page, or `None` after the last one.
    pub async fn next_page(&self) -> Result<Option<Page<T>>, Error> {
        match self.next_request() {
            Some(next) => Page::fetch_next(next).await,
            None => Ok(None),
        }
    }

    /// Every item of this page and of the pages after it, fetched as the stream is consumed.
    /// An error ends the stream after it is yielded.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// let page = client.oauth_clients().list(&Default::default()).await?;
    /// let mut all = std::pin::pin!(page.auto_paging_stream());
    /// while let Some(c) = all.next().await {
    ///     println!("{}", c?.client_id);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn auto_paging_stream(self) -> impl Stream<Item = Result<T, Error>> + Send + 'static {
        let next = self.next_request();
        items_stream(Cursor::Items {
            items: self.data.into_iter(),
            next,
        })
    }

    fn next_request(&self) -> Option<Next> {
        if !self.has_next_page() {
            return None;
        }
        let mut request = self.request.clone();
        request.query.retain(|(k, _)| k != "page[number]");
        request.query.push((
            "page[number]".to_owned(),
            self.requested.saturating_add(1).to_string(),
        ));
        Some(Next {
            client: self.client.clone(),
            request,
            previous: self.digest,
        })
    }
}

/// A stream over every item of a list, starting with a request for its first page.
pub(crate) fn stream_from_request<T: DeserializeOwned + Send + 'static>(
    client: Client,
    request: Request,
) -> impl Stream<Item = Result<T, Error>> + Send + 'static {
    items_stream(Cursor::First(client, request))
}

enum Cursor<T> {
    First(Client, Request),
    Fetch(Next),
    Items {
        items: std::vec::IntoIter<T>,
        next: Option<Next>,
    },
    Done,
}

fn items_stream<T: DeserializeOwned + Send + 'static>(
    start: Cursor<T>,
) -> impl Stream<Item = Result<T, Error>> + Send + 'static {
    futures_util::stream::unfold(start, |mut cursor| async move {
        loop {
            cursor = match cursor {
                Cursor::Done => return None,
                Cursor::Items { mut items, next } => {
                    if let Some(item) = items.next() {
                        return Some((Ok(item), Cursor::Items { items, next }));
                    }
                    match next {
                        Some(next) => Cursor::Fetch(next),
                        None => return None,
                    }
                }
                Cursor::First(client, request) => match Page::<T>::fetch(client, request).await {
                    Ok(page) => Cursor::from(page),
                    Err(e) => return Some((Err(e), Cursor::Done)),
                },
                Cursor::Fetch(next) => match Page::<T>::fetch_next(next).await {
                    Ok(Some(page)) => Cursor::from(page),
                    Ok(None) => return None,
                    Err(e) => return Some((Err(e), Cursor::Done)),
                },
            };
        }
    })
}

impl<T: DeserializeOwned + Send + 'static> From<Page<T>> for Cursor<T> {
    fn from(page: Page<T>) -> Self {
        let next = page.next_request();
        Cursor::Items {
            items: page.data.into_iter(),
            next,
        }
    }
}
