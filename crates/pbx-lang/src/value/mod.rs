//! The values scripts work with (CGPL.md §4 and §0): null, strings, 64-bit
//! numbers, timestamps, datablocks, IP addresses, arrays, dictionaries and
//! task handles.
//!
//! `Value` is 16 bytes: scalars are stored inline, strings and datablocks
//! share an immutable buffer, containers are shared and mutable.

mod bytes;
mod container;
pub mod json;
pub mod meter;
pub mod ops;
pub mod portable;
pub mod text;
pub mod time;

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

pub use bytes::Bytes;
pub use container::{Array, ContainerError, Dict};
pub use ops::{OpError, MAX_NESTING};
pub use portable::Portable;

/// Identifies a task (a running program) for `SendEvent` and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub u64);

/// An IP address with an optional port, e.g. `[10.0.1.77]:1812`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpEndpoint {
    pub address: IpAddr,
    pub port: Option<u16>,
}

/// Seconds since 1970-01-01T00:00:00Z. `i64::MIN` is the "remote past" and
/// `i64::MAX` the "remote future" (CGPL.md §4).
pub type Seconds = i64;

/// The "remote past" timestamp (`Date(0)`).
pub const REMOTE_PAST: Seconds = i64::MIN;
/// The "remote future" timestamp (`Date(-1)`).
pub const REMOTE_FUTURE: Seconds = i64::MAX;

/// A script value.
#[derive(Default)]
pub enum Value {
    /// The "no object" value; false in conditions.
    #[default]
    Null,
    /// A 64-bit signed integer.
    Num(i64),
    /// A string: a byte sequence that is usually UTF-8 text.
    Str(Bytes),
    /// A point in time, in seconds.
    Date(Seconds),
    /// A datablock: binary bytes.
    Data(Bytes),
    /// An IP address, with an optional port.
    Ip(Arc<IpEndpoint>),
    Array(Array),
    Dict(Dict),
    Task(TaskId),
}

impl Clone for Value {
    /// Numbers and null, the common case in loops, copy without a jump
    /// through the whole enum.
    #[inline(always)]
    fn clone(&self) -> Value {
        match self {
            Value::Num(number) => Value::Num(*number),
            Value::Null => Value::Null,
            other => other.clone_shared(),
        }
    }
}

impl Value {
    #[inline(never)]
    fn clone_shared(&self) -> Value {
        match self {
            Value::Null => Value::Null,
            Value::Num(number) => Value::Num(*number),
            Value::Str(bytes) => Value::Str(bytes.clone()),
            Value::Date(seconds) => Value::Date(*seconds),
            Value::Data(bytes) => Value::Data(bytes.clone()),
            Value::Ip(endpoint) => Value::Ip(endpoint.clone()),
            Value::Array(array) => Value::Array(array.clone()),
            Value::Dict(dict) => Value::Dict(dict.clone()),
            Value::Task(task) => Value::Task(*task),
        }
    }

    /// Whether the value owns no shared data (dropping it does nothing).
    #[inline(always)]
    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            Value::Null | Value::Num(_) | Value::Date(_) | Value::Task(_)
        )
    }

    /// Drops a value, skipping the drop code for scalars.
    #[inline(always)]
    pub fn discard(self) {
        if self.is_scalar() {
            std::mem::forget(self);
        } else {
            drop(self);
        }
    }
}

static YES: LazyLock<Bytes> = LazyLock::new(|| Bytes::from("YES"));

impl Value {
    /// The true-value, the string `"YES"` (CGPL.md §0.3).
    pub fn yes() -> Value {
        Value::Str(YES.clone())
    }

    /// `"YES"` for true, null for false.
    pub fn from_bool(condition: bool) -> Value {
        if condition {
            Value::yes()
        } else {
            Value::Null
        }
    }

    /// A string value from text.
    pub fn str(text: &str) -> Value {
        Value::Str(Bytes::from(text))
    }

    /// A string value from bytes.
    pub fn string_from_bytes(bytes: Vec<u8>) -> Value {
        Value::Str(Bytes::from_vec(bytes))
    }

