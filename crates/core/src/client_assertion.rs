//! Client authentication with a signed JWT (`private_key_jwt`, RFC 7523 §2.2 and §3, RFC 7521
//! §4.2): the client's public keys (a JWK set, RFC 7517) and the checks an assertion passes.
//!
//! Pure: the time is a parameter, and keys published at a `jwks_uri` are fetched by the
//! server. Signatures are verified by `jsonwebtoken`; this module chooses the key, the allowed
//! algorithms and the claims' rules.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use url::Url;

use crate::UnixSeconds;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The signing algorithms accepted, as published in the server metadata. Never `none`, never
/// a shared-secret (HS*) algorithm.
pub const SIGNING_ALGORITHMS: &[&str] = &["ES256", "RS256", "PS256", "EdDSA"];
/// Largest JWK set accepted, inline or fetched, in bytes.
pub const MAX_JWKS_BYTES: usize = 8 * 1024;
/// Most keys in a client's JWK set.
pub const MAX_KEYS: usize = 10;
/// Largest assertion read, in bytes.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// How far ahead `exp` may lie: an assertion is for one request, not a long-lived credential.
pub const MAX_LIFETIME_SECS: i64 = 300;
/// Clock difference forgiven on `iat`, `nbf` and the lifetime bound.
pub const LEEWAY_SECS: i64 = 30;
/// Longest `jti` accepted, in bytes.
pub const MAX_JTI_BYTES: usize = 256;
/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus the signature verifier accepts.
const MAX_RSA_BITS: usize = 4096;
/// JWK members that belong to a private or symmetric key (RFC 7518 §6.2.2, §6.3.2, §6.4;
/// RFC 8037 §2).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A client's usable public keys.
#[derive(Debug, Clone)]
pub struct ClientKeys {
    keys: Vec<Jwk>,
}

impl ClientKeys {
    /// Does any key carry this `kid`?
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys
            .iter()
            .any(|k| k.common.key_id.as_deref() == Some(kid))
    }
}

/// Reads a JWK set: an object with a non-empty `keys` list of at most [`MAX_KEYS`] keys, none
/// holding a private or symmetric member. Keys this server cannot use for signatures (another
/// curve, `use` other than `sig`, another algorithm, RSA under 2048 bits) are passed over; at
/// least one usable key must remain.
pub fn parse_jwks(value: &Value) -> Result<ClientKeys, String> {
    let Some(set) = value.as_object() else {
        return Err("jwks must be a JWK set: a JSON object with a keys list".into());
    };
    let Some(list) = set.get("keys").and_then(Value::as_array) else {
        return Err("jwks must hold a keys list".into());
    };
    if list.is_empty() {
        return Err("jwks holds no keys".into());
    }
    if list.len() > MAX_KEYS {
        return Err(format!("jwks holds more than {MAX_KEYS} keys"));
    }
    if serde_json::to_vec(value).map_or(usize::MAX, |v| v.len()) > MAX_JWKS_BYTES {
        return Err(format!("jwks is larger than {MAX_JWKS_BYTES} bytes"));
    }
    let mut keys = Vec::new();
    for (i, key) in list.iter().enumerate() {
        let Some(obj) = key.as_object() else {
            return Err(format!("key {i} of jwks is not a JSON object"));
        };
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            return Err(format!(
                "key {i} of jwks holds the private or secret member \"{m}\": publish public keys only"
            ));
        }
        if let Some(jwk) = usable_key(obj) {
            keys.push(jwk);
        }
    }
    if keys.is_empty() {
        return Err(format!(
            "jwks holds no usable signing key: an EC P-256, RSA (2048 bits or more) or OKP Ed25519 public key for one of {}",
            SIGNING_ALGORITHMS.join(", ")
        ));
    }
    Ok(ClientKeys { keys })
}

