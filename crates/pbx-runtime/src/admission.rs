//! Admission control: a PBX that cannot keep up refuses new calls, never
//! degrades the ones it has (FEATURES.md §12).
//!
//! The network asks `admit` before it takes a new call. It is refused
//! (`503` with `Retry-After`) while pbxd drains for shutdown, at
//! `limits.max_calls` calls, while a media worker is near what it can do
//! (busy more than `limits.media_busy_percent` of the last second), while a
//! media clock runs late (its lateness p99 over the last second beyond
//! `limits.media_lateness_ms`), or while
//! a shard's tasks wait to run longer than `limits.task_delay_ms`. A taken
//! call holds a [`CallPermit`] until it ends.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pbx_media::MediaEngine;

use crate::config::LimitsConfig;
use crate::shard::ShardLoad;

/// Why a new call is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// pbxd is shutting down.
    Draining,
    /// `limits.max_calls` calls are in progress.
    TooManyCalls(usize),
    /// A media worker was busy this share of the last second (per cent).
    MediaBusy(u64),
    /// A media clock runs late by this much (p99 over the last second).
    MediaLate(Duration),
    /// A shard's tasks wait this long to run.
    TasksLate(Duration),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Draining => f.write_str("shutting down"),
            Refusal::TooManyCalls(calls) => write!(f, "{calls} calls in progress (limits.max_calls)"),
            Refusal::MediaBusy(percent) => write!(f, "a media worker is {percent}% busy"),
            Refusal::MediaLate(late) => write!(f, "the media clock runs {} ms late", late.as_millis()),
            Refusal::TasksLate(late) => write!(f, "tasks wait {} ms to run", late.as_millis()),
        }
    }
}

/// Shared by the network (which asks) and the server (which drains).
pub struct Admission {
    limits: LimitsConfig,
    /// Set once when shutting down.
    draining: AtomicBool,
    /// Calls in progress: incremented by `admit`, decremented when a
    /// permit drops (any thread).
    calls: AtomicUsize,
    /// Calls refused so far, by any cause.
    refused: AtomicU64,
    shards: Arc<[ShardLoad]>,
    media: Option<MediaEngine>,
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("calls", &self.calls())
            .field("draining", &self.draining.load(Ordering::Relaxed))
            .finish()
    }
}

/// A call taken: counted until dropped.
#[derive(Debug)]
pub struct CallPermit(Arc<Admission>);

impl Drop for CallPermit {
    fn drop(&mut self) {
        self.0.calls.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    /// Admission by `limits`, watching the shards' and the media engine's load.
    pub fn new(limits: LimitsConfig, shards: Arc<[ShardLoad]>, media: Option<MediaEngine>) -> Arc<Admission> {
        Arc::new(Admission {
            limits,
            draining: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            shards,
            media,
        })
    }

    /// Takes a new call, or says why not.
    pub fn admit(self: &Arc<Self>) -> Result<CallPermit, Refusal> {
        let refusal = self.refusal();
        if let Some(refusal) = refusal {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(refusal);
        }
        let calls = self.calls.fetch_add(1, Ordering::Relaxed);
        let permit = CallPermit(self.clone());
        match self.limits.max_calls {
            Some(max) if calls >= max => {
                drop(permit);
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(Refusal::TooManyCalls(calls))
            }
            _ => Ok(permit),
        }
    }

    fn refusal(&self) -> Option<Refusal> {
        if self.draining.load(Ordering::Relaxed) {
            return Some(Refusal::Draining);
        }
        if let Some(busy) = self
            .media
            .as_ref()
            .map(MediaEngine::busy_percent)
            .filter(|busy| *busy > u64::from(self.limits.media_busy_percent))
        {
            return Some(Refusal::MediaBusy(busy));
        }
        let media_bound = Duration::from_millis(self.limits.media_lateness_ms);
        if let Some(late) = self
            .media
            .as_ref()
            .map(MediaEngine::lateness)
            .filter(|late| *late > media_bound)
        {
            return Some(Refusal::MediaLate(late));
        }
        let task_bound = Duration::from_millis(self.limits.task_delay_ms);
        self.shards
            .iter()
            .map(ShardLoad::task_delay)
            .max()
            .filter(|late| *late > task_bound)
            .map(Refusal::TasksLate)
    }

    /// From now on every new call is refused (shutdown).
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Whether pbxd is stopping (new calls refused for good).
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Calls in progress.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Calls refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// What a refusal's `Retry-After` says, in seconds.
    pub fn retry_after(&self) -> u32 {
        self.limits.retry_after_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_calls_refuses_the_next_until_one_ends() {
        let limits = LimitsConfig {
            max_calls: Some(2),
            ..LimitsConfig::default()
        };
        let admission = Admission::new(limits, Arc::from(vec![ShardLoad::default()]), None);
        let first = admission.admit().unwrap();
        let _second = admission.admit().unwrap();
        assert_eq!(admission.admit().unwrap_err(), Refusal::TooManyCalls(2));
        assert_eq!(admission.calls(), 2);
        drop(first);
        assert!(admission.admit().is_ok());
        admission.drain();
        assert_eq!(admission.admit().unwrap_err(), Refusal::Draining);
        assert_eq!(admission.refused(), 2);
    }
}
