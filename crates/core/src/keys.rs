//! Signing keys for access tokens: generation (the random number generator is a parameter),
//! the parsed key objects that sign and verify, their public JWK (RFC 7517, RFC 7518 §6), the
//! key id (the RFC 7638 thumbprint), and sealing of the private half for storage.
//!
//! A private key is parsed once, into a [`KeyPair`], when it is generated or loaded; signing
//! uses that object and never parses key material again.
//!
//! Sealing: the PKCS#8 DER of the private key is encrypted with AES-256-GCM under the
//! key-encryption key, with the key id as associated data, so that a sealed key moved to another
//! row (another kid) fails to open.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use oauth_wire::Jwk;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// RSA modulus size for generated RS256 keys.
pub const RSA_BITS: usize = 2048;

/// The JWS algorithms (RFC 7518 §3.1, RFC 8037 §3.1) this server signs access tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Es256,
    Rs256,
    EdDsa,
}

impl Algorithm {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// Exactly the `alg` names above (case-sensitive, as RFC 7515 §4.1.1 requires).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(Algorithm::Es256),
            "RS256" => Some(Algorithm::Rs256),
            "EdDSA" => Some(Algorithm::EdDsa),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can go wrong with key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("the private key cannot be encoded: {0}")]
    Encode(String),
    #[error("the stored private key is not a valid {0} key")]
    Decode(Algorithm),
    #[error(
        "the sealed private key cannot be opened: wrong key-encryption key, or the row was altered"
    )]
    Unseal,
    #[error("the key-encryption key must be 32 bytes, base64-encoded")]
    BadEncryptionKey,
}

/// The 32-byte key that encrypts private signing keys at rest. Never printed.
#[derive(Clone)]
pub struct KeyEncryptionKey(Zeroizing<[u8; 32]>);

impl KeyEncryptionKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Standard base64 (padding optional) of exactly 32 bytes; surrounding whitespace ignored.
    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        let s = s.trim().trim_end_matches('=');
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(s)
            .map_err(|_| KeyError::BadEncryptionKey)?;
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::BadEncryptionKey)?;
        Ok(Self::from_bytes(arr))
    }

    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.as_ref())
    }

    /// Encrypts `plaintext`, bound to `kid`. Output: version byte 1, 12-byte nonce, ciphertext
    /// with tag; standard base64.
    pub fn seal<R: RngCore + CryptoRng>(
        &self,
        kid: &str,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<String, KeyError> {
        let cipher = Aes256Gcm::new(self.0.as_ref().into());
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Encode("encryption failed".into()))?;
        let mut out = Vec::with_capacity(1 + nonce.len() + ct.len());
        out.push(1u8);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(STANDARD.encode(out))
    }

    /// Reverses [`KeyEncryptionKey::seal`]; fails unless the kid and the key are the same.
    pub fn open(&self, kid: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let raw = STANDARD.decode(sealed).map_err(|_| KeyError::Unseal)?;
        if raw.len() < 1 + 12 + 16 || raw[0] != 1 {
            return Err(KeyError::Unseal);
        }
        let cipher = Aes256Gcm::new(self.0.as_ref().into());
        cipher
            .decrypt(
                Nonce::from_slice(&raw[1..13]),
                Payload {
                    msg: &raw[13..],
                    aad: kid.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Unseal)
    }
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(<redacted>)")
    }
}

