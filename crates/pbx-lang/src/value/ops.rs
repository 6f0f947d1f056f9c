//! Operators on values (CGPL.md §3.2 and §0.5).

use std::cmp::Ordering;

use super::{Array, ContainerError, Dict, Value, REMOTE_FUTURE, REMOTE_PAST};
use crate::diagnostic::ErrorKind;

/// How deeply nested values may be walked (printing, copying, comparing).
pub const MAX_NESTING: usize = 1000;

/// Why an operation on values failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpError {
    pub kind: ErrorKind,
    pub message: String,
    pub help: Option<String>,
}

impl OpError {
    /// A type error.
    pub fn type_error(message: impl Into<String>) -> OpError {
        OpError {
            kind: ErrorKind::Type,
            message: message.into(),
            help: None,
        }
    }

    /// An arithmetic error.
    pub fn arithmetic(message: impl Into<String>) -> OpError {
        OpError {
            kind: ErrorKind::Arithmetic,
            message: message.into(),
            help: None,
        }
    }

    /// A built-in refusing its arguments.
    pub fn call(message: impl Into<String>) -> OpError {
        OpError {
            kind: ErrorKind::Call,
            message: message.into(),
            help: None,
        }
    }

    /// Adds advice.
    pub fn with_help(mut self, help: impl Into<String>) -> OpError {
        self.help = Some(help.into());
        self
    }

    pub(crate) fn too_deep() -> OpError {
        OpError {
            kind: ErrorKind::Limit,
            message: format!("value nested more than {MAX_NESTING} levels deep"),
            help: None,
        }
    }
}

impl From<ContainerError> for OpError {
    fn from(error: ContainerError) -> OpError {
        let help = match error {
            ContainerError::Cycle => Some("put a copy inside instead: `Copy(x)`".to_string()),
            _ => None,
        };
        OpError {
            kind: ErrorKind::Value,
            message: error.to_string(),
            help,
        }
    }
}

fn shift(time: i64, seconds: i64) -> Result<Value, OpError> {
    if time == REMOTE_PAST || time == REMOTE_FUTURE {
        return Ok(Value::Date(time));
    }
    time.checked_add(seconds)
        .filter(|shifted| *shifted != REMOTE_PAST && *shifted != REMOTE_FUTURE)
        .map(Value::Date)
        .ok_or_else(|| OpError::arithmetic("timestamp out of range"))
}

fn overflow(op: &str) -> OpError {
    OpError::arithmetic(format!("number overflow in `{op}`")).with_help("numbers are 64-bit signed integers")
}

/// `left + right`, consuming `left` so that a string held only by the
/// variable being assigned can grow in place.
pub fn add(left: Value, right: &Value) -> Result<Value, OpError> {
    match (left, right) {
        (Value::Num(a), Value::Num(b)) => a.checked_add(*b).map(Value::Num).ok_or_else(|| overflow("+")),
        (Value::Str(mut a), Value::Str(b)) => {
            a.append(b.as_slice());
            Ok(Value::Str(a))
        }
        (Value::Data(mut a), Value::Data(b)) => {
            a.append(b.as_slice());
            Ok(Value::Data(a))
        }
        (Value::Date(time), Value::Num(seconds)) => shift(time, *seconds),
        (Value::Num(seconds), Value::Date(time)) => shift(*time, seconds),
        (left, right) => Err(mismatch("+", &left, right)),
    }
}

/// `left - right`.
pub fn sub(left: &Value, right: &Value) -> Result<Value, OpError> {
    match (left, right) {
        (Value::Num(a), Value::Num(b)) => a.checked_sub(*b).map(Value::Num).ok_or_else(|| overflow("-")),
        (Value::Date(time), Value::Num(seconds)) => {
            let seconds = seconds.checked_neg().ok_or_else(|| overflow("-"))?;
            shift(*time, seconds)
        }
        (Value::Date(a), Value::Date(b)) => a.checked_sub(*b).map(Value::Num).ok_or_else(|| overflow("-")),
        _ => Err(mismatch("-", left, right)),
    }
}

/// `*`, `/` and `%` on numbers.
pub fn arithmetic(op: char, left: &Value, right: &Value) -> Result<Value, OpError> {
    let (Value::Num(a), Value::Num(b)) = (left, right) else {
        return Err(mismatch(&op.to_string(), left, right));
    };
    let result = match op {
        '*' => a.checked_mul(*b),
        '/' if *b == 0 => return Err(OpError::arithmetic("division by zero")),
        '%' if *b == 0 => return Err(OpError::arithmetic("remainder of a division by zero")),
        '/' => a.checked_div(*b),
        // The remainder always fits, even of the smallest number by -1.
        _ => Some(a.wrapping_rem(*b)),
    };
    result.map(Value::Num).ok_or_else(|| overflow(&op.to_string()))
}

