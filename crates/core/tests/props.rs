#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Property tests (bounded fuzzing) of the parsers of `oauth-core`: redirect URIs, scopes, PKCE,
//! `return_to`, authorization requests and JWT access tokens. Each property runs
//! [`DEFAULT_CASES`] generated cases from a fixed seed unless `PROPTEST_CASES` and
//! `PROPTEST_RNG_SEED` say otherwise (docs/security-tests.md: `PROPTEST_RNG_SEED=$RANDOM
//! PROPTEST_CASES=100000 cargo test -p oauth-core --test props`).
//! A failing case is saved under `crates/core/tests/props.proptest-regressions` and replayed
//! first on every later run; such a file is committed with the fix, as a regression test.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth_core::authorize::{AuthorizePolicy, AuthorizeQuery};
use oauth_core::jwt::{self, AccessTokenClaims, Expect};
use oauth_core::keys::{Algorithm, KeyPair};
use oauth_core::pkce::{self, ChallengeMethod};
use oauth_core::redirect_uri::RedirectUri;
use oauth_core::return_to::safe_return_to;
use oauth_core::scope::{
    is_scope_token, parse_scope_string, ScopeError, MAX_SCOPE_STRING_LEN, MAX_SCOPE_TOKENS,
};
use oauth_core::{Client, ClientDraft, ClientOrigin, ScopeCatalogue};
use oauth_wire::{ClientType, GrantType, TokenEndpointAuthMethod};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Cases per property in a normal test run; the whole file runs in a few seconds.
const DEFAULT_CASES: u32 = 512;

/// The seed of a normal test run, so that the suite runs the same cases each time; other seeds
/// come from `PROPTEST_RNG_SEED` (docs/security-tests.md).
const SEED: u64 = 0x7e1e_0a17_5eed_0001;

/// `DEFAULT_CASES` from `SEED`, or `PROPTEST_CASES` and `PROPTEST_RNG_SEED` when they are set
/// (proptest reads them into the default).
fn config() -> Config {
    let mut c = Config {
        // Beside this file: tests/props.proptest-regressions.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = DEFAULT_CASES;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(SEED);
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Redirect URIs

/// A registrable redirect URI: https on some host, http on a loopback host, or a private-use
/// scheme; with optional port, path and query.
fn registered_uri() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        Just("app.example.com".to_owned()),
        // A label that begins `xn--` is punycode, and most such texts are not valid punycode:
        // the URL parser refuses them (rightly), so they are not among the documented forms.
        "[a-z][a-z0-9-]{0,10}\\.example"
            .prop_filter("not a punycode label", |h| !h.starts_with("xn--")),
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
        Just("localhost".to_owned()),
    ];
    let port = prop_oneof![
        Just(String::new()),
        (1u16..=65535).prop_map(|p| format!(":{p}"))
    ];
    let path = "(/[a-zA-Z0-9._~-]{1,8}){0,3}";
    let query = prop_oneof![Just(String::new()), "\\?[a-z]{1,5}=[a-z0-9]{0,5}"];
    let web = (host, port, path, query).prop_map(|(host, port, path, query)| {
        let loopback = matches!(host.as_str(), "127.0.0.1" | "[::1]" | "localhost");
        let scheme = if loopback { "http" } else { "https" };
        format!("{scheme}://{host}{port}{path}{query}")
    });
    let private = "com\\.example\\.[a-z]{1,6}:/[a-z]{1,8}";
    prop_oneof![4 => web, 1 => private]
}

/// For a loopback http URI: (the text before the port, the port text with its colon, the rest).
fn loopback_parts(uri: &str) -> Option<(&str, &str, &str)> {
    for prefix in ["http://127.0.0.1", "http://[::1]", "http://localhost"] {
        if let Some(rest) = uri.strip_prefix(prefix) {
            let digits = rest
                .strip_prefix(':')
                .map(|r| 1 + r.bytes().take_while(u8::is_ascii_digit).count())
                .unwrap_or(0);
            let (port, tail) = rest.split_at(digits);
            if tail.is_empty() || tail.starts_with('/') || tail.starts_with('?') {
                return Some((&uri[..prefix.len()], port, tail));
            }
        }
    }
    None
}

