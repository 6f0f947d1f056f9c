//! Tasks: one per program run (CGPL.md §7.1). A task is a `Vm` driven on
//! the local executor of the thread that started it, an input queue, and
//! the calls it owns.

mod billing;
mod bridge;
mod desk;
mod host;
mod input;
mod keep;
mod music;
mod numbers;
mod ops;
mod queues;
mod run;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::queue;
use pbx_lang::value::{Portable, TaskId};

use crate::call::{LegHandle, LegReport, Reply};

pub use run::{start, Start};

/// What reaches a task from outside: its calls, other tasks, the runtime.
#[derive(Debug)]
pub enum TaskInput {
    /// Something happened on a leg the task owns.
    Leg(LegReport),
    /// An event from another task (`SendEvent`) or from the system.
    Event {
        name: String,
        sender: Option<TaskId>,
        parameter: Portable,
    },
    /// Another task asks to bridge its call with this one's.
    StartBridge {
        from: TaskId,
        leg: Option<LegHandle>,
        reply: Reply,
    },
    /// Another task asks this one to take its peer (attended transfer).
    StartTransfer {
        from: TaskId,
        leg: LegHandle,
        reply: Reply,
    },
    /// The task bridged with this one broke the bridge (or ended).
    BreakBridge { from: TaskId },
    /// The runtime asks the task to end (shutdown).
    Stop,
}

impl From<LegReport> for TaskInput {
    fn from(report: LegReport) -> TaskInput {
        TaskInput::Leg(report)
    }
}

/// Where a task's input goes.
pub type InputSender = queue::Sender<TaskInput>;

/// A task's input queue.
pub(crate) type InputQueue = queue::Receiver<TaskInput>;

struct Entry {
    input: InputSender,
    /// What `SetApplicationStatus` last stored.
    status: Portable,
    /// `name@domain` of the account the task runs for.
    account: String,
    /// The program, as found in its environment.
    program: String,
    /// What it does now: `running`, or what it waits on.
    state: &'static str,
}

/// Every running task, by ID: one table per shard, so that starting,
/// ending and reaching a task locks only its shard's table. A task ID says
/// its shard in its top 16 bits ([`shard_of`]); shard 0's tasks are
/// numbered 1, 2, 3...
pub struct Registry {
    parts: Box<[Part]>,
    /// Tasks running, over all shards.
    tasks: AtomicUsize,
    /// Calls being routed outside any task (ringing an account's phones).
    routing: AtomicUsize,
    /// How many tasks run and calls are routed, for whoever waits for them
    /// all to end.
    running: tokio::sync::watch::Sender<usize>,
}

/// One shard's tasks.
#[derive(Default)]
struct Part {
    tasks: Mutex<HashMap<TaskId, Entry>>,
    next: AtomicU64,
}

/// Bits of a task ID below its shard number.
const SEQUENCE_BITS: u32 = 48;

/// The shard whose table holds task `id` (the shard it was started on).
pub fn shard_of(id: TaskId) -> usize {
    (id.0 >> SEQUENCE_BITS) as usize
}

impl Registry {
    /// A registry for `shards` shards.
    pub fn new(shards: usize) -> Registry {
        Registry {
            parts: (0..shards.max(1)).map(|_| Part::default()).collect(),
            tasks: AtomicUsize::new(0),
            routing: AtomicUsize::new(0),
            running: tokio::sync::watch::Sender::new(0),
        }
    }

    fn part(&self, id: TaskId) -> Option<&Part> {
        self.parts.get(shard_of(id))
    }
}

impl Default for Registry {
    fn default() -> Registry {
        Registry::new(1)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("tasks", &self.count()).finish()
    }
}

/// A task as seen from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSummary {
    pub id: TaskId,
    pub account: String,
    pub program: String,
    pub status: Portable,
    /// `running`, or what it waits on (`waiting for input`, `playing`…).
    pub state: &'static str,
}

impl Registry {
    fn update_running(&self) {
        let tasks = self.tasks.load(Ordering::Relaxed);
        self.running
            .send_replace(tasks + self.routing.load(Ordering::Relaxed));
    }

    /// Counts a call being routed outside any task, so that `idle` waits
    /// for it; `end_routing` when it is over.
    pub(crate) fn start_routing(&self) {
        self.routing.fetch_add(1, Ordering::Relaxed);
        self.update_running();
    }

    pub(crate) fn end_routing(&self) {
        self.routing.fetch_sub(1, Ordering::Relaxed);
        self.update_running();
    }

    /// A new task's ID and its input queue, in the table of the shard
    /// this thread runs (shard 0 outside the shards).
    pub(crate) fn register(&self, account: String, program: String) -> (TaskId, InputSender, InputQueue) {
        let shard = crate::shard::current().unwrap_or(0) % self.parts.len();
        let part = &self.parts[shard];
        let sequence = part.next.fetch_add(1, Ordering::Relaxed) + 1;
        let id = TaskId(((shard as u64) << SEQUENCE_BITS) | sequence);
        let (sender, receiver) = queue::unbounded();
        if let Ok(mut tasks) = part.tasks.lock() {
            self.tasks.fetch_add(1, Ordering::Relaxed);
            tasks.insert(
                id,
                Entry {
                    input: sender.clone(),
                    status: Portable::Null,
                    account,
                    program,
                    state: "running",
                },
            );
        }
        self.update_running();
        (id, sender, receiver)
    }