enum Signer {
    Es256(p256::ecdsa::SigningKey),
    Rs256(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    EdDsa(ed25519_dalek::SigningKey),
}

#[derive(Clone)]
enum Verifier {
    Es256(p256::ecdsa::VerifyingKey),
    Rs256(Box<rsa::pkcs1v15::VerifyingKey<Sha256>>),
    EdDsa(ed25519_dalek::VerifyingKey),
}

/// A parsed private key, ready to sign, with its id and public half.
pub struct KeyPair {
    signer: Signer,
    public: PublicKey,
}

/// A parsed public key, ready to verify.
#[derive(Clone)]
pub struct PublicKey {
    kid: String,
    alg: Algorithm,
    verifier: Verifier,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("kid", &self.public.kid)
            .field("alg", &self.public.alg)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A fresh key. Its kid is the RFC 7638 thumbprint of its public JWK.
    pub fn generate<R: RngCore + CryptoRng>(alg: Algorithm, rng: &mut R) -> Result<Self, KeyError> {
        let signer = match alg {
            Algorithm::Es256 => Signer::Es256(p256::ecdsa::SigningKey::random(rng)),
            Algorithm::EdDsa => Signer::EdDsa(ed25519_dalek::SigningKey::generate(rng)),
            Algorithm::Rs256 => {
                let key = rsa::RsaPrivateKey::new(rng, RSA_BITS)
                    .map_err(|e| KeyError::Generate(e.to_string()))?;
                Signer::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(key)))
            }
        };
        Ok(Self::from_signer(signer, None))
    }

    /// A key loaded from storage: PKCS#8 DER of the private key, its algorithm and kid.
    pub fn from_pkcs8_der(alg: Algorithm, kid: &str, der: &[u8]) -> Result<Self, KeyError> {
        let signer = match alg {
            Algorithm::Es256 => {
                use p256::pkcs8::DecodePrivateKey;
                Signer::Es256(
                    p256::ecdsa::SigningKey::from_pkcs8_der(der)
                        .map_err(|_| KeyError::Decode(alg))?,
                )
            }
            Algorithm::EdDsa => {
                use ed25519_dalek::pkcs8::DecodePrivateKey;
                Signer::EdDsa(
                    ed25519_dalek::SigningKey::from_pkcs8_der(der)
                        .map_err(|_| KeyError::Decode(alg))?,
                )
            }
            Algorithm::Rs256 => {
                use rsa::pkcs8::DecodePrivateKey;
                let key =
                    rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|_| KeyError::Decode(alg))?;
                Signer::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(key)))
            }
        };
        Ok(Self::from_signer(signer, Some(kid.to_owned())))
    }

    fn from_signer(signer: Signer, kid: Option<String>) -> Self {
        let (alg, verifier) = match &signer {
            Signer::Es256(k) => (Algorithm::Es256, Verifier::Es256(*k.verifying_key())),
            Signer::EdDsa(k) => (Algorithm::EdDsa, Verifier::EdDsa(k.verifying_key())),
            Signer::Rs256(k) => {
                use rsa::signature::Keypair;
                (
                    Algorithm::Rs256,
                    Verifier::Rs256(Box::new(k.verifying_key())),
                )
            }
        };
        let mut public = PublicKey {
            kid: String::new(),
            alg,
            verifier,
        };
        public.kid = kid.unwrap_or_else(|| public.thumbprint());
        Self { signer, public }
    }

    /// The same key under another id (for tests that forge a token claiming a known kid).
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.public.kid = kid.to_owned();
        self
    }

    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    pub fn alg(&self) -> Algorithm {
        self.public.alg
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// PKCS#8 DER of the private key, for sealing.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = match &self.signer {
            Signer::Es256(k) => {
                use p256::pkcs8::EncodePrivateKey;
                k.to_pkcs8_der()
            }
            Signer::EdDsa(k) => {
                use ed25519_dalek::pkcs8::EncodePrivateKey;
                k.to_pkcs8_der()
            }
            Signer::Rs256(k) => {
                use rsa::pkcs8::EncodePrivateKey;
                let inner: &rsa::RsaPrivateKey = k.as_ref().as_ref();
                inner.to_pkcs8_der()
            }
        }
        .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The JWS signature of `message` (RFC 7515 §5.1), raw bytes: `r || s` for ES256
    /// (RFC 7518 §3.4), PKCS #1 v1.5 for RS256, Ed25519 for EdDSA. RS256 uses `rng` for blinding.
    pub fn sign<R: RngCore + CryptoRng>(&self, message: &[u8], rng: &mut R) -> Vec<u8> {
        use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer as _};
        match &self.signer {
            Signer::Es256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_bytes().to_vec()
            }
            Signer::EdDsa(k) => k.sign(message).to_bytes().to_vec(),
            Signer::Rs256(k) => k.sign_with_rng(rng, message).to_vec(),
        }
    }
}

