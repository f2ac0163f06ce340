//! JWT access tokens (RFC 9068): the claims, compact JWS encoding (RFC 7515 §7.1) and
//! verification.
//!
//! Verification trusts nothing in the token before the signature checks out: the header names a
//! `kid`, the key comes from the caller's key set, and the header's `alg` must be exactly that
//! key's algorithm. So `alg: none`, an HMAC algorithm "signed" with a public key, or any other
//! algorithm substitution fails (RFC 8725 §2.1, §3.1).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::keys::{KeyError, KeyPair, PublicKey};
use crate::UnixSeconds;

/// RFC 9068 §2.1: the `typ` header of an access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Longest token this server looks at; its own are well under 2 KiB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// RFC 9068 §2.2 claims of this server's access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The user, or for `client_credentials` the client itself.
    pub sub: String,
    /// RFC 8707 resource, or the server's default resource.
    pub aud: String,
    pub client_id: String,
    /// Space-delimited (RFC 9068 §2.2.3).
    pub scope: String,
    pub iat: UnixSeconds,
    pub exp: UnixSeconds,
    pub jti: String,
    /// The grant the token was issued under; absent for `client_credentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// The token family (the tokens descending from one authorization code) the token belongs
    /// to; absent for `client_credentials` and for tokens issued before families existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_id: Option<String>,
}

impl AccessTokenClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

/// Why a token was refused. Callers outside the server never see which (RFC 7662 §2.2: an
/// inactive token says nothing more); the distinction is for logs and for the unknown-kid reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a well-formed JWS")]
    Malformed,
    #[error("the header is not that of an access token")]
    WrongType,
    #[error("no key with that kid")]
    UnknownKey,
    #[error("the alg does not match the key")]
    WrongAlgorithm,
    #[error("bad signature")]
    BadSignature,
    #[error("issued by someone else")]
    WrongIssuer,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("meant for another audience")]
    WrongAudience,
    #[error("lives longer than this server issues tokens for")]
    LifetimeTooLong,
}

/// What a verified token must satisfy besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub now: UnixSeconds,
    /// Tolerated clock difference between instances, for `iat` in the future.
    pub leeway: i64,
    /// `Some`: `aud` must equal it.
    pub audience: Option<&'a str>,
    /// The longest lifetime (`exp - iat`, seconds) a token may claim: the server's own
    /// access-token lifetime. A longer one was not issued under the current settings (or was
    /// forged with a key that leaked) and is refused even with a valid signature.
    pub max_lifetime: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    /// RFC 7515 §4.1.11: extensions we would have to understand. We understand none.
    #[serde(default, skip_serializing)]
    crit: Option<serde_json::Value>,
}

/// Signs `claims` as an access token with `key` (header `typ: at+jwt`, `alg`, `kid`; encoded
/// once per key, see [`encoded_access_token_header`]).
pub fn encode_access_token(key: &KeyPair, claims: &AccessTokenClaims) -> Result<String, KeyError> {
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let header = key.access_token_header();
    let mut token = String::with_capacity(header.len() + 1 + payload.len() * 4 / 3 + 4 + 120);
    token.push_str(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let sig = key.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut token);
    Ok(token)
}

/// The base64url protected header of the access tokens `key` signs.
pub(crate) fn encoded_access_token_header(key: &PublicKey) -> String {
    let header = serde_json::json!({
        "alg": key.alg().as_str(),
        "typ": ACCESS_TOKEN_TYP,
        "kid": key.kid(),
    });
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default())
}

/// Compact JWS of any header and payload, signed with `key`. The header is taken as given
/// (tests use this to forge tokens).
pub fn sign_compact(
    key: &KeyPair,
    header: &serde_json::Value,
    payload: &impl Serialize,
) -> Result<String, KeyError> {
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap_or_default());
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap_or_default());
    let signing_input = format!("{h}.{p}");
    let sig = key.sign(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// Is this shaped like a compact JWS (three base64url parts)? Cheap; no decoding.
pub fn looks_like_jwt(token: &str) -> bool {
    if token.len() > MAX_TOKEN_LEN {
        return false;
    }
    // Count the dots and the bytes that are neither base64url nor a dot, with no early exit
    // and in byte-wide counters over runs of at most 255 bytes, so that the inner loop
    // compiles to compares on 16 bytes at a time (a byte at a time otherwise: an
    // introspection checks a 600-byte token twice).
    let (mut dots, mut others) = (0usize, 0usize);
    for run in token.as_bytes().chunks(255) {
        let (mut d, mut o) = (0u8, 0u8);
        for &b in run {
            let dot = b == b'.';
            let letter = (b | 0x20).wrapping_sub(b'a') < 26;
            let base64url = letter | (b.wrapping_sub(b'0') < 10) | (b == b'-') | (b == b'_');
            d += u8::from(dot);
            o += u8::from(!(dot | base64url));
        }
        dots += usize::from(d);
        others += usize::from(o);
    }
    dots == 2 && others == 0
}

/// The `kid` of a token's header, without verifying anything.
pub fn peek_kid(token: &str) -> Result<String, JwtError> {
    let (h, _, _) = split(token)?;
    parse_header(h)?.kid.ok_or(JwtError::Malformed)
}

/// Verifies an access token: shape, header, signature with the key `key_for(kid)` returns,
/// then the claims against `expect`.
pub fn verify_access_token<'k>(
    token: &str,
    key_for: impl FnOnce(&str) -> Option<&'k PublicKey>,
    expect: &Expect<'_>,
) -> Result<AccessTokenClaims, JwtError> {
    let (_, claims) = verify_signature(token, key_for)?;
    check_claims(&claims, expect)?;
    Ok(claims)
}

