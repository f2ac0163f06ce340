//! Password checks for the sign-in form: argon2id verification on blocking threads, a bounded
//! number at once.
//!
//! An argon2id verification costs tens of milliseconds of CPU and 19 MiB of memory on purpose, so
//! a burst of sign-ins could take every core and the blocking pool. At most
//! `authorization.max_concurrent_password_checks` run at once; a request that cannot start its
//! check within `authorization.password_check_wait_ms` is told to come back (503) without any
//! check.
//!
//! An unknown email verifies a dummy hash, so that its answer takes as long as a wrong
//! password's. The dummy is hashed when the server starts (with the parameters of every stored
//! hash), so the first unknown email is no faster than the others.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::{self, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use tokio::sync::Semaphore;

/// The answer of a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password matches the stored hash.
    Correct,
    /// It does not, or there was no stored hash (an unknown email).
    Wrong,
    /// No check could start within the wait; nothing was verified.
    Busy,
}

/// The bounded password checks of one server.
#[derive(Debug)]
pub struct PasswordChecks {
    permits: Arc<Semaphore>,
    wait: Duration,
    dummy_hash: Arc<str>,
}

impl PasswordChecks {
    /// At most `max_concurrent` checks at once, each waiting at most `wait` to start. Hashes the
    /// dummy password (on a blocking thread).
    pub async fn new(max_concurrent: usize, wait: Duration) -> anyhow::Result<Self> {
        let dummy_hash = tokio::task::spawn_blocking(|| hash("not a real password"))
            .await
            .context("hashing the dummy password")?
            .map_err(|e| anyhow::anyhow!("hashing the dummy password: {e}"))?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            wait,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// The argon2id hash an unknown email is checked against.
    pub fn dummy_hash(&self) -> &str {
        &self.dummy_hash
    }

    /// Checks `password` against `stored` (the dummy hash when `None`, which is never
    /// [`Verdict::Correct`]).
    pub async fn check(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<Verdict, tokio::task::JoinError> {
        let permit =
            match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                // Timed out (or the semaphore closed, which it never is).
                _ => return Ok(Verdict::Busy),
            };
        let dummy = self.dummy_hash.clone();
        tokio::task::spawn_blocking(move || {
            // Held until the verification ends, even if the request is gone by then.
            let _permit = permit;
            let (hash, real) = match &stored {
                Some(h) => (h.as_str(), true),
                None => (&*dummy, false),
            };
            let verified = verify(password.as_bytes(), hash);
            if verified && real {
                Verdict::Correct
            } else {
                Verdict::Wrong
            }
        })
        .await
    }
}

/// argon2id's working memory is allocated with a capacity of at least this much, which is above
/// the largest threshold glibc's allocator ever moves its mmap threshold to (32 MiB on 64-bit
/// targets). So each check's memory (19 MiB with the default parameters) is a mapping of its
/// own, returned to the system when the check ends. Allocated the way argon2 allocates it, it
/// raises that threshold once freed, the next check's memory then comes from the heap, and the
/// heap keeps it: the server idled at 31 MiB instead of 12 after its first password check.
/// The pages beyond the blocks used are never touched, so they cost address space, not memory.
const WORKING_MEMORY_CAPACITY: usize = 33 * 1024 * 1024;

/// Zeroed memory for `blocks` argon2 blocks (see [`WORKING_MEMORY_CAPACITY`]).
fn working_memory(blocks: usize) -> Vec<Block> {
    let mut memory = Vec::with_capacity(blocks.max(WORKING_MEMORY_CAPACITY / Block::SIZE));
    memory.resize(blocks, Block::default());
    memory
}

/// The argon2id PHC string of `password` with a fresh salt and the default parameters.
pub fn hash(password: &str) -> password_hash::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            working_memory(params.block_count()),
        )?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out)?),
    };
    Ok(phc.to_string())
}

/// Does `password` match the PHC string `stored` (any argon2 variant, version and parameters
/// it names)? The digests are compared in constant time (`Output`'s equality).
pub fn verify(password: &[u8], stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password,
        salt_bytes,
        &mut out,
        working_memory(params.block_count()),
    );
    hashed.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hashes_are_what_the_argon2_crate_makes_and_accepts() {
        let ours = hash("correct horse").unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
        // And the crate's own hashes, with other parameters too, are checked here.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(verify(b"battery staple", &theirs));
        assert!(!verify(b"battery stapler", &theirs));
        let small = Params::new(1024, 3, 2, Some(16)).unwrap();
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x10, small)
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(verify(b"pw", &argon2i));
        assert!(!verify(b"pW", &argon2i));
    }

    #[test]
    fn malformed_stored_hashes_match_nothing() {
        let good = hash("pw").unwrap();
        let no_hash = good.rsplit_once('$').unwrap().0.to_owned();
        for stored in [
            "",
            "plain",
            "$argon2id$v=19$m=19456,t=2,p=1",
            &no_hash,
            "$scrypt$ln=1$c2FsdA$aGFzaA",
        ] {
            assert!(!verify(b"pw", stored), "{stored}");
        }
        assert!(verify(b"pw", &good));
    }

    #[test]
    fn working_memory_is_zeroed_and_sized_to_the_blocks() {
        let m = working_memory(8);
        assert_eq!(m.len(), 8);
        assert!(m.capacity() * Block::SIZE >= WORKING_MEMORY_CAPACITY);
        assert!(m.iter().all(|b| b.as_ref().iter().all(|w| *w == 0)));
    }
}
