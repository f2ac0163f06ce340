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
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use tokio::sync::Semaphore;

use crate::accounts::hash_password;

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
        let dummy_hash = tokio::task::spawn_blocking(|| hash_password("not a real password"))
            .await
            .context("hashing the dummy password")??;
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
            let verified = PasswordHash::new(hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            });
            if verified && real {
                Verdict::Correct
            } else {
                Verdict::Wrong
            }
        })
        .await
    }
}
