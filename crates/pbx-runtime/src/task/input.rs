//! The task's input queue (CGPL.md §7.1): a DTMF buffer and an event
//! queue. `ReadInput` returns the first buffered DTMF symbol as a
//! one-character string, else the first event as a dictionary
//! `{what, sender, parameter}`, else (after its timeout) null.

use std::collections::VecDeque;

use pbx_lang::value::{Bytes, Dict, Portable, TaskId, Value};

/// A queued event, kept in a form that can be built into a value when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueuedEvent {
    pub name: String,
    /// `None` for system events (hang-up, call progress).
    pub sender: Option<TaskId>,
    pub parameter: Portable,
}

impl QueuedEvent {
    /// A system event.
    pub fn system(name: &str, parameter: Portable) -> QueuedEvent {
        QueuedEvent {
            name: name.to_string(),
            sender: None,
            parameter,
        }
    }

    /// The dictionary `ReadInput` returns.
    pub fn to_value(&self) -> Value {
        let dict = Dict::new();
        // A fresh dictionary holds whatever is put in it.
        let _ = dict.set(Bytes::from("what"), Value::str(&self.name));
        if let Some(sender) = self.sender {
            let _ = dict.set(Bytes::from("sender"), Value::Task(sender));
        }
        let parameter = self.parameter.to_value();
        if !parameter.is_null() {
            let _ = dict.set(Bytes::from("parameter"), parameter);
        }
        Value::Dict(dict)
    }
}

/// The DTMF buffer and the event queue.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub dtmf: VecDeque<char>,
    pub events: VecDeque<QueuedEvent>,
}

impl Queue {
    /// The next input in §7.1 order, if any.
    pub fn pop(&mut self) -> Option<Value> {
        if let Some(symbol) = self.dtmf.pop_front() {
            return Some(Value::from(symbol.to_string()));
        }
        self.events.pop_front().map(|event| event.to_value())
    }

    /// The buffered DTMF symbols as a string (`DTMF()`), without removing them.
    pub fn peek_dtmf(&self) -> String {
        self.dtmf.iter().collect()
    }
}
