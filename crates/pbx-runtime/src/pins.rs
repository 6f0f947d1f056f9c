//! Wrong PINs counted per account, for `CheckAccountPIN` (voicemail and
//! whatever else asks for an account's PIN): `limits.pin_attempts` wrong
//! ones in a row lock the account's PIN checks for
//! `limits.pin_lockout_minutes`, whatever is keyed meanwhile, so a PIN
//! cannot be guessed by calling again and again. Calls from the account's
//! own phones (authenticated as it) are neither counted nor locked out.
//! In memory: a restart forgets the counts. Hot desk keeps its own locks
//! per phone and per line (`hotdesk`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

#[derive(Debug, Default)]
struct Count {
    wrong: u32,
    /// Locked until then (seconds since the Unix epoch), if at all.
    until: i64,
}

/// Each account's wrong PINs and lock-out.
#[derive(Debug)]
pub struct PinGuard {
    attempts: u32,
    lockout_seconds: i64,
    accounts: Mutex<HashMap<String, Count>>,
}

impl PinGuard {
    pub fn new(attempts: u32, lockout_minutes: u32) -> PinGuard {
        PinGuard {
            attempts: attempts.max(1),
            lockout_seconds: i64::from(lockout_minutes) * 60,
            accounts: Mutex::default(),
        }
    }

    /// Whether `account`'s PIN checks are locked at `now`.
    pub fn locked(&self, account: &str, now: i64) -> bool {
        let accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        accounts.get(account).is_some_and(|count| count.until > now)
    }

    /// Counts a check of `account`'s PIN: a right one clears the count, a
    /// wrong one adds to it and may start a lock-out (true then).
    pub fn checked(&self, account: &str, right: bool, now: i64) -> bool {
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        if right {
            accounts.remove(account);
            return false;
        }
        if accounts.len() > 100_000 {
            accounts.retain(|_, count| count.until > now || count.wrong > 0);
        }
        let count = accounts.entry(account.to_string()).or_default();
        count.wrong += 1;
        if count.wrong >= self.attempts {
            count.wrong = 0;
            count.until = now + self.lockout_seconds;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_pins_in_a_row_lock_the_account_for_a_while() {
        let guard = PinGuard::new(3, 15);
        let who = "ivanov@example.com";
        assert!(!guard.checked(who, false, 100));
        // A right PIN clears the count.
        assert!(!guard.checked(who, true, 101));
        assert!(!guard.checked(who, false, 102));
        assert!(!guard.checked(who, false, 103));
        assert!(!guard.locked(who, 103));
        assert!(guard.checked(who, false, 104));
        assert!(guard.locked(who, 105));
        assert!(!guard.locked("petrov@example.com", 105));
        assert!(guard.locked(who, 104 + 15 * 60 - 1));
        assert!(!guard.locked(who, 104 + 15 * 60));
    }
}
