//! Signing keys for access tokens: generation (the random number generator is a parameter),
//! the parsed key objects that sign and verify, their public JWK (RFC 7517, RFC 7518 §6), the
//! key id (the RFC 7638 thumbprint), and sealing of the private half for storage.
//!
//! A private key is parsed once, into a [`KeyPair`], when it is generated or loaded; signing
//! uses that object and never parses key material again. ES256 and EdDSA signatures are made
//! with `aws-lc-rs`, RS256 signatures and every verification with `ring` (the faster of the two
//! for each, measured by `oauth-bench`'s `signing` binary: BENCHMARKS.md); generation and the
//! PKCS#8 encoding of stored keys use the RustCrypto crates (`p256`, `ed25519-dalek`, `rsa`),
//! which also parse the stored forms.
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
use ring::signature::{
    UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256,
};
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
    #[error("signing failed: the system random number generator is unavailable")]
    Sign,
    #[error("the key-encryption key must be 32 bytes, base64-encoded")]
    BadEncryptionKey,
}

/// The 32-byte key that encrypts private signing keys at rest. Never printed.
#[derive(Clone)]
pub struct KeyEncryptionKey(Zeroizing<[u8; 32]>);

impl KeyEncryptionKey {
    /// A key for keyed digests, derived from this one for `purpose` ([`crate::secret::DigestKey`]):
    /// the same on every instance that shares this key.
    pub fn digest_key(&self, purpose: &str) -> crate::secret::DigestKey {
        crate::secret::DigestKey::derive(&self.0[..], purpose)
    }

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
                &Nonce::from(nonce),
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
        let nonce: [u8; 12] = raw[1..13].try_into().map_err(|_| KeyError::Unseal)?;
        let cipher = Aes256Gcm::new(self.0.as_ref().into());
        cipher
            .decrypt(
                &Nonce::from(nonce),
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

/// The object that signs. Built once from the private key; signing never parses key material.
/// AWS-LC signs P-256 about 7%, Ed25519 about 2.5 times and RSA-2048 about twice as fast as
/// ring on the machines this server is measured on (`oauth-bench`'s `signing` binary);
/// verification stays with ring, which is as fast there.
enum Signer {
    Es256(aws_lc_rs::signature::EcdsaKeyPair),
    Rs256(aws_lc_rs::signature::RsaKeyPair),
    EdDsa(aws_lc_rs::signature::Ed25519KeyPair),
}

/// The private key as its own crate holds it: PKCS#8 encoding, and the parser of the stored
/// forms, so that keys stored by earlier versions load exactly as before.
enum Source {
    Es256(p256::ecdsa::SigningKey),
    Rs256(Box<rsa::RsaPrivateKey>),
    EdDsa(ed25519_dalek::SigningKey),
}

/// The public JWK members (RFC 7518 §6), computed once.
#[derive(Clone)]
struct Members {
    kty: &'static str,
    crv: Option<&'static str>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// A parsed private key, ready to sign, with its id and public half.
pub struct KeyPair {
    signer: Signer,
    source: Source,
    /// AWS-LC draws ECDSA nonces and RSA blinding from its own generator; its API still asks
    /// for one.
    aws_rng: aws_lc_rs::rand::SystemRandom,
    public: PublicKey,
    /// The encoded protected header of this key's access tokens, built once.
    access_token_header: String,
}

/// A parsed public key, ready to verify.
#[derive(Clone)]
pub struct PublicKey {
    kid: String,
    alg: Algorithm,
    verifier: UnparsedPublicKey<Vec<u8>>,
    members: Members,
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
        let source = match alg {
            Algorithm::Es256 => Source::Es256(p256::ecdsa::SigningKey::random(rng)),
            Algorithm::EdDsa => Source::EdDsa(ed25519_dalek::SigningKey::generate(rng)),
            Algorithm::Rs256 => Source::Rs256(Box::new(
                rsa::RsaPrivateKey::new(rng, RSA_BITS)
                    .map_err(|e| KeyError::Generate(e.to_string()))?,
            )),
        };
        Self::from_source(source, None).map_err(|e| KeyError::Generate(e.to_string()))
    }

    /// A key loaded from storage: PKCS#8 DER of the private key, its algorithm and kid.
    pub fn from_pkcs8_der(alg: Algorithm, kid: &str, der: &[u8]) -> Result<Self, KeyError> {
        let source = match alg {
            Algorithm::Es256 => {
                use p256::pkcs8::DecodePrivateKey;
                Source::Es256(
                    p256::ecdsa::SigningKey::from_pkcs8_der(der)
                        .map_err(|_| KeyError::Decode(alg))?,
                )
            }
            Algorithm::EdDsa => {
                use ed25519_dalek::pkcs8::DecodePrivateKey;
                Source::EdDsa(
                    ed25519_dalek::SigningKey::from_pkcs8_der(der)
                        .map_err(|_| KeyError::Decode(alg))?,
                )
            }
            Algorithm::Rs256 => {
                use rsa::pkcs8::DecodePrivateKey;
                Source::Rs256(Box::new(
                    rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|_| KeyError::Decode(alg))?,
                ))
            }
        };
        Self::from_source(source, Some(kid.to_owned()))
    }

    /// Builds the signer (AWS-LC) and verifier (ring) from the raw key components (not from the
    /// stored PKCS#8, whose optional parts ring is stricter about), and the JWK members.
    fn from_source(source: Source, kid: Option<String>) -> Result<Self, KeyError> {
        let b64 = |b: &[u8]| Some(URL_SAFE_NO_PAD.encode(b));
        let (alg, signer, public_bytes, members) = match &source {
            Source::Es256(k) => {
                let alg = Algorithm::Es256;
                let point = k.verifying_key().to_encoded_point(false);
                let signer = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_and_public_key(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &k.to_bytes(),
                    point.as_bytes(),
                )
                .map_err(|_| KeyError::Decode(alg))?;
                let members = Members {
                    kty: "EC",
                    crv: Some("P-256"),
                    x: point.x().and_then(|x| b64(x)),
                    y: point.y().and_then(|y| b64(y)),
                    n: None,
                    e: None,
                };
                (
                    alg,
                    Signer::Es256(signer),
                    point.as_bytes().to_vec(),
                    members,
                )
            }
            Source::EdDsa(k) => {
                let alg = Algorithm::EdDsa;
                let public = k.verifying_key().to_bytes();
                let seed = Zeroizing::new(k.to_bytes());
                let signer = aws_lc_rs::signature::Ed25519KeyPair::from_seed_and_public_key(
                    seed.as_ref(),
                    &public,
                )
                .map_err(|_| KeyError::Decode(alg))?;
                let members = Members {
                    kty: "OKP",
                    crv: Some("Ed25519"),
                    x: b64(&public),
                    y: None,
                    n: None,
                    e: None,
                };
                (alg, Signer::EdDsa(signer), public.to_vec(), members)
            }
            Source::Rs256(k) => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                use rsa::traits::PublicKeyParts;
                let alg = Algorithm::Rs256;
                let pkcs1 = k.to_pkcs1_der().map_err(|_| KeyError::Decode(alg))?;
                let signer = aws_lc_rs::signature::RsaKeyPair::from_der(pkcs1.as_bytes())
                    .map_err(|_| KeyError::Decode(alg))?;
                // RFC 8017 `RSAPublicKey` DER, as ring's verifier takes it.
                let public = aws_lc_rs::signature::KeyPair::public_key(&signer)
                    .as_ref()
                    .to_vec();
                let members = Members {
                    kty: "RSA",
                    crv: None,
                    x: None,
                    y: None,
                    n: b64(&k.n().to_bytes_be()),
                    e: b64(&k.e().to_bytes_be()),
                };
                (alg, Signer::Rs256(signer), public, members)
            }
        };
        let verification: &'static dyn ring::signature::VerificationAlgorithm = match alg {
            Algorithm::Es256 => &ECDSA_P256_SHA256_FIXED,
            Algorithm::EdDsa => &ED25519,
            Algorithm::Rs256 => &RSA_PKCS1_2048_8192_SHA256,
        };
        let mut public = PublicKey {
            kid: String::new(),
            alg,
            verifier: UnparsedPublicKey::new(verification, public_bytes),
            members,
        };
        public.kid = kid.unwrap_or_else(|| public.thumbprint());
        let access_token_header = crate::jwt::encoded_access_token_header(&public);
        Ok(Self {
            signer,
            source,
            aws_rng: aws_lc_rs::rand::SystemRandom::new(),
            public,
            access_token_header,
        })
    }

    /// The same key under another id (for tests that forge a token claiming a known kid).
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.public.kid = kid.to_owned();
        self.access_token_header = crate::jwt::encoded_access_token_header(&self.public);
        self
    }

    /// The base64url protected header of an access token signed with this key (see
    /// [`crate::jwt::encode_access_token`]).
    pub fn access_token_header(&self) -> &str {
        &self.access_token_header
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
        let doc = match &self.source {
            Source::Es256(k) => {
                use p256::pkcs8::EncodePrivateKey;
                k.to_pkcs8_der()
            }
            Source::EdDsa(k) => {
                use ed25519_dalek::pkcs8::EncodePrivateKey;
                k.to_pkcs8_der()
            }
            Source::Rs256(k) => {
                use rsa::pkcs8::EncodePrivateKey;
                k.to_pkcs8_der()
            }
        }
        .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The JWS signature of `message` (RFC 7515 §5.1), raw bytes: `r || s` for ES256
    /// (RFC 7518 §3.4), PKCS #1 v1.5 for RS256, Ed25519 for EdDSA. Fails only when the
    /// operating system's random number generator does (ECDSA nonces, RSA blinding).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.signer {
            Signer::Es256(k) => k
                .sign(&self.aws_rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Sign),
            Signer::EdDsa(k) => k
                .try_sign(message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Sign),
            Signer::Rs256(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &self.aws_rng,
                    message,
                    &mut sig,
                )
                .map_err(|_| KeyError::Sign)?;
                Ok(sig)
            }
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
        self.verifier.verify(message, signature).is_ok()
    }

    /// The public JWK with `kid`, `alg` and `use: sig`.
    pub fn to_jwk(&self) -> Jwk {
        let m = &self.members;
        Jwk {
            kid: Some(self.kid.clone()),
            kty: m.kty.to_owned(),
            alg: Some(self.alg.as_str().to_owned()),
            use_: Some("sig".to_owned()),
            crv: m.crv.map(str::to_owned),
            x: m.x.clone(),
            y: m.y.clone(),
            n: m.n.clone(),
            e: m.e.clone(),
        }
    }

    /// The RFC 7638 §3 thumbprint: SHA-256 of the required members in lexicographic order,
    /// base64url.
    pub fn thumbprint(&self) -> String {
        let m = &self.members;
        let s = |o: &Option<String>| o.clone().unwrap_or_default();
        let json = match m.kty {
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                m.crv.unwrap_or_default(),
                s(&m.x),
                s(&m.y)
            ),
            "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s(&m.e), s(&m.n)),
            _ => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                m.crv.unwrap_or_default(),
                s(&m.x)
            ),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
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
            let sig = k.sign(b"hello").unwrap();
            assert!(k.public_key().verify(b"hello", &sig), "{alg}");
            assert!(!k.public_key().verify(b"hellp", &sig), "{alg}");
            let der = k.to_pkcs8_der().unwrap();
            let back = KeyPair::from_pkcs8_der(alg, k.kid(), &der).unwrap();
            assert_eq!(back.kid(), k.kid());
            assert!(back.public_key().verify(b"hello", &sig));
            assert_eq!(back.public_key().to_jwk(), k.public_key().to_jwk());
            assert_eq!(k.kid(), k.public_key().thumbprint());
            let jwk = k.public_key().to_jwk();
            assert_eq!(jwk.alg.as_deref(), Some(alg.as_str()));
            assert_eq!(jwk.use_.as_deref(), Some("sig"));
        }
    }

    /// Keys stored in the minimal PKCS#8 forms (no public key inside: ECPrivateKey without
    /// `publicKey`, Ed25519 PKCS#8 v1) load, sign and keep their JWK.
    #[test]
    fn minimal_pkcs8_forms_load() {
        let mut rng = StdRng::seed_from_u64(4);
        let ec = KeyPair::generate(Algorithm::Es256, &mut rng).unwrap();
        let Source::Es256(d) = &ec.source else {
            unreachable!()
        };
        let mut der =
            hex_bytes("3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420");
        der.extend_from_slice(&d.to_bytes());
        let ed = KeyPair::generate(Algorithm::EdDsa, &mut rng).unwrap();
        let Source::EdDsa(seed) = &ed.source else {
            unreachable!()
        };
        let mut ed_der = hex_bytes("302e020100300506032b657004220420");
        ed_der.extend_from_slice(&seed.to_bytes());
        for (orig, der) in [(&ec, der), (&ed, ed_der)] {
            assert_ne!(der.as_slice(), orig.to_pkcs8_der().unwrap().as_slice());
            let back = KeyPair::from_pkcs8_der(orig.alg(), orig.kid(), &der).unwrap();
            assert_eq!(back.public_key().to_jwk(), orig.public_key().to_jwk());
            assert_eq!(back.public_key().thumbprint(), orig.kid());
            let sig = back.sign(b"m").unwrap();
            assert!(orig.public_key().verify(b"m", &sig));
        }
        assert_eq!(
            KeyPair::from_pkcs8_der(Algorithm::Es256, "k", &hex_bytes("3000")).unwrap_err(),
            KeyError::Decode(Algorithm::Es256)
        );
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
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
