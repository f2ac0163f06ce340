//! Envelopes: `{"data": ...}` and paginated `{"data": [...], "meta": {...}}`.

use serde::{Deserialize, Serialize};

/// A single resource wrapped as `{"data": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Data<T> {
    pub data: T,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    pub meta: PageMeta,
}

/// Pagination metadata; always present on a list response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageMeta {
    pub page_number: u64,
    pub page_size: u64,
    pub total_pages: u64,
    pub total_results: u64,
}