/// Reads a JWK set from JSON text (as stored, or as fetched from a `jwks_uri`).
pub fn parse_jwks_text(text: &[u8]) -> Result<ClientKeys, String> {
    if text.len() > MAX_JWKS_BYTES {
        return Err(format!("the JWK set is larger than {MAX_JWKS_BYTES} bytes"));
    }
    let value: Value =
        serde_json::from_slice(text).map_err(|_| "the JWK set is not JSON".to_owned())?;
    parse_jwks(&value)
}

/// The key, if this server can verify signatures with it.
/// An RSA public key the verifier accepts: an odd modulus of 2048 to 4096 bits exactly, and an
/// odd exponent from 3 to 2^33 - 1. Anything else could be registered but never verify.
fn usable_rsa(n: &[u8], e: &[u8]) -> bool {
    let bits = |v: &[u8]| {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        match v.first() {
            Some(first) => (v.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
            None => 0,
        }
    };
    let odd = |v: &[u8]| v.last().is_some_and(|b| b & 1 == 1);
    let n_bits = bits(n);
    let e_bits = bits(e);
    (MIN_RSA_BITS..=MAX_RSA_BITS).contains(&n_bits)
        && odd(n)
        && (2..=33).contains(&e_bits)
        && odd(e)
}

/// A P-256 public key the verifier accepts: two coordinates of 32 bytes each, of a point on the
/// curve. Anything else could be registered but never verify.
fn usable_p256(x: &str, y: &str) -> bool {
    let (Ok(x), Ok(y)) = (URL_SAFE_NO_PAD.decode(x), URL_SAFE_NO_PAD.decode(y)) else {
        return false;
    };
    if x.len() != 32 || y.len() != 32 {
        return false;
    }
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).is_ok()
}

/// An Ed25519 public key the verifier accepts: 32 bytes that decode to a point of the curve,
/// not one of small order (with such a key, signatures can be made without its private key).
/// The signature library reads the first 32 bytes of whatever it is given, and a shorter key
/// made it panic at the first assertion naming it.
fn usable_ed25519(x: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(x)
        .ok()
        .and_then(|x| <[u8; 32]>::try_from(x).ok())
        .and_then(|x| ed25519_dalek::VerifyingKey::from_bytes(&x).ok())
        .is_some_and(|key| !key.is_weak())
}

fn usable_key(obj: &Map<String, Value>) -> Option<Jwk> {
    let s = |k: &str| obj.get(k).and_then(Value::as_str);
    if s("use").is_some_and(|u| u != "sig") {
        return None;
    }
    if s("alg").is_some_and(|a| !SIGNING_ALGORITHMS.contains(&a)) {
        return None;
    }
    let fits = match (s("kty")?, s("crv")) {
        ("EC", Some("P-256")) => {
            usable_p256(s("x")?, s("y")?) && s("alg").is_none_or(|a| a == "ES256")
        }
        ("OKP", Some("Ed25519")) => {
            usable_ed25519(s("x")?) && s("alg").is_none_or(|a| a == "EdDSA")
        }
        ("RSA", _) => {
            let n = URL_SAFE_NO_PAD.decode(s("n")?).ok()?;
            let e = URL_SAFE_NO_PAD.decode(s("e")?).ok()?;
            usable_rsa(&n, &e) && s("alg").is_none_or(|a| a == "RS256" || a == "PS256")
        }
        _ => false,
    };
    if !fits {
        return None;
    }
    let jwk: Jwk = serde_json::from_value(Value::Object(obj.clone())).ok()?;
    DecodingKey::from_jwk(&jwk).ok()?;
    Some(jwk)
}

/// Checks a `jwks_uri`: an absolute https URL with a host, without user information or a
/// fragment (plain http on a loopback host when `allow_http_loopback`).
pub fn check_jwks_uri(uri: &str, allow_http_loopback: bool) -> Result<Url, String> {
    if uri.len() > 2000 {
        return Err("jwks_uri is too long".into());
    }
    let url = Url::parse(uri).map_err(|_| "jwks_uri is not an absolute URL".to_owned())?;
    let host = url.host_str().unwrap_or("");
    match url.scheme() {
        "https" if !host.is_empty() => {}
        "http" if allow_http_loopback && crate::cimd::is_loopback_host(host) => {}
        _ => return Err("jwks_uri must be an https URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("jwks_uri must not hold user information".into());
    }
    if url.fragment().is_some() {
        return Err("jwks_uri must not have a fragment".into());
    }
    Ok(url)
}

/// Why an assertion was refused: a reason for the audit trail and a description for the
/// client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionError {
    pub reason: &'static str,
    pub description: String,
}

