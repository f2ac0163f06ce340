//! Scopes (RFC 6749 §3.3) and the server's catalogue of them.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// The scope the management API requires. It is never granted to a third-party client
/// (one registered dynamically), whatever the catalogue or a request says.
pub const MANAGEMENT_SCOPE: &str = "admin";

/// Most scope tokens one scope string may hold; a client's allowed scopes are bounded by the
/// same number.
pub const MAX_SCOPE_TOKENS: usize = 100;
/// Longest scope string accepted, in bytes.
pub const MAX_SCOPE_STRING_LEN: usize = 4096;

/// One scope the server knows: its name, the sentence a user reads on the consent page, and
/// whether a third-party client may be granted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeDef {
    pub name: String,
    pub description: String,
    /// May a third-party client (registered through `/oauth/register`) request this scope?
    /// Absent: yes, except for the management scope, which never may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_party: Option<bool>,
}

impl ScopeDef {
    /// Whether third-party clients may be granted this scope.
    pub fn allows_third_party(&self) -> bool {
        self.name != MANAGEMENT_SCOPE && self.third_party.unwrap_or(true)
    }
}

/// The scopes a client may be allowed. Configurable; [`ScopeCatalogue::default`] ships a set
/// that includes `admin`, the scope the management API requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeCatalogue {
    scopes: Vec<ScopeDef>,
}

impl Default for ScopeCatalogue {
    fn default() -> Self {
        let d = |name: &str, description: &str| ScopeDef {
            name: name.to_owned(),
            description: description.to_owned(),
            third_party: None,
        };
        Self {
            scopes: vec![
                d(
                    MANAGEMENT_SCOPE,
                    "Full access to your account, including its OAuth clients and grants",
                ),
                d("messaging", "Send and receive messages"),
                d("voice", "Make, receive and manage calls"),
                d("numbers", "Search for, order and manage phone numbers"),
                d("billing", "View balances, invoices and usage"),
                d("profile", "Read your email address and organization"),
            ],
        }
    }
}

impl ScopeCatalogue {
    /// A catalogue of the given scopes; each name must be a valid scope token and appear once,
    /// and the management scope cannot be opened to third-party clients.
    pub fn new(scopes: Vec<ScopeDef>) -> Result<Self, String> {
        if scopes.is_empty() {
            return Err("the scope catalogue is empty".into());
        }
        if scopes.len() > MAX_SCOPE_TOKENS {
            return Err(format!(
                "the scope catalogue has more than {MAX_SCOPE_TOKENS} scopes"
            ));
        }
        let mut seen = HashSet::new();
        for s in &scopes {
            if !is_scope_token(&s.name) {
                return Err(format!("scope {:?} is not a valid scope token", s.name));
            }
            if !seen.insert(s.name.as_str()) {
                return Err(format!("scope {:?} appears twice", s.name));
            }
            if s.name == MANAGEMENT_SCOPE && s.third_party == Some(true) {
                return Err(format!(
                    "scope {MANAGEMENT_SCOPE:?} is the management scope and cannot be offered to third-party clients (remove third_party = true)"
                ));
            }
        }
        Ok(Self { scopes })
    }