/// Is `presented` the registered URI with at most another port (loopback http only)?
fn differs_at_most_in_loopback_port(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    match (loopback_parts(registered), loopback_parts(presented)) {
        (Some((h1, _, t1)), Some((h2, port, t2))) => {
            h1 == h2 && t1 == t2 && (port.len() <= 1 || port[1..].parse::<u16>().is_ok())
        }
        _ => false,
    }
}

/// Edits an attacker might try on a registered URI. Each result differs from `uri` as a string.
fn tricks(uri: &str) -> Vec<String> {
    let mut out = vec![
        format!("{uri}/"),
        format!("{uri}/extra"),
        format!("{uri}/.."),
        format!("{uri}#frag"),
        format!("{uri}%2F"),
        format!("{uri} "),
        format!(" {uri}"),
        format!("{uri}\0"),
        if uri.contains('?') {
            format!("{uri}&next=https://evil.example")
        } else {
            format!("{uri}?next=https://evil.example")
        },
        uri.to_ascii_uppercase(),
    ];
    if let Some((scheme, rest)) = uri.split_once("://") {
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        out.push(format!("{scheme}://user@{rest}"));
        out.push(format!("{scheme}://{authority}@evil.example{tail}"));
        out.push(format!("{scheme}://evil.example/{rest}"));
        out.push(format!("{scheme}://{authority}.evil.example{tail}"));
        out.push(format!(
            "{scheme}://{}{tail}",
            authority.to_ascii_uppercase()
        ));
        out.push(format!("{scheme}://{authority}:1{tail}"));
        out.push(format!("{scheme}://{authority}\\@evil.example{tail}"));
        out.push(format!("{}://{rest}", scheme.to_ascii_uppercase()));
        let other = if scheme == "https" { "http" } else { "https" };
        out.push(format!("{other}://{rest}"));
    }
    // Percent-encode each unreserved character of the path in turn.
    if let Some(start) = uri
        .find("://")
        .map(|i| i + 3)
        .and_then(|i| uri[i..].find('/').map(|j| i + j))
    {
        for (i, c) in uri[start..].char_indices() {
            if c.is_ascii_alphanumeric() {
                let at = start + i;
                out.push(format!("{}%{:02X}{}", &uri[..at], c as u32, &uri[at + 1..]));
                out.push(format!("{}%{:02x}{}", &uri[..at], c as u32, &uri[at + 1..]));
            }
        }
    }
    // Change the case of each letter in turn.
    for (i, c) in uri.char_indices() {
        if c.is_ascii_alphabetic() {
            let flipped = if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            out.push(format!("{}{flipped}{}", &uri[..i], &uri[i + 1..]));
        }
    }
    out.retain(|t| t != uri);
    out
}