    pub(crate) fn remove(&self, id: TaskId) {
        let removed = self
            .part(id)
            .and_then(|part| part.tasks.lock().ok())
            .and_then(|mut tasks| tasks.remove(&id));
        if removed.is_some() {
            self.tasks.fetch_sub(1, Ordering::Relaxed);
        }
        self.update_running();
    }

    /// How many tasks run and calls are routed, as it changes.
    pub fn running(&self) -> &tokio::sync::watch::Sender<usize> {
        &self.running
    }

    /// Waits until no task runs and no call is being routed.
    pub async fn idle(&self) {
        let mut running = self.running.subscribe();
        let _ = running.wait_for(|count| *count == 0).await;
    }

    /// Sends `input` to task `id`; false when there is no such task.
    pub fn send(&self, id: TaskId, input: TaskInput) -> bool {
        let Some(Ok(tasks)) = self.part(id).map(|part| part.tasks.lock()) else {
            return false;
        };
        match tasks.get(&id) {
            Some(entry) => entry.input.send(input).is_ok(),
            None => false,
        }
    }

    /// The input queue of task `id`, to hand to a call leg.
    pub fn sender(&self, id: TaskId) -> Option<InputSender> {
        let tasks = self.part(id)?.tasks.lock().ok()?;
        tasks.get(&id).map(|entry| entry.input.clone())
    }

    pub(crate) fn set_status(&self, id: TaskId, status: Portable) {
        if let Some(Ok(mut tasks)) = self.part(id).map(|part| part.tasks.lock()) {
            if let Some(entry) = tasks.get_mut(&id) {
                entry.status = status;
            }
        }
    }

    /// What is known of task `id`.
    pub fn summary(&self, id: TaskId) -> Option<TaskSummary> {
        let tasks = self.part(id)?.tasks.lock().ok()?;
        tasks.get(&id).map(|entry| TaskSummary {
            id,
            account: entry.account.clone(),
            program: entry.program.clone(),
            status: entry.status.clone(),
            state: entry.state,
        })
    }

    /// Every task running, by ID.
    pub fn summaries(&self) -> Vec<TaskSummary> {
        let mut all = Vec::new();
        for part in self.parts.iter() {
            if let Ok(tasks) = part.tasks.lock() {
                all.extend(tasks.iter().map(|(id, entry)| TaskSummary {
                    id: *id,
                    account: entry.account.clone(),
                    program: entry.program.clone(),
                    status: entry.status.clone(),
                    state: entry.state,
                }));
            }
        }
        all.sort_by_key(|summary| summary.id.0);
        all
    }

    /// What task `id` does now (see [`TaskSummary::state`]).
    pub(crate) fn set_state(&self, id: TaskId, state: &'static str) {
        if let Some(mut tasks) = self.part(id).and_then(|part| part.tasks.lock().ok()) {
            if let Some(entry) = tasks.get_mut(&id) {
                entry.state = state;
            }
        }
    }

    /// Asks task `id` to end; false when there is no such task.
    pub fn stop(&self, id: TaskId) -> bool {
        self.send(id, TaskInput::Stop)
    }

    /// How many tasks run.
    pub fn count(&self) -> usize {
        self.tasks.load(Ordering::Relaxed)
    }

    /// Asks every task to end.
    pub fn stop_all(&self) {
        for part in self.parts.iter() {
            if let Ok(tasks) = part.tasks.lock() {
                for entry in tasks.values() {
                    let _ = entry.input.send(TaskInput::Stop);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_task_id_says_the_shard_that_registered_it() {
        let shards = crate::shard::Shards::threads(3).expect("shard threads");
        let registry = Arc::new(Registry::new(3));
        let (done, ids) = std::sync::mpsc::channel();
        for index in 0..3 {
            let (registry, done) = (registry.clone(), done.clone());
            shards.run_on(index, move || {
                let (first, _, _) = registry.register("a@example.com".into(), "x".into());
                let (second, _, _) = registry.register("a@example.com".into(), "x".into());
                let _ = done.send((index, first, second));
            });
        }
        let mut seen: Vec<_> = (0..3).map(|_| ids.recv().expect("registered")).collect();
        seen.sort();
        for (index, first, second) in seen {
            assert_eq!((shard_of(first), shard_of(second)), (index, index));
            assert_ne!(first, second);
            assert_eq!(registry.summary(first).map(|task| task.id), Some(first));
        }
        assert_eq!(registry.count(), 6);
        // Shard 0's tasks keep the plain numbers scripts have always seen.
        let (outside, _, _) = registry.register("a@example.com".into(), "x".into());
        assert_eq!(outside, TaskId(3));
        registry.remove(outside);
        assert_eq!(registry.count(), 6);
        assert!(!registry.send(TaskId((7 << SEQUENCE_BITS) | 1), TaskInput::Stop));
    }
}
