//! A pace for log lines that anyone can cause at the request rate.
//!
//! A request with a made-up API key or access token is refused without spending a failure
//! budget (and a revocation of another client's token is answered 200, RFC 7009) (such a key cannot be guessed, and a budget would lock out everyone behind the same
//! address along with a client that kept a revoked key), so the request-rate limits are all that
//! bound it: at one log line each, one address could write gigabytes a day on every instance.
//! Lines of one kind are logged at most [`LINES_PER_WINDOW`] in each [`WINDOW_SECS`] seconds;
//! the next line logged says how many were left out before it (`not_logged`).

use std::sync::Mutex;

use oauth_core::UnixSeconds;

/// Seconds of one window.
pub const WINDOW_SECS: i64 = 10;
/// Lines of one kind logged in one window.
pub const LINES_PER_WINDOW: u32 = 10;

/// The pace of one kind of line.
#[derive(Debug, Default)]
pub struct LogPace(Mutex<Window>);

#[derive(Debug, Default)]
struct Window {
    started: UnixSeconds,
    logged: u32,
    /// Lines left out since the last one logged.
    not_logged: u64,
}

impl LogPace {
    /// Whether to log a line at `now`: `Some(n)`, where `n` lines were left out since the last
    /// one logged, or `None` to leave this one out.
    pub fn admit(&self, now: UnixSeconds) -> Option<u64> {
        let mut w = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if now >= w.started + WINDOW_SECS || now < w.started {
            w.started = now;
            w.logged = 0;
        }
        if w.logged >= LINES_PER_WINDOW {
            w.not_logged += 1;
            return None;
        }
        w.logged += 1;
        Some(std::mem::take(&mut w.not_logged))
    }
}

/// The paced lines of one server.
#[derive(Debug, Default)]
pub struct LogPaces {
    /// "rejected API key": a bearer credential shaped as an API key that is unknown or revoked.
    pub rejected_api_key: LogPace,
    /// "rejected access token": a bearer JWT that is not an active access token of this server.
    pub rejected_access_token: LogPace,
    /// "revocation of another client's (refresh) token ignored": a client, public ones too
    /// (registered openly, with nothing to authenticate), naming any token it holds a copy of
    /// at the revocation endpoint, at its request budget's pace (RFC 7009 answers it 200).
    pub foreign_revocation: LogPace,
}

impl LogPaces {
    /// The line of an API key that is unknown or revoked, at its pace: by its hash label, never
    /// the key.
    pub fn api_key_rejected(&self, key: &str, now: UnixSeconds) {
        if let Some(not_logged) = self.rejected_api_key.admit(now) {
            tracing::info!(key = %oauth_core::secret::log_label(key), not_logged, "rejected API key");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_logs_a_few_lines_and_the_next_says_how_many_were_left_out() {
        let pace = LogPace::default();
        let t = 1_900_000_000;
        let admitted: Vec<_> = (0..25).map(|_| pace.admit(t)).collect();
        assert_eq!(admitted[0], Some(0));
        assert!(admitted[..LINES_PER_WINDOW as usize]
            .iter()
            .all(|a| *a == Some(0)));
        assert!(admitted[LINES_PER_WINDOW as usize..]
            .iter()
            .all(Option::is_none));
        // Later in the same window: still left out.
        assert_eq!(pace.admit(t + WINDOW_SECS - 1), None);
        // The next window: the first line counts the 16 left out.
        assert_eq!(pace.admit(t + WINDOW_SECS), Some(16));
        assert_eq!(pace.admit(t + WINDOW_SECS), Some(0));
        // A clock that goes back starts a window too.
        for _ in 2..LINES_PER_WINDOW {
            pace.admit(t + WINDOW_SECS);
        }
        assert_eq!(pace.admit(t + WINDOW_SECS), None);
        assert_eq!(pace.admit(t), Some(1));
    }
}
