//! `/oauth_grants`: a user's standing authorization of a client.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// An OAuth grant (`record_type: "oauth_grant"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthGrant {
    /// The grant's id.
    pub id: String,
    /// Always `"oauth_grant"`.
    pub record_type: String,
    /// The client the grant is for.
    pub client_id: String,
    /// The scopes granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When the user granted it (RFC 3339 on the wire).
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    /// When a token of the grant was last used; `null` before that (RFC 3339 on the wire).
    #[serde(default, with = "crate::timestamp::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(created_at: &str, last_used_at: &str) -> Result<OAuthGrant, serde_json::Error> {
        serde_json::from_str(&format!(
            r#"{{"id":"g","record_type":"oauth_grant","client_id":"c","scopes":["admin"],
                "created_at":{created_at},"last_used_at":{last_used_at}}}"#
        ))
    }

    #[test]
    fn timestamps_decode_the_rfc_3339_forms_and_encode_as_the_server_writes_them() {
        let noon = time::macros::datetime!(2026-01-31 12:00:00 UTC);
        for text in [
            "\"2026-01-31T12:00:00Z\"",
            "\"2026-01-31T12:00:00.000Z\"",
            "\"2026-01-31T14:00:00+02:00\"",
            "\"2026-01-31T07:00:00-05:00\"",
            "\"2026-01-31 12:00:00Z\"",
            "\"2026-01-31t12:00:00z\"",
            "1769860800",
            "1769860800.0",
        ] {
            let g = grant(text, "null").unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(g.created_at, noon, "{text}");
            assert_eq!(g.last_used_at, None);
        }
        let precise = grant(
            "\"2026-01-31T12:00:00.123456Z\"",
            "\"2026-02-01T00:00:01Z\"",
        )
        .unwrap();
        assert_eq!(precise.created_at.microsecond(), 123_456);
        assert_eq!(
            precise.last_used_at,
            Some(time::macros::datetime!(2026-02-01 00:00:01 UTC))
        );
        // An absent `last_used_at` is `None` too.
        let absent: OAuthGrant = serde_json::from_str(
            r#"{"id":"g","record_type":"oauth_grant","client_id":"c","created_at":"2026-01-31T12:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(absent.last_used_at, None);

        // Whole seconds in UTC, as the server stores them, are written exactly as before.
        let g = grant("\"2026-01-31T12:00:00Z\"", "\"2026-01-31T12:30:00Z\"").unwrap();
        let json = serde_json::to_string(&g).unwrap();
        assert!(
            json.contains(
                r#""created_at":"2026-01-31T12:00:00Z","last_used_at":"2026-01-31T12:30:00Z""#
            ),
            "{json}"
        );
        let never = serde_json::to_string(&OAuthGrant {
            last_used_at: None,
            ..g
        })
        .unwrap();
        assert!(never.ends_with(r#""last_used_at":null}"#), "{never}");
    }

    #[test]
    fn timestamps_that_are_not_rfc_3339_are_refused() {
        for text in [
            "\"2026-01-31T12:00:00\"",
            "\"2026-01-31\"",
            "\"31/01/2026 12:00\"",
            "\"\"",
            "true",
            "{}",
        ] {
            assert!(grant(text, "null").is_err(), "{text}");
        }
    }
}
