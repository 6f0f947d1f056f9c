//! The timeline `pbxd run` prints: one event per line, with the time since
//! the run started (virtual time when the caller's keys are scripted).

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use pbx_lang::Diagnostic;
use pbx_runtime::observe::{Event, Observer};

/// Prints events to stdout and keeps run-time errors for the end.
pub struct Timeline {
    /// When the run began (`begin`), on the clock the run's calls use.
    start: Mutex<tokio::time::Instant>,
    errors: Mutex<Vec<Diagnostic>>,
}

impl Timeline {
    /// A timeline starting now.
    pub fn new() -> Timeline {
        Timeline {
            start: Mutex::new(tokio::time::Instant::now()),
            errors: Mutex::new(Vec::new()),
        }
    }

    /// Times count from now: call this on the run's own clock (the server
    /// is built before, on another).
    pub fn begin(&self) {
        if let Ok(mut start) = self.start.lock() {
            *start = tokio::time::Instant::now();
        }
    }

    /// The run-time errors seen so far.
    pub fn take_errors(&self) -> Vec<Diagnostic> {
        self.errors
            .lock()
            .map(|mut errors| std::mem::take(&mut *errors))
            .unwrap_or_default()
    }

    fn line(&self, text: &str) {
        let elapsed = self
            .start
            .lock()
            .map_or(0.0, |start| start.elapsed().as_secs_f64());
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{elapsed:8.3}  {text}");
        let _ = out.flush();
    }
}

fn seconds(length: Duration) -> String {
    format!("{:.1} s", length.as_secs_f64())
}

impl Observer for Timeline {
    fn event(&self, event: Event) {
        let text = match event {
            Event::TaskStarted {
                task,
                program,
                account,
            } => format!("#{} start {program} for {account}", task.0),
            Event::TaskEnded { task, how } => format!("#{} {how}", task.0),
            Event::Call { task, what } => format!("#{} {what}", task.0),
            Event::Play { task, file, length } => format!("#{} play {file} ({})", task.0, seconds(length)),
            Event::PlayMissing { task, name } => format!("#{} play {name}: no such prompt", task.0),
            Event::PlayInterrupted { task, after, by } => {
                format!("#{} playing stopped by {by} after {}", task.0, seconds(after))
            }
            Event::Tone {
                task,
                frequencies,
                length,
            } => format!("#{} tone {frequencies} ({})", task.0, seconds(length)),
            Event::Recorded { task, length } => format!("#{} recorded {}", task.0, seconds(length)),
            Event::Dtmf { task, symbol } => format!("#{} dtmf {symbol}", task.0),
            Event::DtmfSent { task, symbol } => format!("#{} sent dtmf {symbol}", task.0),
            Event::TaskEvent { task, name, from } => match from {
                Some(from) => format!("#{} event {name} from #{}", task.0, from.0),
                None => format!("#{} event {name}", task.0),
            },
            Event::Email { task, to, result } => match result {
                Ok(()) => format!("#{} email to {to}: accepted", task.0),
                Err(reason) => format!("#{} email to {to}: failed ({reason})", task.0),
            },
            Event::Http { task, url, result } => match result {
                Ok(code) => format!("#{} http {url}: {code}", task.0),
                Err(reason) => format!("#{} http {url}: failed ({reason})", task.0),
            },
            Event::Log { task, text } => format!("#{} log {text}", task.0),
            Event::Cdr { task, text } => format!("#{} cdr {text}", task.0),
            Event::Error { task, diagnostic } => {
                let line = format!("#{} error: {}", task.0, diagnostic.one_line());
                if let Ok(mut errors) = self.errors.lock() {
                    errors.push(*diagnostic);
                }
                line
            }
            Event::ProgramProblem { file, text } => format!("{file}: {text}"),
            Event::Routing { what } => format!("call: {what}"),
        };
        self.line(&text);
    }
}