impl AssertionError {
    fn new(reason: &'static str, description: impl Into<String>) -> Self {
        Self {
            reason,
            description: description.into(),
        }
    }

    /// The assertion names a key the client's set does not hold (the set may have rotated).
    pub fn is_unknown_key(&self) -> bool {
        self.reason == "unknown_key"
    }
}

/// What a verified assertion tells: its `jti` and when it expires (how long the `jti` must be
/// remembered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub jti: String,
    pub expires_at: UnixSeconds,
}

/// Decodes one base64url segment of the assertion as a JSON object.
fn segment(part: Option<&str>) -> Result<Map<String, Value>, AssertionError> {
    let malformed = || AssertionError::new("malformed", "client_assertion is not a signed JWT");
    let bytes = URL_SAFE_NO_PAD
        .decode(part.ok_or_else(malformed)?)
        .map_err(|_| malformed())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(malformed()),
    }
}

/// The client an assertion says it is (its `sub`, which must equal `iss`), read before any
/// verification so that the client's keys can be looked up. Nothing here is trusted yet.
pub fn claimed_client_id(assertion: &str) -> Result<String, AssertionError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(AssertionError::new(
            "malformed",
            format!("client_assertion is longer than {MAX_ASSERTION_BYTES} bytes"),
        ));
    }
    let mut parts = assertion.split('.');
    let (_, payload) = (parts.next(), parts.next());
    if parts.count() != 1 {
        return Err(AssertionError::new(
            "malformed",
            "client_assertion is not a signed JWT (three base64url parts)",
        ));
    }
    let claims = segment(payload)?;
    match claims.get("sub").and_then(Value::as_str) {
        Some(sub) if !sub.is_empty() => Ok(sub.to_owned()),
        _ => Err(AssertionError::new(
            "claims",
            "client_assertion has no sub: it must be the client_id",
        )),
    }
}

/// What the assertion must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub client_id: &'a str,
    /// The values `aud` may be: the issuer alone, as the OAuth working group's update of RFC
    /// 7523 (draft-ietf-oauth-rfc7523bis) asks, or with the token endpoint's URLs too when the
    /// operator keeps them for older clients. `aud` is one of them, as a string or as the only
    /// member of a list: a list naming other audiences too may have been sent to them as well.
    pub audiences: &'a [String],
}

/// Verifies `assertion` against the client's `keys` at `now`: the algorithm, a key that fits
/// (by `kid` when the header names one), the signature, then the claims (RFC 7523 §3).
pub fn verify(
    assertion: &str,
    keys: &ClientKeys,
    expected: Expected<'_>,
    now: UnixSeconds,
) -> Result<VerifiedAssertion, AssertionError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(AssertionError::new(
            "malformed",
            format!("client_assertion is longer than {MAX_ASSERTION_BYTES} bytes"),
        ));
    }
    let header = segment(assertion.split('.').next())?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if !SIGNING_ALGORITHMS.contains(&alg) {
        return Err(AssertionError::new(
            "algorithm",
            format!(
                "client_assertion alg {:?} is not accepted; use one of {}",
                alg.chars().take(16).collect::<String>(),
                SIGNING_ALGORITHMS.join(", ")
            ),
        ));
    }
    // RFC 7515 §4.1.11: an extension marked critical must be understood, and this server
    // understands none (an empty list is invalid too).
    if header.get("crit").is_some() {
        return Err(AssertionError::new(
            "malformed",
            "client_assertion marks header parameters critical (crit), which this server does not support",
        ));
    }
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| AssertionError::new("malformed", "client_assertion has a malformed header"))?;
    let algorithm = header.alg;
    let candidates: Vec<&Jwk> = keys
        .keys
        .iter()
        .filter(|k| {
            header
                .kid
                .as_deref()
                .is_none_or(|kid| k.common.key_id.as_deref() == Some(kid))
        })
        .collect();
    if candidates.is_empty() {
        return Err(AssertionError::new(
            "unknown_key",
            "client_assertion names a kid that is not among the client's keys",
        ));
    }
    let mut validation = Validation::new(algorithm);
    validation.algorithms = vec![algorithm];
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let mut claims = None;
    for jwk in candidates.into_iter().filter(|k| fits(k, algorithm)) {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        if let Ok(data) = jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
            claims = Some(data.claims);
            break;
        }
    }
    let Some(Value::Object(claims)) = claims else {
        return Err(AssertionError::new(
            "signature",
            "client_assertion's signature does not verify with any of the client's keys",
        ));
    };
    check_claims(&claims, expected, now)
}

