//! String built-ins (CGPL.md §6.2), and the address conversions of §6.8
//! that need no server.

use std::cmp::Ordering;

use super::{arg, function, number_arg, procedure, string_arg, Builtin, Ctx};
use crate::value::{text, time, Array, OpError, Value};

pub(super) const TABLE: &[Builtin] = &[
    function("String", 1, 1, "x", string),
    function("Substring", 3, 3, "str, from, len", substring),
    function("Range", 3, 3, "str, from, len", range),
    function("FindSubstring", 2, 3, "str, sub [, offset]", find_substring),
    function("EOL", 0, 0, "", |_, _| Ok(Value::str("\n"))),
    function("CRLF", 0, 0, "", |_, _| Ok(Value::str("\r\n"))),
    function("ToUpperCase", 1, 1, "str", |_, args| {
        change_case(args, "ToUpperCase", true)
    }),
    function("ToLowerCase", 1, 1, "str", |_, args| {
        change_case(args, "ToLowerCase", false)
    }),
    function("IsDigit", 1, 1, "str", is_digit),
    function("IsWhiteSpaces", 1, 1, "str", is_white_spaces),
    function("FindRegEx", 2, 2, "str, regex", find_regex),
    function("EmailDomainPart", 1, 1, "address", email_domain_part),
    function("EmailUserPart", 1, 1, "address", email_user_part),
    procedure("SortStrings", 1, 1, "array", sort_strings),
    function("SIPURIToEmail", 1, 1, "uri", sip_uri_to_email),
    function("EmailToSIPURI", 1, 1, "address", email_to_sip_uri),
];

/// `String(x)` (CGPL.md §4).
pub(crate) fn to_string_value(value: &Value) -> Result<Value, OpError> {
    Ok(match value {
        Value::Null => Value::Null,
        Value::Str(_) => value.clone(),
        Value::Num(number) => Value::from(number.to_string()),
        Value::Data(bytes) => Value::Str(bytes.clone()),
        Value::Date(seconds) => Value::from(time::format_plain(*seconds)),
        Value::Ip(endpoint) => Value::from(match endpoint.port {
            Some(_) => text::ip_text(endpoint),
            None => endpoint.address.to_string(),
        }),
        other => Value::from(text::object_to_string(other)?),
    })
}

fn string(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    to_string_value(arg(args, 0))
}

/// The `[start, end)` of a slice given CG/PL's `from` and `len` over a
/// sequence of `total` units: a negative `from` makes the slice end at
/// position `-1 - from` counted from the end.
fn slice_bounds(total: usize, from: i64, len: i64) -> Option<(usize, usize)> {
    if len < 0 {
        return None;
    }
    let total = total as i64;
    let (start, end) = if from >= 0 {
        (from, from.saturating_add(len))
    } else {
        let end = total.saturating_add(1).saturating_add(from);
        (end.saturating_sub(len), end)
    };
    let start = start.clamp(0, total);
    let end = end.clamp(start, total);
    Some((start as usize, end as usize))
}

fn substring(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let (Value::Str(text), Value::Num(from), Value::Num(len)) = (arg(args, 0), arg(args, 1), arg(args, 2))
    else {
        return Ok(Value::Null);
    };
    let Some((start, end)) = slice_bounds(text.len(), *from, *len) else {
        return Ok(Value::Null);
    };
    Ok(Value::string_from_bytes(text.as_slice()[start..end].to_vec()))
}