impl PublicKey {
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// Does `signature` sign `message` under this key? Signatures of the wrong length or form
    /// are simply invalid.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use rsa::signature::Verifier as _;
        match &self.verifier {
            Verifier::Es256(k) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| k.verify(message, &s).is_ok()),
            Verifier::EdDsa(k) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| k.verify_strict(message, &s).is_ok()),
            Verifier::Rs256(k) => rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|s| k.verify(message, &s).is_ok()),
        }
    }

    /// The public JWK with `kid`, `alg` and `use: sig`.
    pub fn to_jwk(&self) -> Jwk {
        let (kty, crv, x, y, n, e) = self.members();
        Jwk {
            kid: self.kid.clone(),
            kty: kty.to_owned(),
            alg: self.alg.as_str().to_owned(),
            use_: "sig".to_owned(),
            crv: crv.map(str::to_owned),
            x,
            y,
            n,
            e,
        }
    }

    /// The RFC 7638 §3 thumbprint: SHA-256 of the required members in lexicographic order,
    /// base64url.
    pub fn thumbprint(&self) -> String {
        let (kty, crv, x, y, n, e) = self.members();
        let s = |o: &Option<String>| o.clone().unwrap_or_default();
        let json = match kty {
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                crv.unwrap_or_default(),
                s(&x),
                s(&y)
            ),
            "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s(&e), s(&n)),
            _ => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                crv.unwrap_or_default(),
                s(&x)
            ),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
    }

    #[allow(clippy::type_complexity)]
    fn members(
        &self,
    ) -> (
        &'static str,
        Option<&'static str>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) {
        let b64 = |b: &[u8]| Some(URL_SAFE_NO_PAD.encode(b));
        match &self.verifier {
            Verifier::Es256(k) => {
                let point = k.to_encoded_point(false);
                (
                    "EC",
                    Some("P-256"),
                    point.x().and_then(|x| b64(x)),
                    point.y().and_then(|y| b64(y)),
                    None,
                    None,
                )
            }
            Verifier::EdDsa(k) => ("OKP", Some("Ed25519"), b64(k.as_bytes()), None, None, None),
            Verifier::Rs256(k) => {
                use rsa::traits::PublicKeyParts;
                let public: &rsa::RsaPublicKey = k.as_ref().as_ref();
                (
                    "RSA",
                    None,
                    None,
                    None,
                    b64(&public.n().to_bytes_be()),
                    b64(&public.e().to_bytes_be()),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn every_algorithm_signs_verifies_and_round_trips_through_pkcs8() {
        let mut rng = StdRng::seed_from_u64(1);
        for alg in [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256] {
            let k = KeyPair::generate(alg, &mut rng).unwrap();
            let sig = k.sign(b"hello", &mut rng);
            assert!(k.public_key().verify(b"hello", &sig), "{alg}");
            assert!(!k.public_key().verify(b"hellp", &sig), "{alg}");
            let der = k.to_pkcs8_der().unwrap();
            let back = KeyPair::from_pkcs8_der(alg, k.kid(), &der).unwrap();
            assert_eq!(back.kid(), k.kid());
            assert!(back.public_key().verify(b"hello", &sig));
            assert_eq!(back.public_key().to_jwk(), k.public_key().to_jwk());
            assert_eq!(k.kid(), k.public_key().thumbprint());
            let jwk = k.public_key().to_jwk();
            assert_eq!(jwk.alg, alg.as_str());
            assert_eq!(jwk.use_, "sig");
        }
    }

    #[test]
    fn jwk_members_match_the_key_type() {
        let mut rng = StdRng::seed_from_u64(2);
        let ec = KeyPair::generate(Algorithm::Es256, &mut rng).unwrap();
        let jwk = ec.public_key().to_jwk();
        assert_eq!(
            (jwk.kty.as_str(), jwk.crv.as_deref()),
            ("EC", Some("P-256"))
        );
        assert_eq!(jwk.x.as_ref().map(String::len), Some(43));
        assert_eq!(jwk.y.as_ref().map(String::len), Some(43));
        let ed = KeyPair::generate(Algorithm::EdDsa, &mut rng).unwrap();
        let jwk = ed.public_key().to_jwk();
        assert_eq!(
            (jwk.kty.as_str(), jwk.crv.as_deref()),
            ("OKP", Some("Ed25519"))
        );
        assert!(jwk.y.is_none() && jwk.n.is_none());
    }

    #[test]
    fn sealing_binds_the_kid_and_the_key() {
        let mut rng = StdRng::seed_from_u64(3);
        let kek = KeyEncryptionKey::generate(&mut rng);
        let sealed = kek.seal("kid-1", b"secret", &mut rng).unwrap();
        assert_eq!(kek.open("kid-1", &sealed).unwrap().as_slice(), b"secret");
        assert_eq!(kek.open("kid-2", &sealed), Err(KeyError::Unseal));
        let other = KeyEncryptionKey::generate(&mut rng);
        assert_eq!(other.open("kid-1", &sealed), Err(KeyError::Unseal));
        assert_eq!(kek.open("kid-1", "AAAA"), Err(KeyError::Unseal));
        let again = KeyEncryptionKey::from_base64(&kek.to_base64()).unwrap();
        assert_eq!(again.open("kid-1", &sealed).unwrap().as_slice(), b"secret");
        assert!(KeyEncryptionKey::from_base64("c2hvcnQ=").is_err());
        assert!(!format!("{kek:?}").contains(&kek.to_base64()));
    }

    #[test]
    fn algorithm_names_are_exact() {
        assert_eq!(Algorithm::parse("ES256"), Some(Algorithm::Es256));
        assert_eq!(Algorithm::parse("es256"), None);
        assert_eq!(Algorithm::parse("none"), None);
        assert_eq!(Algorithm::parse("HS256"), None);
    }
}
