//! Which sign-in lockouts have had their `login.locked` event stored in this failure window
//! (docs/audit.md, "Bounded writes").

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Which lockouts have had their `login.locked` event stored, so that a locked key stores one
/// per failure window and not one per refused attempt: someone who keeps knocking at a locked
/// account (60 tries a minute within `login_per_ip`) would otherwise add a row for each, for as
/// long as they like. The later ones are logged, not stored. Per instance, and bounded: past
/// [`MOST_LOCKOUTS_REMEMBERED`] keys whose windows are still open, an event is logged only.
#[derive(Default)]
pub struct LockoutEvents {
    until: Mutex<HashMap<String, i64>>,
}

/// The most locked keys [`LockoutEvents`] remembers at once.
pub const MOST_LOCKOUTS_REMEMBERED: usize = 10_000;

impl LockoutEvents {
    /// Whether the event of an attempt refused under `key` at `now` is the first of its window
    /// (`window` seconds long) here, and so is stored.
    pub fn first(&self, key: &str, now: i64, window: i64) -> bool {
        let mut until = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        if until.get(key).is_some_and(|u| *u > now) {
            return false;
        }
        if until.len() >= MOST_LOCKOUTS_REMEMBERED {
            until.retain(|_, u| *u > now);
            if until.len() >= MOST_LOCKOUTS_REMEMBERED {
                return false;
            }
        }
        until.insert(key.to_owned(), now.saturating_add(window));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lockout_is_stored_once_per_key_and_window_and_memory_is_bounded() {
        let seen = LockoutEvents::default();
        assert!(seen.first("account:a", 100, 900));
        assert!(!seen.first("account:a", 101, 900));
        assert!(!seen.first("account:a", 999, 900));
        assert!(seen.first("ip:192.0.2.1", 101, 900), "another key");
        assert!(seen.first("account:a", 1000, 900), "the next window");
        // Full of open windows: logged only, never more remembered.
        let full = LockoutEvents::default();
        for n in 0..MOST_LOCKOUTS_REMEMBERED {
            assert!(full.first(&format!("ip:{n}"), 0, 900));
        }
        assert!(!full.first("ip:one-more", 10, 900));
        // Once their windows have passed, room is made again.
        assert!(full.first("ip:one-more", 900, 900));
        assert_eq!(full.until.lock().unwrap().len(), 1);
    }
}