/// The first half of [`verify_access_token`]: shape, header and signature; returns the `kid`
/// that verified it and the claims, not yet checked against any expectation.
pub fn verify_signature<'k>(
    token: &str,
    key_for: impl FnOnce(&str) -> Option<&'k PublicKey>,
) -> Result<(String, AccessTokenClaims), JwtError> {
    let (h, p, s) = split(token)?;
    let header = parse_header(h)?;
    if header.crit.is_some() {
        return Err(JwtError::Malformed);
    }
    // RFC 9068 §4: `typ` must be `at+jwt` (or its media type form); compared case-insensitively
    // (RFC 7515 §4.1.9).
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(JwtError::WrongType);
    }
    let kid = header.kid.ok_or(JwtError::UnknownKey)?;
    let key = key_for(&kid).ok_or(JwtError::UnknownKey)?;
    if header.alg != key.alg().as_str() {
        return Err(JwtError::WrongAlgorithm);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let signing_input_len = h.len() + 1 + p.len();
    if !key.verify(&token.as_bytes()[..signing_input_len], &sig) {
        return Err(JwtError::BadSignature);
    }
    let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| JwtError::Malformed)?;
    let claims: AccessTokenClaims =
        serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)?;
    Ok((kid, claims))
}

/// The second half of [`verify_access_token`]: issuer, expiry, issue time and audience against
/// `expect`.
pub fn check_claims(claims: &AccessTokenClaims, expect: &Expect<'_>) -> Result<(), JwtError> {
    if claims.iss != expect.issuer {
        return Err(JwtError::WrongIssuer);
    }
    // RFC 7519 §4.1.4: the current time must be before `exp`.
    if expect.now >= claims.exp {
        return Err(JwtError::Expired);
    }
    if claims.iat > expect.now + expect.leeway {
        return Err(JwtError::NotYetValid);
    }
    if claims.exp.saturating_sub(claims.iat) > expect.max_lifetime {
        return Err(JwtError::LifetimeTooLong);
    }
    if let Some(aud) = expect.audience {
        if claims.aud != aud {
            return Err(JwtError::WrongAudience);
        }
    }
    Ok(())
}

fn split(token: &str) -> Result<(&str, &str, &str), JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() => Ok((h, p, s)),
        _ => Err(JwtError::Malformed),
    }
}

