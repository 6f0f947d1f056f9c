//! Numbers, random values, datablocks and IP addresses (CGPL.md §6.3).

use std::sync::Arc;

use super::{arg, function, Builtin, Ctx};
use crate::value::{text, OpError, Value};

pub(super) const TABLE: &[Builtin] = &[
    function("Number", 1, 1, "x", number),
    function("RandomNumber", 0, 0, "", random_number),
    function("RandomData", 1, 1, "n", random_data),
    function("EmptyData", 0, 0, "", |_, _| Ok(Value::data(Vec::new()))),
    function("IPAddress", 1, 1, "x", ip_address),
];

/// `Number(x)`: numbers as they are, the leading numeric part of a string
/// (`"123#"` → 123, `"-5 apples"` → -5), 0 for anything else. A numeric
/// part beyond the 64-bit range is 0 too.
pub(crate) fn to_number(value: &Value) -> i64 {
    match value {
        Value::Num(number) => *number,
        Value::Str(bytes) => {
            let bytes = bytes.as_slice();
            let start = bytes
                .iter()
                .position(|byte| !byte.is_ascii_whitespace())
                .unwrap_or(bytes.len());
            let bytes = &bytes[start..];
            let sign_length = usize::from(matches!(bytes.first(), Some(b'-' | b'+')));
            let digits = bytes[sign_length..]
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            std::str::from_utf8(&bytes[..sign_length + digits])
                .ok()
                .and_then(|text| text.parse().ok())
                .unwrap_or(0)
        }
        _ => 0,
    }
}

fn number(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    Ok(Value::Num(to_number(arg(args, 0))))
}

fn random_bytes(count: usize) -> Result<Vec<u8>, OpError> {
    let mut bytes = vec![0u8; count];
    getrandom::fill(&mut bytes).map_err(|error| OpError {
        kind: crate::ErrorKind::Internal,
        message: format!("the system's random source failed: {error}"),
        help: None,
    })?;
    Ok(bytes)
}

fn random_number(_: &mut Ctx<'_>, _: &[Value]) -> Result<Value, OpError> {
    let bytes = random_bytes(8)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes);
    Ok(Value::Num((u64::from_le_bytes(word) >> 1) as i64))
}

fn random_data(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    match arg(args, 0) {
        Value::Num(count @ 1..=4096) => Ok(Value::data(random_bytes(*count as usize)?)),
        Value::Num(count) => Err(OpError::call(format!(
            "RandomData: the size must be from 1 to 4096, not {count}"
        ))),
        other => Err(OpError::call(format!(
            "RandomData: the size must be a number from 1 to 4096, not {}",
            other.type_name()
        ))),
    }
}

fn ip_address(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    Ok(match arg(args, 0) {
        Value::Ip(_) => arg(args, 0).clone(),
        Value::Str(bytes) => std::str::from_utf8(bytes.as_slice())
            .ok()
            .and_then(text::parse_ip)
            .map_or(Value::Null, |endpoint| Value::Ip(Arc::new(endpoint))),
        _ => Value::Null,
    })
}
