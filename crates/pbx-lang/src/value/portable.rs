//! Values that can cross from one task to another.
//!
//! `Value` is not `Send` (containers are `Rc`), so whatever one task hands
//! another — an event's parameter, a spawned task's start parameters, an
//! application status read over HTTP — travels as a `Portable`: a deep copy
//! with no sharing. A task handle stays a handle.

use std::sync::Arc;

use super::ops::{OpError, MAX_NESTING};
use super::{Array, Bytes, Dict, IpEndpoint, Seconds, TaskId, Value};

/// A deep copy of a value, safe to send between threads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Portable {
    Null,
    Num(i64),
    Str(Bytes),
    Date(Seconds),
    Data(Bytes),
    Ip(IpEndpoint),
    Task(TaskId),
    Array(Vec<Portable>),
    /// Keys and values in order, and whether keys ignore case.
    Dict(Vec<(Bytes, Portable)>, bool),
}

impl Portable {
    /// A string.
    pub fn str(text: &str) -> Portable {
        Portable::Str(Bytes::from(text))
    }

    /// Makes the value again, in the receiving task.
    pub fn to_value(&self) -> Value {
        match self {
            Portable::Null => Value::Null,
            Portable::Num(number) => Value::Num(*number),
            Portable::Str(bytes) => Value::Str(bytes.clone()),
            Portable::Date(seconds) => Value::Date(*seconds),
            Portable::Data(bytes) => Value::Data(bytes.clone()),
            Portable::Ip(endpoint) => Value::Ip(Arc::new(*endpoint)),
            Portable::Task(task) => Value::Task(*task),
            Portable::Array(items) => {
                Value::Array(Array::from_vec(items.iter().map(Portable::to_value).collect()))
            }
            Portable::Dict(entries, ignore_case) => {
                let dict = Dict::new();
                dict.set_ignore_case(*ignore_case);
                for (key, value) in entries {
                    // A fresh dictionary cannot be inside a fresh value.
                    let _ = dict.set(key.clone(), value.to_value());
                }
                Value::Dict(dict)
            }
        }
    }
}

// `Portable` must stay `Send + Sync`: checked here at compile time.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Portable>();
};

impl Value {
    /// A deep copy for another task. Nesting past the limit is an error.
    pub fn to_portable(&self) -> Result<Portable, OpError> {
        to_portable(self, 0)
    }
}

fn to_portable(value: &Value, depth: usize) -> Result<Portable, OpError> {
    if depth > MAX_NESTING {
        return Err(OpError::too_deep());
    }
    Ok(match value {
        Value::Null => Portable::Null,
        Value::Num(number) => Portable::Num(*number),
        Value::Str(bytes) => Portable::Str(bytes.clone()),
        Value::Date(seconds) => Portable::Date(*seconds),
        Value::Data(bytes) => Portable::Data(bytes.clone()),
        Value::Ip(endpoint) => Portable::Ip(**endpoint),
        Value::Task(task) => Portable::Task(*task),
        Value::Array(array) => Portable::Array(
            array
                .items()
                .iter()
                .map(|item| to_portable(item, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Dict(dict) => Portable::Dict(
            dict.entries()
                .into_iter()
                .map(|(key, item)| Ok((key, to_portable(&item, depth + 1)?)))
                .collect::<Result<_, OpError>>()?,
            dict.ignores_case(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_nested_values_as_copies() {
        let inner = Dict::new();
        inner.set(Bytes::from("b"), Value::Num(2)).unwrap();
        let outer = Array::from_vec(vec![
            Value::str("a"),
            Value::Dict(inner.clone()),
            Value::Task(TaskId(7)),
        ]);
        let portable = Value::Array(outer).to_portable().unwrap();
        let back = portable.to_value();
        inner.set(Bytes::from("b"), Value::Num(3)).unwrap();
        assert_eq!(crate::value::text::to_text(&back), "(a, {b = #2;}, #Task[7])");
    }
}