    /// A datablock value.
    pub fn data(bytes: Vec<u8>) -> Value {
        Value::Data(Bytes::from_vec(bytes))
    }

    /// Whether this is null.
    #[inline]
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Truth in conditions: everything but null is true.
    #[inline]
    pub fn is_true(&self) -> bool {
        !self.is_null()
    }

    /// Whether this is an array or a dictionary.
    #[inline]
    pub fn is_container(&self) -> bool {
        matches!(self, Value::Array(_) | Value::Dict(_))
    }

    /// The string's bytes, if this is a string.
    pub fn as_str_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(bytes) => Some(bytes.as_slice()),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_num(&self) -> Option<i64> {
        match self {
            Value::Num(number) => Some(*number),
            _ => None,
        }
    }

    /// What kind of value this is, for messages ("a string", "null"...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Num(_) => "a number",
            Value::Str(_) => "a string",
            Value::Date(_) => "a timestamp",
            Value::Data(_) => "a datablock",
            Value::Ip(_) => "an IP address",
            Value::Array(_) => "an array",
            Value::Dict(_) => "a dictionary",
            Value::Task(_) => "a task handle",
        }
    }

    /// `ObjectClass(x)`.
    pub fn class_name(&self) -> Option<&'static str> {
        Some(match self {
            Value::Null => return None,
            Value::Num(_) => "STNumber",
            Value::Str(_) => "STString",
            Value::Date(_) => "STDate",
            Value::Data(_) => "STData",
            Value::Ip(_) => "STIPAddress",
            Value::Array(_) => "STArray",
            Value::Dict(_) => "STDictionary",
            Value::Task(_) => "STTask",
        })
    }

    /// `Same(a, b)`: the same object, or both null, or both true-values.
    pub fn same(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Str(a), Value::Str(b)) => a.same(b) || (a.as_slice() == b"YES" && b.as_slice() == b"YES"),
            (Value::Data(a), Value::Data(b)) => a.same(b),
            (Value::Array(a), Value::Array(b)) => a.same(b),
            (Value::Dict(a), Value::Dict(b)) => a.same(b),
            (Value::Ip(a), Value::Ip(b)) => Arc::ptr_eq(a, b),
            // Numbers, timestamps and task handles are not objects with an
            // identity of their own: equal ones are the same.
            (Value::Num(a), Value::Num(b)) => a == b,
            (Value::Date(a), Value::Date(b)) => a == b,
            (Value::Task(a), Value::Task(b)) => a == b,
            _ => false,
        }
    }

    /// A deep copy of arrays and dictionaries (`Copy(x)`); other values are
    /// immutable and shared.
    pub fn deep_copy(&self) -> Result<Value, OpError> {
        ops::deep_copy(self, 0)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text::to_text(self))
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Value {
        Value::Num(number)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::str(text)
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Str(Bytes::from(text))
    }
}

impl From<Array> for Value {
    fn from(array: Array) -> Value {
        Value::Array(array)
    }
}

impl From<Dict> for Value {
    fn from(dict: Dict) -> Value {
        Value::Dict(dict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
    }

    #[test]
    fn a_container_cannot_hold_itself() {
        let outer = Array::new();
        let inner = Dict::new();
        outer.push(Value::Dict(inner.clone())).unwrap();
        let refused = inner.set(Bytes::from("loop"), Value::Array(outer.clone()));
        assert_eq!(refused, Err(ContainerError::Cycle));
        assert_eq!(
            outer.set(0, Value::Array(outer.clone())),
            Err(ContainerError::Cycle)
        );
    }

    #[test]
    fn dropping_a_deep_chain_does_not_recurse() {
        let mut chain = Value::Null;
        for _ in 0..1_000_000 {
            chain = Value::Array(Array::from_vec(vec![chain]));
        }
        drop(chain);
    }

    #[test]
    fn meter_counts_and_releases() {
        let before = meter::live();
        let text = Value::string_from_bytes(vec![b'x'; 1000]);
        assert!(meter::live() - before >= 1000);
        drop(text);
        assert_eq!(meter::live(), before);
    }
}