proptest! {
    #![proptest_config(config())]

    /// Registration never panics, and what it accepts obeys the documented rules.
    #[test]
    fn redirect_uri_registration_rules(s in prop_oneof![
        any::<String>(),
        "[a-zA-Z.]{0,12}:(//)?[a-zA-Z0-9.@:%\\[\\];,_~-]{0,24}(/[a-zA-Z0-9._~%@:/?&=#-]{0,24})?",
        registered_uri(),
    ]) {
        if let Ok(r) = RedirectUri::parse(&s) {
            prop_assert_eq!(r.as_str(), s.as_str());
            prop_assert!(s.len() <= oauth_core::redirect_uri::MAX_URI_LEN);
            prop_assert!(s.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            prop_assert!(!s.contains('#'));
            let url = url::Url::parse(&s).unwrap();
            if let ("http" | "https", Some(url::Host::Domain(name))) = (url.scheme(), url.host()) {
                prop_assert!(
                    name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)),
                    "host {}", name
                );
                prop_assert_ne!(url.port(), Some(0));
            }
            match url.scheme() {
                "https" => {
                    prop_assert!(url.host().is_some());
                    prop_assert!(url.username().is_empty() && url.password().is_none());
                }
                "http" => {
                    prop_assert!(matches!(
                        url.host_str(),
                        Some("127.0.0.1" | "[::1]" | "localhost")
                    ), "http on {:?}", url.host_str());
                    prop_assert!(url.username().is_empty() && url.password().is_none());
                }
                scheme => prop_assert!(scheme.contains('.'), "scheme {}", scheme),
            }
        }
    }

    /// Generated URIs of the documented forms register.
    #[test]
    fn registrable_uris_register(uri in registered_uri()) {
        prop_assert!(RedirectUri::parse(&uri).is_ok(), "{}", uri);
    }

    /// No trick on a registered URI matches it, except another port on a loopback http URI.
    #[test]
    fn redirect_uri_tricks_never_match(uri in registered_uri()) {
        let reg = RedirectUri::parse(&uri).unwrap();
        prop_assert!(reg.matches(&uri));
        for t in tricks(&uri) {
            prop_assert_eq!(
                reg.matches(&t),
                differs_at_most_in_loopback_port(&uri, &t),
                "registered {} presented {}", uri, t
            );
        }
    }

    /// Arbitrary edits: a presented URI matches only when it is the registered string, or the
    /// same loopback http URI on another port.
    #[test]
    fn redirect_uri_matching_is_exact(
        uri in registered_uri(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, "[ -~]{0,3}"), 1..4),
        other in any::<String>(),
    ) {
        let reg = RedirectUri::parse(&uri).unwrap();
        let mut presented = uri.clone().into_bytes();
        for (at, op, text) in edits {
            let i = at.index(presented.len() + 1);
            match op {
                0 => { let _: Vec<u8> = presented.splice(i..i, text.bytes()).collect(); }
                1 => { if i < presented.len() { presented.remove(i); } }
                _ => {
                    let end = (i + text.len()).min(presented.len());
                    let _: Vec<u8> = presented.splice(i..end, text.bytes()).collect();
                }
            }
        }
        let presented = String::from_utf8(presented).unwrap();
        prop_assert_eq!(
            reg.matches(&presented),
            differs_at_most_in_loopback_port(&uri, &presented),
            "registered {} presented {}", uri, presented
        );
        prop_assert!(!reg.matches(&other) || other == uri || loopback_parts(&uri).is_some());
    }

    /// Another port on a loopback http URI matches (RFC 8252 §7.3); never on https.
    #[test]
    fn loopback_port_may_differ(uri in registered_uri(), port in 1u16..=65535) {
        let reg = RedirectUri::parse(&uri).unwrap();
        if let Some((head, _, tail)) = loopback_parts(&uri) {
            let other_port = format!("{head}:{port}{tail}");
            let no_port = format!("{head}{tail}");
            let fragment = format!("{head}:{port}{tail}#x");
            let https = format!("{}:{port}{tail}", head.replacen("http", "https", 1));
            prop_assert!(reg.matches(&other_port), "{}", other_port);
            prop_assert!(reg.matches(&no_port), "{}", no_port);
            prop_assert!(!reg.matches(&fragment), "{}", fragment);
            prop_assert!(!reg.matches(&https), "{}", https);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scopes

fn scope_token() -> impl Strategy<Value = String> {
    "[!#-\\[\\]-~]{1,12}"
}

proptest! {
    #![proptest_config(config())]

    /// Parsing never panics; what it returns are valid, distinct tokens of the input, and
    /// formatting them back parses to the same list.
    #[test]
    fn scope_strings_round_trip(s in prop_oneof![any::<String>(), "[ a-z\"\\\\!~]{0,40}"]) {
        match parse_scope_string(&s) {
            Ok(tokens) => {
                let words: Vec<&str> = s.split(' ').filter(|t| !t.is_empty()).collect();
                for (i, t) in tokens.iter().enumerate() {
                    prop_assert!(is_scope_token(t));
                    prop_assert!(words.contains(&t.as_str()));
                    prop_assert!(!tokens[..i].contains(t));
                }
                for w in &words {
                    prop_assert!(tokens.iter().any(|t| t == w));
                }
                prop_assert_eq!(parse_scope_string(&tokens.join(" ")), Ok(tokens.clone()));
            }
            Err(ScopeError::Invalid(bad)) => {
                prop_assert!(!is_scope_token(&bad));
                prop_assert!(s.split(' ').any(|w| w == bad));
            }
            Err(ScopeError::TooLong) => prop_assert!(s.len() > MAX_SCOPE_STRING_LEN),
            Err(ScopeError::TooMany) => {
                let distinct: std::collections::HashSet<&str> =
                    s.split(' ').filter(|t| !t.is_empty()).collect();
                prop_assert!(distinct.len() > MAX_SCOPE_TOKENS);
            }
        }
    }

    /// A list of valid tokens, joined with any number of spaces, parses to the list in order
    /// with duplicates removed.
    #[test]
    fn scope_lists_format_and_parse(
        tokens in proptest::collection::vec(scope_token(), 0..8),
        gaps in proptest::collection::vec(1usize..4, 8),
    ) {
        let mut s = String::new();
        for (t, gap) in tokens.iter().zip(&gaps) {
            s.push_str(t);
            s.push_str(&" ".repeat(*gap));
        }
        let mut expected: Vec<String> = Vec::new();
        for t in &tokens {
            if !expected.contains(t) {
                expected.push(t.clone());
            }
        }
        prop_assert_eq!(parse_scope_string(&s), Ok(expected));
    }

    /// The scope-token grammar of RFC 6749 §3.3, byte by byte.
    #[test]
    fn scope_token_grammar(s in any::<String>()) {
        let expected = !s.is_empty()
            && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
        prop_assert_eq!(is_scope_token(&s), expected);
    }
}

// ---------------------------------------------------------------------------------------------
// PKCE and return_to

proptest! {
    #![proptest_config(config())]

    /// RFC 7636 §4.1 syntax, and a verifier matches only its own challenge.
    #[test]
    fn pkce_syntax_and_verification(
        s in prop_oneof![any::<String>(), "[A-Za-z0-9._~+/=-]{40,130}"],
        verifier in "[A-Za-z0-9._~-]{43,128}",
    ) {
        let expected = (43..=128).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        prop_assert_eq!(pkce::is_valid_syntax(&s), expected);
        prop_assert_eq!(pkce::check_challenge(&s).is_ok(), expected);
        let challenge = pkce::s256_challenge(&verifier);
        prop_assert!(pkce::check_challenge(&challenge).is_ok());
        prop_assert!(pkce::verify(&verifier, &challenge, ChallengeMethod::S256));
        prop_assert!(pkce::verify(&verifier, &verifier, ChallengeMethod::Plain));
        if s != verifier {
            prop_assert!(!pkce::verify(&s, &challenge, ChallengeMethod::S256));
            prop_assert!(!pkce::verify(&s, &verifier, ChallengeMethod::Plain));
        }
        // S256 is never satisfied by sending the challenge itself as the verifier.
        prop_assert!(!pkce::verify(&challenge, &challenge, ChallengeMethod::S256));
    }

    /// `return_to` accepts only paths that stay on this origin, whatever a browser makes of them.
    #[test]
    fn return_to_stays_on_this_origin(s in prop_oneof![
        any::<String>(),
        "[/\\\\a-z:.@%?#\t ]{0,16}",
        "/[/\\\\a-z:.@%]{0,16}",
    ]) {
        if let Some(path) = safe_return_to(&s) {
            prop_assert_eq!(path, s.as_str());
            prop_assert!(s.starts_with('/') && !s.starts_with("//"));
            prop_assert!(!s.contains('\\'));
            prop_assert!(!s.chars().any(|c| c.is_control() || c.is_whitespace()));
            let base = url::Url::parse("https://as.example/login").unwrap();
            let target = base.join(&s).unwrap();
            prop_assert_eq!(target.origin(), base.origin(), "{}", s);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization requests

fn client() -> Client {
    Client {
        client_id: "c1".into(),
        org_id: "o".into(),
        user_id: "u".into(),
        origin: ClientOrigin::Management,
        secret_hash: None,
        verified: false,
        created_at: 0,
        updated_at: 0,
        settings: ClientDraft {
            name: "App".into(),
            client_type: ClientType::Public,
            require_pkce: true,
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: vec!["admin".into(), "voice".into()],
            redirect_uris: vec![
                "https://app.example/cb".into(),
                "http://127.0.0.1/cb".into(),
            ],
            logo_uri: None,
            policy_uri: None,
            tos_uri: None,
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            jwks: None,
            jwks_uri: None,
            application_type: None,
        },
    }
}

/// Query pairs of an authorization request: the usual keys with plausible or odd values,
/// sometimes repeated.
fn authorize_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let pair = prop_oneof![
        Just(("client_id".to_owned(), "c1".to_owned())),
        Just(("response_type".to_owned(), "code".to_owned())),
        prop_oneof![
            Just("https://app.example/cb".to_owned()),
            Just("http://127.0.0.1:5000/cb".to_owned()),
            Just("https://app.example/cb/".to_owned()),
            Just("https://APP.example/cb".to_owned()),
            Just("https://app.example@evil.example/cb".to_owned()),
        ]
        .prop_map(|v| ("redirect_uri".to_owned(), v)),
        prop_oneof![
            Just("admin".to_owned()),
            Just("admin voice".to_owned()),
            Just("admin billing".to_owned()),
            Just("".to_owned()),
            "[a-z \"]{0,12}",
        ]
        .prop_map(|v| ("scope".to_owned(), v)),
        prop_oneof![
            Just("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
            "[A-Za-z0-9+/=_-]{0,50}",
        ]
        .prop_map(|v| ("code_challenge".to_owned(), v)),
        prop_oneof![
            Just("S256".to_owned()),
            Just("plain".to_owned()),
            Just("s256".to_owned()),
        ]
        .prop_map(|v| ("code_challenge_method".to_owned(), v)),
        any::<String>().prop_map(|v| ("state".to_owned(), v)),
        ("[a-z_]{1,12}", any::<String>()),
    ];
    let base = vec![
        ("client_id".to_owned(), "c1".to_owned()),
        ("response_type".to_owned(), "code".to_owned()),
        (
            "redirect_uri".to_owned(),
            "https://app.example/cb".to_owned(),
        ),
        (
            "code_challenge".to_owned(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
        ),
        ("code_challenge_method".to_owned(), "S256".to_owned()),
    ];
    (
        proptest::collection::vec(pair, 0..6),
        proptest::sample::subsequence(base.clone(), 0..=base.len()),
    )
        .prop_map(|(mut extra, mut kept)| {
            kept.append(&mut extra);
            kept
        })
}

proptest! {
    #![proptest_config(config())]

    /// Never panics; an accepted request has no repeated parameter, a registered redirect URI,
    /// scopes within the client's, and an S256 challenge (plain is off, PKCE is required).
    #[test]
    fn authorization_requests(pairs in authorize_pairs()) {
        let c = client();
        let catalogue = ScopeCatalogue::default();
        let policy = AuthorizePolicy { allow_plain_pkce: false, resources: &[], catalogue: &catalogue };
        if let Ok(req) = AuthorizeQuery(&pairs).validate(Some(&c), policy) {
            let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            let n = keys.len();
            keys.dedup();
            prop_assert_eq!(keys.len(), n, "repeated parameter accepted: {:?}", pairs);
            let registered = c
                .settings
                .redirect_uris
                .iter()
                .any(|r| RedirectUri::parse(r).unwrap().matches(&req.redirect_uri));
            prop_assert!(registered, "{}", req.redirect_uri);
            prop_assert!(!req.scopes.is_empty());
            prop_assert!(req.scopes.iter().all(|s| c.settings.scopes.contains(s)));
            prop_assert_eq!(req.code_challenge_method, Some(ChallengeMethod::S256));
            prop_assert!(pkce::check_challenge(req.code_challenge.as_deref().unwrap()).is_ok());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JWT access tokens

const ISSUER: &str = "https://as.example";
const NOW: i64 = 1_900_000_000;

fn keys() -> &'static [KeyPair] {
    static KEYS: OnceLock<Vec<KeyPair>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(7);
        [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256]
            .into_iter()
            .map(|alg| KeyPair::generate(alg, &mut rng).unwrap())
            .collect()
    })
}

fn claims() -> AccessTokenClaims {
    AccessTokenClaims {
        iss: ISSUER.into(),
        sub: "user-1".into(),
        aud: ISSUER.into(),
        client_id: "c1".into(),
        scope: "admin".into(),
        iat: NOW,
        exp: NOW + 3600,
        jti: "j1".into(),
        grant_id: None,
        family_id: None,
    }
}

fn tokens() -> &'static [String] {
    static TOKENS: OnceLock<Vec<String>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        keys()
            .iter()
            .map(|k| jwt::encode_access_token(k, &claims()).unwrap())
            .collect()
    })
}

fn verify(token: &str) -> Result<AccessTokenClaims, jwt::JwtError> {
    let expect = Expect {
        issuer: ISSUER,
        now: NOW,
        leeway: 60,
        audience: Some(ISSUER),
        max_lifetime: 3600,
    };
    jwt::verify_access_token(
        token,
        |kid| {
            keys()
                .iter()
                .find(|k| k.kid() == kid)
                .map(KeyPair::public_key)
        },
        &expect,
    )
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary strings, and strings shaped like a JWS, are never accepted (and never panic).
    #[test]
    fn arbitrary_tokens_are_refused(s in prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{1,40}\\.[A-Za-z0-9_-]{1,40}\\.[A-Za-z0-9_-]{0,90}",
    ]) {
        prop_assert!(verify(&s).is_err());
        let _ = jwt::peek_kid(&s);
        let _ = jwt::looks_like_jwt(&s);
    }

    /// The shape check is the plain definition: three parts of base64url characters.
    #[test]
    fn the_shape_check_is_three_base64url_parts(s in prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_.@`{\\[/:\\-]{0,600}",
        // Three parts, with the neighbours of the base64url ranges among their characters.
        "[A-Za-z0-9_-]{0,15}[@`{\\[/:]?[A-Za-z0-9_-]{0,15}\\.[A-Za-z0-9_-]{0,15}[@`{\\[/:]?[A-Za-z0-9_-]{0,15}\\.[A-Za-z0-9_-]{0,15}[@`{\\[/:]?[A-Za-z0-9_-]{0,15}",
        "[A-Za-z0-9_-]{0,300}\\.[A-Za-z0-9_-]{0,300}\\.[A-Za-z0-9_-]{0,300}",
    ]) {
        let b64 = |p: &str| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let parts: Vec<&str> = s.split('.').collect();
        let plain = s.len() <= jwt::MAX_TOKEN_LEN && parts.len() == 3 && parts.iter().all(|p| b64(p));
        prop_assert_eq!(jwt::looks_like_jwt(&s), plain);
    }

    /// Any one bit flipped anywhere in a valid token's text makes it invalid.
    #[test]
    fn a_flipped_bit_in_the_text_is_refused(which in 0usize..3, at in any::<prop::sample::Index>(), bit in 0u8..7) {
        let token = &tokens()[which];
        prop_assert!(verify(token).is_ok());
        let mut bytes = token.clone().into_bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assert!(verify(&mutated).is_err(), "accepted {}", mutated);
    }

    /// Any one bit flipped in the decoded header, payload or signature (re-encoded, so the
    /// token stays well-formed base64url) makes it invalid.
    #[test]
    fn a_flipped_bit_in_any_part_is_refused(
        which in 0usize..3,
        part in 0usize..3,
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let token = &tokens()[which];
        let mut parts: Vec<Vec<u8>> = token
            .split('.')
            .map(|p| URL_SAFE_NO_PAD.decode(p).unwrap())
            .collect();
        let i = at.index(parts[part].len());
        parts[part][i] ^= 1 << bit;
        let mutated = parts
            .iter()
            .map(|p| URL_SAFE_NO_PAD.encode(p))
            .collect::<Vec<_>>()
            .join(".");
        prop_assert!(verify(&mutated).is_err(), "accepted {}", mutated);
    }

    /// A valid token's parts recombined with forged ones (another header, payload or
    /// signature from another token) are refused.
    #[test]
    fn spliced_tokens_are_refused(a in 0usize..3, b in 0usize..3, part in 0usize..3, payload in any::<String>()) {
        let pa: Vec<&str> = tokens()[a].split('.').collect();
        let pb: Vec<&str> = tokens()[b].split('.').collect();
        let mut mixed = pa.clone();
        mixed[part] = pb[part];
        let spliced = mixed.join(".");
        prop_assert_eq!(verify(&spliced).is_ok(), spliced == tokens()[a] || spliced == tokens()[b]);
        let forged = format!("{}.{}.{}", pa[0], URL_SAFE_NO_PAD.encode(payload.as_bytes()), pa[2]);
        prop_assert!(verify(&forged).is_err());
    }
}
