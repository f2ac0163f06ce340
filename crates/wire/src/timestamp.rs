//! Serde for the timestamps of the API (`created_at`, ...) as [`OffsetDateTime`], for
//! `#[serde(with = "oauth_wire::timestamp")]` (and `timestamp::option` for an `Option`).
//!
//! Written as RFC 3339 (`2026-01-31T12:00:00Z`; fractional seconds only when there are any, and
//! `Z` for UTC), exactly as the server has always written them. Read from what the official SDKs
//! accept: an RFC 3339 string with any offset and any fraction of a second, with `T`, `t` or a
//! space between date and time; or a number of seconds since the Unix epoch. A string without an
//! offset, or anything else, is refused.

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Writes `value` as RFC 3339.
pub fn serialize<S: Serializer>(value: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let text = value.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
    serializer.serialize_str(&text)
}

/// Reads an RFC 3339 string or a Unix time in seconds.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    deserializer.deserialize_any(TimestampVisitor)
}

/// The same for an optional timestamp: `null` (or, with `#[serde(default)]`, an absent member)
/// is `None`.
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    /// Writes `Some(t)` as RFC 3339 and `None` as `null`.
    pub fn serialize<S: Serializer>(
        value: &Option<OffsetDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(t) => super::serialize(t, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads `null` as `None`, anything else as [`super::deserialize`] does.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super")] OffsetDateTime);
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(t)| t))
    }
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = OffsetDateTime;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an RFC 3339 date-time or a Unix time in seconds")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<OffsetDateTime, E> {
        // RFC 3339 §5.6 lets applications use a space instead of `T`.
        let normalized;
        let text = if v.as_bytes().get(10) == Some(&b' ') {
            normalized = format!("{}T{}", &v[..10], &v[11..]);
            normalized.as_str()
        } else {
            v
        };
        OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|e| E::custom(format_args!("{v:?} is not an RFC 3339 date-time: {e}")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OffsetDateTime, E> {
        OffsetDateTime::from_unix_timestamp(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OffsetDateTime, E> {
        let secs = i64::try_from(v).map_err(E::custom)?;
        self.visit_i64(secs)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<OffsetDateTime, E> {
        if !v.is_finite() {
            return Err(E::custom("a Unix time must be finite"));
        }
        let nanos = (v * 1e9).round();
        if nanos.abs() > 1e20 {
            return Err(E::custom("the Unix time is out of range"));
        }
        // In range: i128 holds ±1e20 exactly enough for nanoseconds.
        OffsetDateTime::from_unix_timestamp_nanos(nanos as i128).map_err(E::custom)
    }
}
