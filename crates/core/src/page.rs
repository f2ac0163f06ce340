//! Pagination (docs/api.md): `page[number]` ≥ 1 (default 1), `page[size]` 1..=100 (default 20).

use oauth_wire::PageMeta;

use crate::validation::{FieldError, ValidationErrors};

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;
/// Far beyond any real list; keeps `offset` inside an `i64`.
pub const MAX_PAGE_NUMBER: u64 = 1_000_000_000;

/// The raw query values, before checking.
#[derive(Debug, Clone, Default)]
pub struct PageRequest<'a> {
    pub number: Option<&'a str>,
    pub size: Option<&'a str>,
}

/// A checked page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSpec {
    pub number: u64,
    pub size: u64,
}

impl Default for PageSpec {
    fn default() -> Self {
        Self {
            number: 1,
            size: DEFAULT_PAGE_SIZE,
        }
    }
}

impl PageRequest<'_> {
    pub fn check(&self) -> Result<PageSpec, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let number = parse_bounded(
            self.number,
            "page[number]",
            1,
            MAX_PAGE_NUMBER,
            1,
            &mut errors,
        );
        let size = parse_bounded(
            self.size,
            "page[size]",
            1,
            MAX_PAGE_SIZE,
            DEFAULT_PAGE_SIZE,
            &mut errors,
        );
        errors.into_result()?;
        Ok(PageSpec { number, size })
    }
}

fn parse_bounded(
    raw: Option<&str>,
    name: &str,
    min: u64,
    max: u64,
    default: u64,
    errors: &mut ValidationErrors,
) -> u64 {
    let Some(raw) = raw else { return default };
    match raw.parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => v,
        _ => {
            errors.push(FieldError::new(
                name,
                "out_of_range",
                format!("{name} must be an integer from {min} to {max}"),
            ));
            default
        }
    }
}

impl PageSpec {
    pub fn offset(&self) -> i64 {
        ((self.number - 1) * self.size) as i64
    }

    pub fn limit(&self) -> i64 {
        self.size as i64
    }

    pub fn meta(&self, total_results: u64) -> PageMeta {
        PageMeta {
            page_number: self.number,
            page_size: self.size,
            total_pages: total_results.div_ceil(self.size),
            total_results,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let p = PageRequest::default()
            .check()
            .unwrap_or(PageSpec { number: 0, size: 0 });
        assert_eq!(
            p,
            PageSpec {
                number: 1,
                size: 20
            }
        );
        for bad in ["0", "101", "-1", "x", "1.5", ""] {
            let r = PageRequest {
                number: None,
                size: Some(bad),
            }
            .check();
            let e = r.err().unwrap_or_default();
            assert_eq!(e.0.len(), 1, "{bad}");
            assert_eq!(e.0[0].pointer, "page[size]");
        }
        assert!(PageRequest {
            number: Some("0"),
            size: None
        }
        .check()
        .is_err());
        assert!(PageRequest {
            number: Some("3"),
            size: Some("100")
        }
        .check()
        .is_ok());
    }

    #[test]
    fn meta_and_offsets() {
        let p = PageSpec {
            number: 3,
            size: 10,
        };
        assert_eq!(p.offset(), 20);
        let m = p.meta(21);
        assert_eq!((m.total_pages, m.total_results, m.page_number), (3, 21, 3));
        assert_eq!(p.meta(0).total_pages, 0);
    }
}
