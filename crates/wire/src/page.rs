//! Envelopes: `{"data": ...}` and paginated `{"data": [...], "meta": {...}}`.

use serde::{Deserialize, Serialize};

/// A single resource wrapped as `{"data": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Data<T> {
    /// The resource.
    pub data: T,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct List<T> {
    /// This page's items.
    pub data: Vec<T>,
    /// Where this page is in the list.
    pub meta: PageMeta,
}

/// Pagination metadata; always present on a list response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PageMeta {
    /// This page's number, from 1.
    pub page_number: u64,
    /// The page size asked for.
    pub page_size: u64,
    /// How many pages the list has.
    pub total_pages: u64,
    /// How many items the list has.
    pub total_results: u64,
}