/// Unary minus.
pub fn negate(operand: &Value) -> Result<Value, OpError> {
    match operand {
        Value::Num(number) => number.checked_neg().map(Value::Num).ok_or_else(|| overflow("-")),
        other => Err(OpError::type_error(format!(
            "cannot negate {}",
            other.type_name()
        ))),
    }
}

/// Unary plus: numbers only.
pub fn plus(operand: &Value) -> Result<Value, OpError> {
    match operand {
        Value::Num(_) => Ok(operand.clone()),
        other => Err(OpError::type_error(format!(
            "unary `+` needs a number, not {}",
            other.type_name()
        ))),
    }
}

fn mismatch(op: &str, left: &Value, right: &Value) -> OpError {
    let error = OpError::type_error(format!(
        "cannot apply `{op}` to {} and {}",
        left.type_name(),
        right.type_name()
    ));
    match (op, left, right) {
        ("+", Value::Str(_), Value::Num(_)) | ("+", Value::Num(_), Value::Str(_)) => {
            error.with_help("there is no implicit conversion: write `String(n)` or `Number(s)`")
        }
        (_, Value::Null, _) | (_, _, Value::Null) => error.with_help(
            "null is what a variable holds before it is assigned, and what a missing key or element reads as",
        ),
        _ => error,
    }
}

/// Orders two values for `<`, `<=`, `>`, `>=`, `Min`, `Max`.
pub fn compare(left: &Value, right: &Value) -> Result<Ordering, OpError> {
    match (left, right) {
        (Value::Num(a), Value::Num(b)) => Ok(a.cmp(b)),
        (Value::Str(a), Value::Str(b)) | (Value::Data(a), Value::Data(b)) => {
            Ok(a.as_slice().cmp(b.as_slice()))
        }
        (Value::Date(a), Value::Date(b)) => Ok(a.cmp(b)),
        _ => Err(OpError::type_error(format!(
            "cannot compare {} with {}",
            left.type_name(),
            right.type_name()
        ))),
    }
}

/// `==`: equal values of the same type; arrays and dictionaries compare
/// element by element.
pub fn equals(left: &Value, right: &Value) -> Result<bool, OpError> {
    equals_at(left, right, 0)
}

fn equals_at(left: &Value, right: &Value, depth: usize) -> Result<bool, OpError> {
    if depth > MAX_NESTING {
        return Err(OpError::too_deep());
    }
    Ok(match (left, right) {
        (Value::Null, Value::Null) => true,
        (Value::Num(a), Value::Num(b)) => a == b,
        (Value::Str(a), Value::Str(b)) | (Value::Data(a), Value::Data(b)) => a.as_slice() == b.as_slice(),
        (Value::Date(a), Value::Date(b)) => a == b,
        (Value::Ip(a), Value::Ip(b)) => a == b,
        (Value::Task(a), Value::Task(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => {
            if a.same(b) {
                return Ok(true);
            }
            let (a, b) = (a.items(), b.items());
            if a.len() != b.len() {
                return Ok(false);
            }
            for (x, y) in a.iter().zip(b.iter()) {
                if !equals_at(x, y, depth + 1)? {
                    return Ok(false);
                }
            }
            true
        }
        (Value::Dict(a), Value::Dict(b)) => {
            if a.same(b) {
                return Ok(true);
            }
            if a.len() != b.len() {
                return Ok(false);
            }
            for (key, value) in a.entries() {
                if !equals_at(&value, &b.get(key.as_slice()), depth + 1)? {
                    return Ok(false);
                }
            }
            true
        }
        _ => false,
    })
}

pub(super) fn deep_copy(value: &Value, depth: usize) -> Result<Value, OpError> {
    if depth > MAX_NESTING {
        return Err(OpError::too_deep());
    }
    Ok(match value {
        Value::Array(array) => {
            let items = array
                .items()
                .iter()
                .map(|item| deep_copy(item, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Value::Array(Array::from_vec(items))
        }
        Value::Dict(dict) => {
            let copy = Dict::new();
            copy.set_ignore_case(dict.ignores_case());
            for (key, item) in dict.entries() {
                copy.set(key, deep_copy(&item, depth + 1)?)?;
            }
            Value::Dict(copy)
        }
        other => other.clone(),
    })
}