fn range(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let (Value::Num(from), Value::Num(len)) = (arg(args, 1), arg(args, 2)) else {
        return Ok(Value::Null);
    };
    match arg(args, 0) {
        Value::Data(bytes) => {
            let Some((start, end)) = slice_bounds(bytes.len(), *from, *len) else {
                return Ok(Value::Null);
            };
            Ok(Value::data(bytes.as_slice()[start..end].to_vec()))
        }
        Value::Str(bytes) => {
            // Characters are UTF-8 sequences; a byte that is not part of
            // one counts as a character of its own and is kept as it is.
            let bytes = bytes.as_slice();
            let mut boundaries = Vec::with_capacity(bytes.len() + 1);
            let mut offset = 0;
            for chunk in bytes.utf8_chunks() {
                for (index, _) in chunk.valid().char_indices() {
                    boundaries.push(offset + index);
                }
                offset += chunk.valid().len();
                for _ in chunk.invalid() {
                    boundaries.push(offset);
                    offset += 1;
                }
            }
            boundaries.push(bytes.len());
            let Some((start, end)) = slice_bounds(boundaries.len() - 1, *from, *len) else {
                return Ok(Value::Null);
            };
            Ok(Value::string_from_bytes(
                bytes[boundaries[start]..boundaries[end]].to_vec(),
            ))
        }
        _ => Ok(Value::Null),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(haystack.len());
    }
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}

/// CGPL.md §0.16: a positive offset starts the search there; a negative
/// one searches only the first `Length(str) + offset` bytes for the last
/// match.
fn find_substring(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let haystack = string_arg(args, 0, "FindSubstring")?;
    let needle = string_arg(args, 1, "FindSubstring")?;
    let offset = match arg(args, 2) {
        Value::Null => 0,
        _ => number_arg(args, 2, "FindSubstring")?,
    };
    let found = if offset >= 0 {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        haystack
            .get(start..)
            .and_then(|rest| find(rest, needle))
            .map(|position| position + start)
    } else {
        let keep = (haystack.len() as i64).saturating_add(offset).max(0) as usize;
        rfind(&haystack[..keep], needle)
    };
    Ok(Value::Num(found.map_or(-1, |position| position as i64)))
}

fn change_case(args: &[Value], name: &str, upper: bool) -> Result<Value, OpError> {
    let bytes = string_arg(args, 0, name)?;
    let changed = match std::str::from_utf8(bytes) {
        Ok(text) if upper => text.to_uppercase().into_bytes(),
        Ok(text) => text.to_lowercase().into_bytes(),
        Err(_) if upper => bytes.to_ascii_uppercase(),
        Err(_) => bytes.to_ascii_lowercase(),
    };
    Ok(Value::string_from_bytes(changed))
}

fn is_digit(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    Ok(Value::from_bool(matches!(
        arg(args, 0).as_str_bytes(),
        Some([digit]) if digit.is_ascii_digit()
    )))
}

fn is_white_spaces(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    Ok(Value::from_bool(arg(args, 0).as_str_bytes().is_some_and(
        |bytes| {
            bytes
                .iter()
                .all(|byte| matches!(byte, b' ' | b'\t' | b'\r' | b'\n'))
        },
    )))
}

/// Longest pattern `FindRegEx` compiles; bounds the work a script can cause.
const MAX_PATTERN: usize = 4096;

fn find_regex(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let (Some(text), Some(pattern)) = (arg(args, 0).as_str_bytes(), arg(args, 1).as_str_bytes()) else {
        return Ok(Value::Null);
    };
    let Ok(pattern) = std::str::from_utf8(pattern) else {
        return Ok(Value::Null);
    };
    if pattern.len() > MAX_PATTERN {
        return Ok(Value::Null);
    }
    let Ok(regex) = regex::bytes::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
    else {
        return Ok(Value::Null);
    };
    let Some(captures) = regex.captures(text) else {
        return Ok(Value::Null);
    };
    let groups = captures
        .iter()
        .map(|group| Value::string_from_bytes(group.map_or_else(Vec::new, |m| m.as_bytes().to_vec())))
        .collect();
    Ok(Value::Array(Array::from_vec(groups)))
}

