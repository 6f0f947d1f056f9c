//! Programs whose tasks keep running into a limit (computing too long
//! without waiting, too much memory, calls nested too deep): after
//! `TRIPS` such endings within a minute, new tasks of that program are
//! refused for a minute (a call to it gets 503), so callers cannot keep a
//! runaway program burning the shards' time. Logged when it trips.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Limit endings within [`WINDOW`] that suspend a program.
pub const TRIPS: u32 = 3;
pub const WINDOW: Duration = Duration::from_secs(60);
/// How long a program stays suspended.
pub const SUSPENSION: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct State {
    since: Instant,
    endings: u32,
    until: Option<Instant>,
}

/// Each program's recent limit endings, by its name.
#[derive(Debug, Default)]
pub struct Breaker {
    programs: Mutex<HashMap<String, State>>,
}

impl Breaker {
    /// A task of `program` ended at a limit: whether that suspends it now.
    pub fn ended_at_limit(&self, program: &str) -> bool {
        let mut programs = self.programs.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let state = programs.entry(program.to_string()).or_insert(State {
            since: now,
            endings: 0,
            until: None,
        });
        if now.duration_since(state.since) >= WINDOW {
            state.since = now;
            state.endings = 0;
        }
        state.endings += 1;
        if state.endings >= TRIPS && state.until.is_none_or(|until| until <= now) {
            state.until = Some(now + SUSPENSION);
            state.endings = 0;
            return true;
        }
        false
    }

    /// Whether new tasks of `program` are refused now.
    pub fn suspended(&self, program: &str) -> bool {
        let programs = self.programs.lock().unwrap_or_else(PoisonError::into_inner);
        programs
            .get(program)
            .and_then(|state| state.until)
            .is_some_and(|until| until > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_limit_endings_suspend_that_program_only() {
        let breaker = Breaker::default();
        assert!(!breaker.ended_at_limit("loop.sppr"));
        assert!(!breaker.ended_at_limit("loop.sppr"));
        assert!(!breaker.suspended("loop.sppr"));
        assert!(breaker.ended_at_limit("loop.sppr"));
        assert!(breaker.suspended("loop.sppr"));
        assert!(!breaker.suspended("voicemail.sppr"));
        // While suspended, more endings do not trip it again.
        assert!(!breaker.ended_at_limit("loop.sppr"));
    }
}
