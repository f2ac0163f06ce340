//! Pages of a list and the stream that walks all of them (the seed's `auto_paging_each`).
//!
//! The rule is the official SDKs': stop when `data` is empty or `meta.page_number >=
//! meta.total_pages`; otherwise repeat the same request, every original query parameter kept,
//! with `page[number]` set to the current page number plus one.

use futures_util::Stream;
use oauth_wire::{List, PageMeta};
use serde::de::DeserializeOwned;

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
}

impl<T: DeserializeOwned + Send + 'static> Page<T> {
    pub(crate) async fn fetch(client: Client, request: Request) -> Result<Self, Error> {
        let raw = client.execute(&request).await?;
        Page::decode(&client, &request, &raw)
    }

    /// The page in `raw`, remembering how it was asked for so that the next one can be.
    pub(crate) fn decode(client: &Client, request: &Request, raw: &Raw) -> Result<Self, Error> {
        let list: List<T> = crate::call::json(client, request, raw)?;
        Ok(Page {
            data: list.data,
            meta: list.meta,
            client: client.clone(),
            request: request.clone(),
        })
    }

    /// True when another page may follow this one.
    pub fn has_next_page(&self) -> bool {
        !self.data.is_empty() && self.meta.page_number < self.meta.total_pages
    }

    /// Fetches the following page, or `None` after the last one.
    pub async fn next_page(&self) -> Result<Option<Page<T>>, Error> {
        match self.next_request() {
            Some((client, request)) => Page::fetch(client, request).await.map(Some),
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

    fn next_request(&self) -> Option<(Client, Request)> {
        if !self.has_next_page() {
            return None;
        }
        let mut request = self.request.clone();
        request.query.retain(|(k, _)| k != "page[number]");
        request.query.push((
            "page[number]".to_owned(),
            (self.meta.page_number + 1).to_string(),
        ));
        Some((self.client.clone(), request))
    }
}

/// A stream over every item of a list, starting with a request for its first page.
pub(crate) fn stream_from_request<T: DeserializeOwned + Send + 'static>(
    client: Client,
    request: Request,
) -> impl Stream<Item = Result<T, Error>> + Send + 'static {
    items_stream(Cursor::Fetch(client, request))
}

enum Cursor<T> {
    Fetch(Client, Request),
    Items {
        items: std::vec::IntoIter<T>,
        next: Option<(Client, Request)>,
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
                        Some((client, request)) => Cursor::Fetch(client, request),
                        None => return None,
                    }
                }
                Cursor::Fetch(client, request) => match Page::<T>::fetch(client, request).await {
                    Ok(page) => {
                        let next = page.next_request();
                        Cursor::Items {
                            items: page.data.into_iter(),
                            next,
                        }
                    }
                    Err(e) => return Some((Err(e), Cursor::Done)),
                },
            };
        }
    })
}