/// Can `jwk` verify `alg`? Its type, and its own `alg` when it states one.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    let family_fits = match &jwk.algorithm {
        P::EllipticCurve(_) => alg == Algorithm::ES256,
        P::OctetKeyPair(_) => alg == Algorithm::EdDSA,
        P::RSA(_) => matches!(alg, Algorithm::RS256 | Algorithm::PS256),
        P::OctetKey(_) => false,
    };
    family_fits
        && jwk
            .common
            .key_algorithm
            .is_none_or(|ka| ka.to_string() == format!("{alg:?}"))
}

/// A NumericDate (RFC 7519 §2): an integer, or a number with a fraction (cut to the second).
fn numeric(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, AssertionError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 1e15)
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or_else(|| {
                AssertionError::new("claims", format!("client_assertion {name} is not a number"))
            }),
    }
}

fn check_claims(
    claims: &Map<String, Value>,
    expected: Expected<'_>,
    now: UnixSeconds,
) -> Result<VerifiedAssertion, AssertionError> {
    let claim = |k: &str| claims.get(k).and_then(Value::as_str);
    let bad = |description: &str| AssertionError::new("claims", description);
    if claim("iss") != Some(expected.client_id) {
        return Err(bad("client_assertion iss must be the client_id"));
    }
    if claim("sub") != Some(expected.client_id) {
        return Err(bad("client_assertion sub must be the client_id"));
    }
    let aud = match claims.get("aud") {
        Some(Value::String(a)) => Some(a.as_str()),
        Some(Value::Array(list)) if list.len() == 1 => list[0].as_str(),
        _ => None,
    };
    if !aud.is_some_and(|a| expected.audiences.iter().any(|e| e == a)) {
        return Err(bad(&format!(
            "client_assertion aud must name this server alone ({}), not a list of several",
            expected.audiences.join(" or ")
        )));
    }
    let Some(exp) = numeric(claims, "exp")? else {
        return Err(bad("client_assertion has no exp"));
    };
    if exp <= now {
        return Err(AssertionError::new(
            "expired",
            "client_assertion has expired",
        ));
    }
    if exp > now + MAX_LIFETIME_SECS + LEEWAY_SECS {
        return Err(bad(&format!(
            "client_assertion exp is more than {MAX_LIFETIME_SECS} seconds ahead"
        )));
    }
    if numeric(claims, "nbf")?.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
        return Err(bad("client_assertion is not valid yet (nbf)"));
    }
    if numeric(claims, "iat")?.is_some_and(|iat| iat > now + LEEWAY_SECS) {
        return Err(bad("client_assertion iat is in the future"));
    }
    let jti = match claim("jti") {
        Some(j)
            if !j.is_empty() && j.len() <= MAX_JTI_BYTES && !j.chars().any(char::is_control) =>
        {
            j.to_owned()
        }
        Some(_) => {
            return Err(bad(&format!(
                "client_assertion jti must be 1 to {MAX_JTI_BYTES} bytes without control characters"
            )))
        }
        None => return Err(bad("client_assertion has no jti")),
    };
    Ok(VerifiedAssertion {
        jti,
        expires_at: exp,
    })
}

