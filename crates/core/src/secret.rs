//! Secrets: client secrets, API keys and (later) codes and tokens are random strings with at
//! least 256 bits of entropy, stored only as SHA-256 hashes and compared in constant time.
//!
//! A password hash (argon2) is for low-entropy human passwords; a 256-bit random secret cannot be
//! guessed, so a fast hash loses nothing and keeps the token endpoint fast.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every API key, as Telnyx keys have.
pub const API_KEY_PREFIX: &str = "KEY";

/// 32 random bytes, base64url without padding (43 characters).
pub fn random_token<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new API key: `KEY` followed by 256 random bits.
pub fn new_api_key<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    format!("{API_KEY_PREFIX}{}", random_token(rng))
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex_encode(&Sha256::digest(secret.as_bytes()))
}

/// A key for keyed digests (HMAC-SHA256): a value stored under its digest can be guessed offline
/// only by whoever holds the key, unlike a plain SHA-256 of a short or guessable value (an email
/// address, or a password typed into the wrong field).
pub struct DigestKey(ring::hmac::Key);

impl DigestKey {
    /// The key for `purpose` derived from `secret` (HMAC-SHA256 of the purpose): every holder of
    /// the same secret derives the same key, and one purpose's digests say nothing of another's.
    pub fn derive(secret: &[u8], purpose: &str) -> Self {
        let master = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let derived = ring::hmac::sign(&master, purpose.as_bytes());
        Self(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            derived.as_ref(),
        ))
    }

    /// The keyed digest of `text`, lowercase hex.
    pub fn digest(&self, text: &str) -> String {
        hex_encode(ring::hmac::sign(&self.0, text.as_bytes()).as_ref())
    }
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestKey([redacted])")
    }
}

/// Does `presented` hash to `stored_hash`? Constant time in the hash comparison.
pub fn verify_secret(presented: &str, stored_hash: &str) -> bool {
    let computed = hash_secret(presented);
    computed.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// A short, non-reversible label for logs: the first 8 hex digits of the hash.
pub fn log_label(secret: &str) -> String {
    hash_secret(secret)[..8].to_owned()
}

fn hex_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0x0f) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn tokens_are_long_and_distinct() {
        let mut rng = StdRng::seed_from_u64(7);
        let a = random_token(&mut rng);
        let b = random_token(&mut rng);
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        let k = new_api_key(&mut rng);
        assert!(k.starts_with("KEY"));
        assert_eq!(k.len(), 46);
    }

    #[test]
    fn hashing_and_verification() {
        let h = hash_secret("abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(verify_secret("abc", &h));
        assert!(!verify_secret("abd", &h));
        assert!(!verify_secret("abc", "short"));
        assert_eq!(log_label("abc"), "ba7816bf");
    }

    /// A keyed digest depends on the secret, the purpose and the text, and is not the plain
    /// SHA-256 anyone could compute.
    #[test]
    fn keyed_digests_need_the_key() {
        let a = DigestKey::derive(&[7; 32], "logins");
        let d = a.digest("alice@example.com");
        assert_eq!(d.len(), 64);
        assert!(d
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(
            d,
            DigestKey::derive(&[7; 32], "logins").digest("alice@example.com")
        );
        assert_ne!(d, hash_secret("alice@example.com"));
        assert_ne!(
            d,
            DigestKey::derive(&[8; 32], "logins").digest("alice@example.com")
        );
        assert_ne!(
            d,
            DigestKey::derive(&[7; 32], "other").digest("alice@example.com")
        );
        assert_ne!(d, a.digest("bob@example.com"));
        assert_eq!(format!("{a:?}"), "DigestKey([redacted])");
    }
}
