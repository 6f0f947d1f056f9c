//! What the runtime reports as it works: the timeline `pbxd run` prints,
//! and the log lines `pbxd serve` writes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pbx_lang::value::TaskId;

/// Something that happened, for whoever watches.
#[derive(Clone, Debug)]
pub enum Event {
    /// A task started running `program` for `account`.
    TaskStarted {
        task: TaskId,
        program: String,
        account: String,
    },
    /// A task ended; `how` says why (finished, stopped, an error…).
    TaskEnded { task: TaskId, how: String },
    /// A call arrived for a task, or a task placed one.
    Call { task: TaskId, what: String },
    /// A prompt started playing (the file as found in its environment).
    Play {
        task: TaskId,
        file: String,
        length: Duration,
    },
    /// `PlayFile` named a file no environment has.
    PlayMissing { task: TaskId, name: String },
    /// A prompt stopped early.
    PlayInterrupted {
        task: TaskId,
        after: Duration,
        by: String,
    },
    /// A tone or silence.
    Tone {
        task: TaskId,
        frequencies: String,
        length: Duration,
    },
    /// A recording finished.
    Recorded { task: TaskId, length: Duration },
    /// A DTMF symbol reached the task.
    Dtmf { task: TaskId, symbol: char },
    /// The task sent a DTMF symbol.
    DtmfSent { task: TaskId, symbol: char },
    /// An event from another task or the system.
    TaskEvent {
        task: TaskId,
        name: String,
        from: Option<TaskId>,
    },
    /// A message was given to the relay (or not).
    Email {
        task: TaskId,
        to: String,
        result: Result<(), String>,
    },
    /// An HTTP request and its outcome.
    Http {
        task: TaskId,
        url: String,
        result: Result<u16, String>,
    },
    /// A `SysLog` line.
    Log { task: TaskId, text: String },
    /// A `StoreCDR` record.
    Cdr { task: TaskId, text: String },
    /// A run-time error ended the task.
    Error {
        task: TaskId,
        diagnostic: Box<pbx_lang::Diagnostic>,
    },
    /// A program or module changed on disk and no longer compiles; the last
    /// good version stays in use.
    ProgramProblem { file: String, text: String },
    /// A call to an account, routed by its rules outside any task: which
    /// rule applied, what rang, who answered.
    Routing { what: String },
}

/// Receives events. Implementations must be cheap: they are called on the
/// tasks' threads.
pub trait Observer: Send + Sync {
    fn event(&self, event: Event);
}

/// Counts, for the metrics, what tasks did and what went wrong, and
/// passes every event on to `inner`.
pub struct Counting {
    inner: Box<dyn Observer>,
    pub counts: std::sync::Arc<EventCounts>,
}

/// What [`Counting`] has counted since pbxd started.
#[derive(Debug, Default)]
pub struct EventCounts {
    pub tasks_started: AtomicU64,
    /// Tasks ended by a run-time error.
    pub script_errors: AtomicU64,
    /// Mail the SMTP relay did not take.
    pub mail_failures: AtomicU64,
    /// HTTPCall requests with no response.
    pub http_failures: AtomicU64,
    /// The last run-time errors of scripts (file:line:column and what),
    /// and the last programs that no longer compile (file and the full
    /// diagnostics), newest last.
    pub recent_errors: std::sync::Mutex<std::collections::VecDeque<String>>,
    pub program_problems: std::sync::Mutex<std::collections::VecDeque<(String, String)>>,
}

/// How many errors and problems [`EventCounts`] keeps.
const KEPT: usize = 20;

fn keep<T>(list: &std::sync::Mutex<std::collections::VecDeque<T>>, item: T) {
    if let Ok(mut list) = list.lock() {
        if list.len() >= KEPT {
            list.pop_front();
        }
        list.push_back(item);
    }
}

impl Counting {
    pub fn new(inner: impl Observer + 'static) -> Counting {
        Counting {
            inner: Box::new(inner),
            counts: std::sync::Arc::default(),
        }
    }
}

impl Observer for Counting {
    fn event(&self, event: Event) {
        let counter = match &event {
            Event::TaskStarted { .. } => Some(&self.counts.tasks_started),
            Event::Error { .. } => Some(&self.counts.script_errors),
            Event::Email { result: Err(_), .. } => Some(&self.counts.mail_failures),
            Event::Http { result: Err(_), .. } => Some(&self.counts.http_failures),
            _ => None,
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        match &event {
            Event::Error { task, diagnostic } => {
                keep(
                    &self.counts.recent_errors,
                    format!("task {}: {}", task.0, diagnostic.one_line()),
                );
            }
            Event::ProgramProblem { file, text } => {
                keep(&self.counts.program_problems, (file.clone(), text.clone()))
            }
            _ => {}
        }
        self.inner.event(event);
    }
}

/// Writes events to the log (`tracing`).
#[derive(Debug, Default)]
pub struct LogObserver;

impl Observer for LogObserver {
    fn event(&self, event: Event) {
        match event {
            Event::Error { task, diagnostic } => {
                let stack = pbx_lang::diagnostic::describe_stack(&diagnostic.stack).replace('\n', ", ");
                tracing::warn!(task = task.0, "{} ({stack})", diagnostic.one_line())
            }
            Event::ProgramProblem { file, text } => tracing::warn!(file, "{text}"),
            Event::Log { task, text } => tracing::info!(task = task.0, "{text}"),
            Event::Routing { what } => tracing::info!("{what}"),
            // One line per call (task) start and end, with its task ID.
            Event::TaskStarted {
                task,
                program,
                account,
            } => tracing::info!(task = task.0, %account, "start {program}"),
            Event::TaskEnded { task, how } => tracing::info!(task = task.0, "{how}"),
            other => tracing::debug!("{other:?}"),
        }
    }
}