fn parse_header(h: &str) -> Result<Header, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Algorithm;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn claims(now: i64) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://as.example".into(),
            sub: "user-1".into(),
            aud: "https://as.example".into(),
            client_id: "c1".into(),
            scope: "admin messaging".into(),
            iat: now,
            exp: now + 3600,
            jti: "j1".into(),
            grant_id: None,
            family_id: None,
        }
    }

    fn expect(now: i64) -> Expect<'static> {
        Expect {
            issuer: "https://as.example",
            now,
            leeway: 60,
            audience: Some("https://as.example"),
            max_lifetime: 3600,
        }
    }

    #[test]
    fn round_trip_for_every_algorithm() {
        let mut rng = StdRng::seed_from_u64(9);
        for alg in [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256] {
            let k = KeyPair::generate(alg, &mut rng).unwrap();
            let t = encode_access_token(&k, &claims(1000)).unwrap();
            assert!(looks_like_jwt(&t));
            assert_eq!(peek_kid(&t).unwrap(), k.kid());
            let got = verify_access_token(&t, |_| Some(k.public_key()), &expect(1000)).unwrap();
            assert_eq!(got, claims(1000));
            assert!(got.has_scope("admin") && !got.has_scope("adm"));
        }
    }

    #[test]
    fn the_cached_header_is_the_access_token_header() {
        let mut rng = StdRng::seed_from_u64(12);
        let k = KeyPair::generate(Algorithm::EdDsa, &mut rng).unwrap();
        let header = serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": k.kid()});
        // Ed25519 signatures are deterministic: both encodings must give the same token.
        assert_eq!(
            encode_access_token(&k, &claims(1000)).unwrap(),
            sign_compact(&k, &header, &claims(1000)).unwrap()
        );
        let renamed = k.with_kid("other");
        let t = encode_access_token(&renamed, &claims(1000)).unwrap();
        assert_eq!(peek_kid(&t).unwrap(), "other");
    }

    #[test]
    fn claims_are_checked() {
        let mut rng = StdRng::seed_from_u64(10);
        let k = KeyPair::generate(Algorithm::Es256, &mut rng).unwrap();
        let t = encode_access_token(&k, &claims(1000)).unwrap();
        let v = |e: &Expect<'_>| verify_access_token(&t, |_| Some(k.public_key()), e);
        assert_eq!(v(&expect(4600)), Err(JwtError::Expired));
        assert_eq!(v(&expect(900)), Err(JwtError::NotYetValid));
        assert!(v(&expect(950)).is_ok(), "within the leeway");
        let mut e = expect(1000);
        e.max_lifetime = 3599;
        assert_eq!(v(&e), Err(JwtError::LifetimeTooLong));
        let mut e = expect(1000);
        e.issuer = "https://other.example";
        assert_eq!(v(&e), Err(JwtError::WrongIssuer));
        let mut e = expect(1000);
        e.audience = Some("https://api.example");
        assert_eq!(v(&e), Err(JwtError::WrongAudience));
        assert_eq!(
            verify_access_token(&t, |_| None, &expect(1000)),
            Err(JwtError::UnknownKey)
        );
    }

    #[test]
    fn algorithm_substitution_and_tampering_fail() {
        let mut rng = StdRng::seed_from_u64(11);
        let k = KeyPair::generate(Algorithm::Es256, &mut rng).unwrap();
        let other = KeyPair::generate(Algorithm::Es256, &mut rng).unwrap();
        let e = expect(1000);
        let verify = |t: &str| verify_access_token(t, |_| Some(k.public_key()), &e);

        let enc = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let payload = enc(&serde_json::to_value(claims(1000)).unwrap());
        let none = format!(
            "{}.{payload}.",
            enc(&serde_json::json!({"alg":"none","typ":"at+jwt","kid":k.kid()}))
        );
        assert_eq!(verify(&none), Err(JwtError::WrongAlgorithm));
        let hs = format!(
            "{}.{payload}.c2ln",
            enc(&serde_json::json!({"alg":"HS256","typ":"at+jwt","kid":k.kid()}))
        );
        assert_eq!(verify(&hs), Err(JwtError::WrongAlgorithm));
        let no_typ = sign_compact(
            &k,
            &serde_json::json!({"alg":"ES256","kid":k.kid()}),
            &claims(1000),
        )
        .unwrap();
        assert_eq!(verify(&no_typ), Err(JwtError::WrongType));
        let crit = sign_compact(
            &k,
            &serde_json::json!({"alg":"ES256","typ":"at+jwt","kid":k.kid(),"crit":["x"]}),
            &claims(1000),
        )
        .unwrap();
        assert_eq!(verify(&crit), Err(JwtError::Malformed));
        let forged = encode_access_token(&other.with_kid(k.kid()), &claims(1000)).unwrap();
        assert_eq!(verify(&forged), Err(JwtError::BadSignature));
        let good = encode_access_token(&k, &claims(1000)).unwrap();
        let mut c = claims(1000);
        c.scope = "admin messaging voice".into();
        let (h, _, s) = split(&good).unwrap();
        let tampered = format!("{h}.{}.{s}", enc(&serde_json::to_value(c).unwrap()));
        assert_eq!(verify(&tampered), Err(JwtError::BadSignature));
        for bad in ["", "a.b", "a.b.c.d", "!!.b.c", "KEYabc"] {
            assert_eq!(verify(bad), Err(JwtError::Malformed), "{bad}");
        }
        assert!(!looks_like_jwt("KEYabc"));
        assert!(looks_like_jwt("aZ09-_.b.c"));
        assert!(looks_like_jwt(".."));
        for not_jwt in ["a.b", "a.b.c.d", "a.b.c=", "a b.c.d", "a.b.c\n", "a.b.é"] {
            assert!(!looks_like_jwt(not_jwt), "{not_jwt}");
        }
        assert!(!looks_like_jwt(&format!(
            "a.b.{}",
            "c".repeat(MAX_TOKEN_LEN)
        )));
    }
}