    pub fn get(&self, name: &str) -> Option<&ScopeDef> {
        self.scopes.iter().find(|s| s.name == name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn names(&self) -> Vec<String> {
        self.scopes.iter().map(|s| s.name.clone()).collect()
    }

    /// The scopes a third-party client may be granted, in catalogue order: what the protected
    /// resource metadata advertises as `scopes_supported`.
    pub fn third_party_names(&self) -> Vec<String> {
        self.scopes
            .iter()
            .filter(|s| s.allows_third_party())
            .map(|s| s.name.clone())
            .collect()
    }

    /// May a third-party client be granted `name`? `false` for a scope not in the catalogue.
    pub fn allows_third_party(&self, name: &str) -> bool {
        self.get(name).is_some_and(ScopeDef::allows_third_party)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ScopeDef> {
        self.scopes.iter()
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    /// This token is not a valid scope token.
    Invalid(String),
    /// More than [`MAX_SCOPE_TOKENS`] distinct tokens.
    TooMany,
    /// Longer than [`MAX_SCOPE_STRING_LEN`] bytes.
    TooLong,
}

impl std::fmt::Display for ScopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScopeError::Invalid(t) => {
                let shown: String = t.chars().take(64).collect();
                write!(f, "{shown:?} is not a valid scope")
            }
            ScopeError::TooMany => write!(f, "the scope has more than {MAX_SCOPE_TOKENS} values"),
            ScopeError::TooLong => write!(
                f,
                "the scope is longer than {MAX_SCOPE_STRING_LEN} characters"
            ),
        }
    }
}

/// Splits a space-delimited scope string (RFC 6749 §3.3) into its tokens, in order, without
/// duplicates. Linear in the input and bounded: longer than [`MAX_SCOPE_STRING_LEN`] or more
/// than [`MAX_SCOPE_TOKENS`] distinct tokens is refused before any further work.
pub fn parse_scope_string(s: &str) -> Result<Vec<String>, ScopeError> {
    if s.len() > MAX_SCOPE_STRING_LEN {
        return Err(ScopeError::TooLong);
    }
    let mut out: Vec<String> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for tok in s.split(' ').filter(|t| !t.is_empty()) {
        if !is_scope_token(tok) {
            return Err(ScopeError::Invalid(tok.to_owned()));
        }
        if seen.insert(tok) {
            if out.len() == MAX_SCOPE_TOKENS {
                return Err(ScopeError::TooMany);
            }
            out.push(tok.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalogue_has_admin() {
        let c = ScopeCatalogue::default();
        assert!(c.contains("admin"));
        assert!(!c.contains("root"));
    }

    #[test]
    fn scope_strings() {
        assert_eq!(
            parse_scope_string("admin  voice admin"),
            Ok(vec!["admin".to_owned(), "voice".to_owned()])
        );
        assert_eq!(
            parse_scope_string("a\"b"),
            Err(ScopeError::Invalid("a\"b".to_owned()))
        );
        assert_eq!(parse_scope_string(""), Ok(vec![]));
        assert!(!is_scope_token("a\\b"));
        assert!(is_scope_token("read:calls"));
    }

    #[test]
    fn catalogue_rejects_duplicates_and_bad_tokens() {
        let d = |n: &str| ScopeDef {
            name: n.into(),
            description: "x".into(),
            third_party: None,
        };
        assert!(ScopeCatalogue::new(vec![d("a"), d("a")]).is_err());
        assert!(ScopeCatalogue::new(vec![d("a b")]).is_err());
        assert!(ScopeCatalogue::new(vec![]).is_err());
        assert!(ScopeCatalogue::new(vec![d("a"), d("b")]).is_ok());
    }

    #[test]
    fn the_management_scope_is_never_for_third_parties() {
        let c = ScopeCatalogue::default();
        assert!(!c.allows_third_party(MANAGEMENT_SCOPE));
        assert!(c.allows_third_party("messaging"));
        assert!(!c.allows_third_party("unknown"));
        assert!(!c.third_party_names().contains(&MANAGEMENT_SCOPE.to_owned()));
        assert_eq!(c.third_party_names().len(), c.names().len() - 1);
        let def = |name: &str, third_party| ScopeDef {
            name: name.into(),
            description: "x".into(),
            third_party,
        };
        assert!(ScopeCatalogue::new(vec![def("admin", Some(true))]).is_err());
        let c = ScopeCatalogue::new(vec![def("admin", None), def("internal", Some(false))])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.third_party_names().is_empty());
    }

    #[test]
    fn scope_strings_are_bounded() {
        let many: Vec<String> = (0..16_000).map(|i| format!("s{i}")).collect();
        assert_eq!(
            parse_scope_string(&many.join(" ")),
            Err(ScopeError::TooLong)
        );
        let hundred_and_one = many[..MAX_SCOPE_TOKENS + 1].join(" ");
        assert!(hundred_and_one.len() <= MAX_SCOPE_STRING_LEN);
        assert_eq!(
            parse_scope_string(&hundred_and_one),
            Err(ScopeError::TooMany)
        );
        let hundred = many[..MAX_SCOPE_TOKENS].join(" ");
        assert_eq!(
            parse_scope_string(&hundred).map(|v| v.len()),
            Ok(MAX_SCOPE_TOKENS)
        );
        // Repeats do not count towards the bound.
        let repeated = vec!["a"; 1000].join(" ");
        assert_eq!(parse_scope_string(&repeated), Ok(vec!["a".to_owned()]));
        assert_eq!(
            parse_scope_string(&" ".repeat(MAX_SCOPE_STRING_LEN + 1)),
            Err(ScopeError::TooLong)
        );
    }
}
