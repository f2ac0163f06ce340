//! RFC 3339 rendering of stored times (docs/api.md: timestamps are RFC 3339 UTC strings).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::UnixSeconds;

/// `2026-01-31T12:00:00Z` for a Unix time; out-of-range inputs clamp to the epoch.
pub fn rfc3339(secs: UnixSeconds) -> String {
    datetime(secs)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// The UTC time of a Unix time, as the wire types carry it (they render it like [`rfc3339`]);
/// out-of-range inputs clamp to the epoch.
pub fn datetime(secs: UnixSeconds) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_with_z() {
        assert_eq!(super::rfc3339(1_769_860_800), "2026-01-31T12:00:00Z");
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
