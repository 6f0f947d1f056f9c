//! Tasks: one per program run (CGPL.md §7.1). A task is a `Vm` driven on
//! the local executor of the thread that started it, an input queue, and
//! the calls it owns.

mod bridge;
mod host;
mod input;
mod keep;
mod ops;
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
}

/// Every running task, by ID.
pub struct Registry {
    tasks: Mutex<HashMap<TaskId, Entry>>,
    next: AtomicU64,
    /// Calls being routed outside any task (ringing an account's phones).
    routing: AtomicUsize,
    /// How many tasks run and calls are routed, for whoever waits for them
    /// all to end.
    running: tokio::sync::watch::Sender<usize>,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry {
            tasks: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            routing: AtomicUsize::new(0),
            running: tokio::sync::watch::Sender::new(0),
        }
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
}

impl Registry {
    fn update_running(&self) {
        let tasks = self.tasks.lock().map(|tasks| tasks.len()).unwrap_or(0);
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

    /// A new task's ID and its input queue.
    pub(crate) fn register(&self, account: String, program: String) -> (TaskId, InputSender, InputQueue) {
        let id = TaskId(self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let (sender, receiver) = queue::unbounded();
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.insert(
                id,
                Entry {
                    input: sender.clone(),
                    status: Portable::Null,
                    account,
                    program,
                },
            );
        }
        self.update_running();
        (id, sender, receiver)
    }

    pub(crate) fn remove(&self, id: TaskId) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.remove(&id);
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
        let Ok(tasks) = self.tasks.lock() else {
            return false;
        };
        match tasks.get(&id) {
            Some(entry) => entry.input.send(input).is_ok(),
            None => false,
        }
    }

    /// The input queue of task `id`, to hand to a call leg.
    pub fn sender(&self, id: TaskId) -> Option<InputSender> {
        self.tasks.lock().ok()?.get(&id).map(|entry| entry.input.clone())
    }

    pub(crate) fn set_status(&self, id: TaskId, status: Portable) {
        if let Ok(mut tasks) = self.tasks.lock() {
            if let Some(entry) = tasks.get_mut(&id) {
                entry.status = status;
            }
        }
    }

    /// What is known of task `id`.
    pub fn summary(&self, id: TaskId) -> Option<TaskSummary> {
        let tasks = self.tasks.lock().ok()?;
        tasks.get(&id).map(|entry| TaskSummary {
            id,
            account: entry.account.clone(),
            program: entry.program.clone(),
            status: entry.status.clone(),
        })
    }

    /// How many tasks run.
    pub fn count(&self) -> usize {
        self.tasks.lock().map(|tasks| tasks.len()).unwrap_or(0)
    }

    /// Asks every task to end.
    pub fn stop_all(&self) {
        if let Ok(tasks) = self.tasks.lock() {
            for entry in tasks.values() {
                let _ = entry.input.send(TaskInput::Stop);
            }
        }
    }
}