fn email_domain_part(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    Ok(arg(args, 0)
        .as_str_bytes()
        .and_then(|address| {
            address
                .iter()
                .position(|&byte| byte == b'@')
                .map(|at| &address[at + 1..])
        })
        .map_or(Value::Null, |domain| Value::string_from_bytes(domain.to_vec())))
}

fn email_user_part(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    Ok(arg(args, 0).as_str_bytes().map_or(Value::Null, |address| {
        let end = address
            .iter()
            .position(|&byte| byte == b'@')
            .unwrap_or(address.len());
        Value::string_from_bytes(address[..end].to_vec())
    }))
}

fn sort_strings(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let Value::Array(array) = arg(args, 0) else {
        return Err(OpError::call(format!(
            "SortStrings: argument 1 must be an array, not {}",
            arg(args, 0).type_name()
        )));
    };
    if let Some(bad) = array.items().iter().find(|item| !matches!(item, Value::Str(_))) {
        return Err(OpError::call(format!(
            "SortStrings: every element must be a string; found {}",
            bad.type_name()
        )));
    }
    let folded = |value: &Value| -> String {
        value
            .as_str_bytes()
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
            .to_lowercase()
    };
    array.sort_by(|a, b| folded(a).cmp(&folded(b)).then_with(|| compare_bytes(a, b)));
    Ok(Value::Null)
}

fn compare_bytes(a: &Value, b: &Value) -> Ordering {
    a.as_str_bytes().cmp(&b.as_str_bytes())
}

/// `sip:user@host;params` (or `<sip:…>`, or `"Name" <sip:…>`) → `user@host`:
/// the password of `user:password@host` and the port are dropped.
fn sip_uri_to_email(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let Some(uri) = arg(args, 0).as_str_bytes().map(String::from_utf8_lossy) else {
        return Ok(Value::Null);
    };
    let inner = match (uri.find('<'), uri.rfind('>')) {
        (Some(open), Some(close)) if open < close => &uri[open + 1..close],
        _ => uri.trim(),
    };
    let lower = inner.to_ascii_lowercase();
    let rest = if lower.starts_with("sips:") {
        &inner[5..]
    } else if lower.starts_with("sip:") {
        &inner[4..]
    } else {
        return Ok(Value::Null);
    };
    let address = rest.split([';', '?']).next().unwrap_or("");
    let (user, host) = match address.rfind('@') {
        Some(at) => {
            let user = &address[..at];
            (Some(user.split(':').next().unwrap_or(user)), &address[at + 1..])
        }
        None => (None, address),
    };
    let host = if host.starts_with('[') {
        // An IPv6 reference keeps its colons; a port follows the `]`.
        match host.find(']') {
            Some(close) => &host[..=close],
            None => return Ok(Value::Null),
        }
    } else {
        host.split(':').next().unwrap_or("")
    };
    if host.is_empty() || user.is_some_and(str::is_empty) {
        return Ok(Value::Null);
    }
    Ok(Value::from(match user {
        Some(user) => format!("{user}@{host}"),
        None => host.to_string(),
    }))
}

fn email_to_sip_uri(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    Ok(arg(args, 0).as_str_bytes().map_or(Value::Null, |address| {
        let text = String::from_utf8_lossy(address);
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c == '<' || c == '>') {
            Value::Null
        } else if text.to_ascii_lowercase().starts_with("sip:")
            || text.to_ascii_lowercase().starts_with("sips:")
        {
            Value::from(text.into_owned())
        } else {
            Value::from(format!("sip:{text}"))
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::slice_bounds;

    #[test]
    fn negative_from_ends_the_slice_from_the_end() {
        assert_eq!(slice_bounds(6, -1, 2), Some((4, 6)));
        assert_eq!(slice_bounds(6, -2, 2), Some((3, 5)));
        assert_eq!(slice_bounds(6, -1, 10), Some((0, 6)));
        assert_eq!(slice_bounds(6, 7, 2), Some((6, 6)));
        assert_eq!(slice_bounds(6, 0, -1), None);
    }
}
