//! Counts the bytes held by script values, for the per-task memory limit.
//!
//! Values do not know which task they belong to, so the count is kept per
//! thread: every string, datablock, array and dictionary adds its size when it
//! is made or grows and takes it back when it is dropped. A task runs on one
//! thread at a time; the VM reads the counter when a run slice starts and
//! ends and charges the difference to the task, and it sets the thread's
//! allowance so that growing past the task's limit is noticed at once.
//!
//! The count is approximate (a value made in one task and dropped in another
//! moves bytes between them), which is fine for a limit meant to stop
//! runaway scripts, and it costs two thread-local cell operations per
//! allocation.

use std::cell::Cell;

thread_local! {
    /// Net bytes made minus dropped on this thread since it started.
    static LIVE: Cell<i64> = const { Cell::new(0) };
    /// The value of `LIVE` past which the running task is over its limit.
    static ALLOWANCE: Cell<i64> = const { Cell::new(i64::MAX) };
}

/// Records `bytes` newly held by a value.
#[inline]
pub fn charge(bytes: usize) {
    LIVE.with(|live| live.set(live.get().wrapping_add(bytes as i64)));
}

/// Records `bytes` no longer held.
#[inline]
pub fn release(bytes: usize) {
    LIVE.with(|live| live.set(live.get().wrapping_sub(bytes as i64)));
}

/// The thread's counter now.
#[inline]
pub fn live() -> i64 {
    LIVE.with(Cell::get)
}

/// Whether the running task has gone past its allowance.
#[inline]
pub fn over_allowance() -> bool {
    live() > ALLOWANCE.with(Cell::get)
}

/// Sets how far the counter may grow before [`over_allowance`] is true,
/// and returns the previous setting (restore it when the slice ends).
pub fn set_allowance(limit: i64) -> i64 {
    ALLOWANCE.with(|allowance| allowance.replace(limit))
}
