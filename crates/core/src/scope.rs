//! Scopes (RFC 6749 §3.3) and the server's catalogue of them.

use serde::{Deserialize, Serialize};

/// One scope the server knows: its name and the sentence a user reads on the consent page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeDef {
    pub name: String,
    pub description: String,
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
        };
        Self {
            scopes: vec![
                d(
                    "admin",
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
    /// A catalogue of the given scopes; each name must be a valid scope token and appear once.
    pub fn new(scopes: Vec<ScopeDef>) -> Result<Self, String> {
        if scopes.is_empty() {
            return Err("the scope catalogue is empty".into());
        }
        for (i, s) in scopes.iter().enumerate() {
            if !is_scope_token(&s.name) {
                return Err(format!("scope {:?} is not a valid scope token", s.name));
            }
            if scopes[..i].iter().any(|o| o.name == s.name) {
                return Err(format!("scope {:?} appears twice", s.name));
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

/// Splits a space-delimited scope string (RFC 6749 §3.3) into its tokens, in order, without
/// duplicates. `Err` carries the first token that is not a valid scope token.
pub fn parse_scope_string(s: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for tok in s.split(' ').filter(|t| !t.is_empty()) {
        if !is_scope_token(tok) {
            return Err(tok.to_owned());
        }
        if !out.iter().any(|o| o == tok) {
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
        assert_eq!(parse_scope_string("a\"b"), Err("a\"b".to_owned()));
        assert_eq!(parse_scope_string(""), Ok(vec![]));
        assert!(!is_scope_token("a\\b"));
        assert!(is_scope_token("read:calls"));
    }

    #[test]
    fn catalogue_rejects_duplicates_and_bad_tokens() {
        let d = |n: &str| ScopeDef {
            name: n.into(),
            description: "x".into(),
        };
        assert!(ScopeCatalogue::new(vec![d("a"), d("a")]).is_err());
        assert!(ScopeCatalogue::new(vec![d("a b")]).is_err());
        assert!(ScopeCatalogue::new(vec![]).is_err());
        assert!(ScopeCatalogue::new(vec![d("a"), d("b")]).is_ok());
    }
}
