//! One type per API resource, mirroring the official SDKs (`client.oauth_clients().list(..)`).

mod oauth;
mod oauth_clients;
mod oauth_grants;
mod well_known;

pub use oauth::{AuthorizeParams, AuthorizeRedirect, CodeChallengeMethod, OAuth, ResponseType};
pub use oauth_clients::{ListOAuthClientsParams, OAuthClientFilter, OAuthClients};
pub use oauth_grants::{ListOAuthGrantsParams, OAuthGrants};
pub use well_known::WellKnown;

use crate::error::Error;

/// Checks an id before it becomes a path segment. Each segment is percent-encoded, so `?`, `#`,
/// `%` and spaces are safe, but `.` and `..` are dot segments that URL handling drops or resolves,
/// and an empty id names the collection itself: `delete("..")` would otherwise reach another
/// resource. Such values, and values with `/`, `\` or control characters, are refused before
/// anything is sent.
fn path_param<'a>(name: &str, value: &'a str) -> Result<&'a str, Error> {
    let problem = if value.is_empty() {
        "is empty"
    } else if value == "." || value == ".." {
        "is a relative path segment"
    } else if value.contains(['/', '\\']) {
        "contains a path separator"
    } else if value.chars().any(char::is_control) {
        "contains a control character"
    } else {
        return Ok(value);
    };
    // Not the value itself: it may be a credential (a consent token).
    Err(Error::InvalidParameter(format!(
        "{name} {problem}; no request was sent"
    )))
}

/// `page[number]` and `page[size]`, when set.
fn page_query(number: Option<u64>, size: Option<u64>) -> Vec<(String, String)> {
    let mut q = Vec::new();
    if let Some(n) = number {
        q.push(("page[number]".to_owned(), n.to_string()));
    }
    if let Some(s) = size {
        q.push(("page[size]".to_owned(), s.to_string()));
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_params_that_would_change_the_path_are_refused() {
        for bad in ["", ".", "..", "a/b", "/", "../x", "a\\b", "a\nb"] {
            let err = path_param("id", bad).err();
            assert!(
                matches!(&err, Some(Error::InvalidParameter(m)) if m.starts_with("id ")),
                "{bad:?}: {err:?}"
            );
        }
        for good in [
            "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e",
            "...",
            ".x",
            "a b?c#d%2F",
        ] {
            assert_eq!(path_param("id", good).ok(), Some(good));
        }
    }
}