/// What a used `jti` is remembered by: the SHA-256 (hex) of the client id and the jti, so that
/// two clients' jtis never collide and nothing chosen by a caller is stored as it was sent.
pub fn jti_digest(client_id: &str, jti: &str) -> String {
    crate::secret::hash_secret(&format!("{}:{client_id}:{jti}", client_id.len()))
}

#[cfg(test)]
mod tests {

    #[test]
    fn rsa_keys_that_could_never_verify_are_not_usable() {
        let n = |bits: usize, last: u8| {
            let mut v = vec![0xffu8; bits / 8];
            v[0] = 0x80 | 0x7f; // top bit set: exactly `bits` bits
            if let Some(l) = v.last_mut() {
                *l = last;
            }
            v
        };
        let e = [0x01, 0x00, 0x01];
        assert!(usable_rsa(&n(2048, 0xff), &e));
        assert!(usable_rsa(&n(4096, 0xff), &e));
        assert!(usable_rsa(&n(3072, 0xff), &[0x03]));
        let mut short = n(2048, 0xff);
        short[0] = 0x01; // 2041 bits
        assert!(!usable_rsa(&short, &e));
        assert!(!usable_rsa(&n(8192, 0xff), &e), "too long");
        assert!(!usable_rsa(&n(2048, 0xfe), &e), "even modulus");
        assert!(!usable_rsa(&n(2048, 0xff), &[0x01]), "e = 1");
        assert!(
            !usable_rsa(&n(2048, 0xff), &[0x01, 0x00, 0x00]),
            "even exponent"
        );
        assert!(!usable_rsa(&n(2048, 0xff), &[0xff; 300]), "huge exponent");
        assert!(!usable_rsa(&[], &e));
    }
    use super::*;
    use serde_json::json;

    #[test]
    fn jwks_with_private_members_or_no_usable_key_are_refused() {
        let ec = json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        assert!(parse_jwks(&json!({"keys": [ec.clone()]})).is_ok());
        let mut private = ec.clone();
        private["d"] = json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
        let e = parse_jwks(&json!({"keys": [private]})).unwrap_err();
        assert!(e.contains("\"d\""), "{e}");
        let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert!(parse_jwks(&json!({"keys": [oct]})).is_err());
        let p384 = json!({"kty": "EC", "crv": "P-384", "x": "a", "y": "b"});
        assert!(parse_jwks(&json!({"keys": [p384]}))
            .unwrap_err()
            .contains("no usable"));
        assert!(parse_jwks(&json!({"keys": []})).is_err());
        let many: Vec<Value> = (0..=MAX_KEYS).map(|_| ec.clone()).collect();
        assert!(parse_jwks(&json!({"keys": many}))
            .unwrap_err()
            .contains("more than"));
        let mut padded = ec.clone();
        padded["kid"] = json!("k".repeat(MAX_JWKS_BYTES));
        assert!(parse_jwks(&json!({"keys": [padded]}))
            .unwrap_err()
            .contains("larger than"));
        assert!(parse_jwks(&json!([ec])).is_err());
        let mut enc = ec;
        enc["use"] = json!("enc");
        assert!(parse_jwks(&json!({"keys": [enc]})).is_err());
    }

