//! Envelopes: `{"data": ...}` and paginated `{"data": [...], "meta": {...}}`.

use serde::{Deserialize, Serialize};

/// A single resource wrapped as `{"data": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Data<T> {
    pub data: T,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct List<T> {
    pub data: Vec<T>,
    pub meta: PageMeta,
}

/// Pagination metadata; always present on a list response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PageMeta {
    pub page_number: u64,
    pub page_size: u64,
    pub total_pages: u64,
    pub total_results: u64,
}