    #[test]
    fn keys_of_the_wrong_size_or_off_their_curve_are_not_usable() {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let usable = |key: Value| parse_jwks(&json!({ "keys": [key] })).is_ok();
        // RFC 8037 §A.2's public key, and RFC 7515 §A.3's.
        let ed = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let okp = |x: &str| json!({"kty": "OKP", "crv": "Ed25519", "x": x});
        assert!(usable(okp(ed)));
        let ed_bytes = URL_SAFE_NO_PAD.decode(ed).unwrap();
        // Not a point of the curve: the first such value of this form.
        let off_curve = (0..=255u8)
            .map(|i| [i; 32])
            .find(|b| ed25519_dalek::VerifyingKey::from_bytes(b).is_err())
            .expect("a value off the curve");
        for x in [
            b64(&[0]),
            b64(&ed_bytes[..31]),
            b64(&[ed_bytes.as_slice(), &[0]].concat()),
            b64(&[ed_bytes.as_slice(), &ed_bytes].concat()),
            b64(&off_curve),
            // The identity, a point of small order.
            b64(&[[1].as_slice(), &[0; 31]].concat()),
            String::new(),
            "not base64url!".to_owned(),
        ] {
            assert!(!usable(okp(&x)), "Ed25519 x {x:?}");
        }
        let (x, y) = (
            "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        );
        let ec = |x: &str, y: &str| json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
        assert!(usable(ec(x, y)));
        let x_bytes = URL_SAFE_NO_PAD.decode(x).unwrap();
        let mut y_moved = URL_SAFE_NO_PAD.decode(y).unwrap();
        y_moved[31] ^= 1;
        for (x, y) in [
            (b64(&x_bytes[..31]), y.to_owned()),
            (x.to_owned(), b64(&[0])),
            (b64(&[&[0], x_bytes.as_slice()].concat()), y.to_owned()),
            (x.to_owned(), b64(&y_moved)),
            (b64(&[0; 32]), b64(&[0; 32])),
        ] {
            assert!(!usable(ec(&x, &y)), "P-256 ({x:?}, {y:?})");
        }
    }

    #[test]
    fn claimed_client_id_reads_sub_unverified() {
        let p = URL_SAFE_NO_PAD.encode(br#"{"sub":"c1","iss":"c1"}"#);
        assert_eq!(claimed_client_id(&format!("e30.{p}.sig")).unwrap(), "c1");
        assert!(claimed_client_id("abc").is_err());
        assert!(claimed_client_id("a.b.c.d").is_err());
        let no_sub = URL_SAFE_NO_PAD.encode(br#"{"iss":"c1"}"#);
        assert!(claimed_client_id(&format!("e30.{no_sub}.sig")).is_err());
    }

    #[test]
    fn claims_rules() {
        let aud = vec!["https://as.example".to_owned()];
        let expected = Expected {
            client_id: "c1",
            audiences: &aud,
        };
        let ok = json!({"iss": "c1", "sub": "c1", "aud": "https://as.example",
            "exp": 1060, "iat": 1000, "jti": "j1"});
        let check = |v: Value| check_claims(v.as_object().unwrap(), expected, 1000);
        assert_eq!(
            check(ok.clone()).unwrap(),
            VerifiedAssertion {
                jti: "j1".into(),
                expires_at: 1060
            }
        );
        for (k, v) in [
            ("iss", json!("c2")),
            ("sub", json!("c2")),
            ("aud", json!("https://other.example")),
            // Several audiences: any of them could present it here.
            (
                "aud",
                json!(["https://as.example", "https://other.example"]),
            ),
            (
                "aud",
                json!(["https://other.example", "https://as.example"]),
            ),
            ("aud", json!([])),
            ("aud", json!(["https://as.example", "https://as.example"])),
            ("aud", json!(1)),
            ("exp", json!(1000)),
            ("exp", json!(2000)),
            ("exp", json!("1060")),
            ("nbf", json!(1100)),
            ("iat", json!(1100)),
            ("jti", json!("")),
        ] {
            let mut c = ok.clone();
            c[k] = v;
            assert!(check(c).is_err(), "{k}");
        }
        // The issuer as the only member of a list is the issuer.
        let mut listed = ok.clone();
        listed["aud"] = json!(["https://as.example"]);
        assert!(check(listed).is_ok());
        for k in ["exp", "jti", "aud"] {
            let mut c = ok.clone();
            c.as_object_mut().unwrap().remove(k);
            assert!(check(c).is_err(), "{k}");
        }
    }
}
