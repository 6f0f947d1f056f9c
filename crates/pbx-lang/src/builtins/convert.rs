//! Conversions and encodings (CGPL.md §6.7).

use base64::Engine as _;

use super::{arg, function, Builtin, Ctx};
use crate::value::{json, text, Array, OpError, Value};

pub(super) const TABLE: &[Builtin] = &[
    function("ObjectToString", 1, 1, "x", |_, args| {
        Ok(Value::from(text::object_to_string(arg(args, 0))?))
    }),
    function("ToObject", 1, 1, "text", to_object),
    function("ObjectToJSON", 1, 1, "x", |_, args| {
        Ok(Value::from(json::to_json(arg(args, 0))?))
    }),
    function("JSONToObject", 1, 1, "text", json_to_object),
    function("Base64Encode", 1, 1, "data", base64_encode),
    function("Base64Decode", 1, 1, "text", base64_decode),
    function("Convert", 2, 2, "data, format", convert),
];

/// Parses a string or datablock argument with `parse`; text that does not
/// parse gives null, other types are an error.
fn parse_text(args: &[Value], name: &str, parse: fn(&[u8]) -> Option<Value>) -> Result<Value, OpError> {
    match arg(args, 0) {
        Value::Str(bytes) | Value::Data(bytes) => Ok(parse(bytes.as_slice()).unwrap_or(Value::Null)),
        Value::Null => Ok(Value::Null),
        other => Err(OpError::call(format!(
            "{name}: argument 1 must be a string or a datablock, not {}",
            other.type_name()
        ))),
    }
}

fn to_object(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    parse_text(args, "ToObject", text::parse_object)
}

fn json_to_object(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    parse_text(args, "JSONToObject", json::from_json)
}

fn base64_encode(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    Ok(match arg(args, 0) {
        Value::Str(bytes) | Value::Data(bytes) => {
            Value::from(base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()))
        }
        _ => Value::Null,
    })
}

fn base64_decode(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    Ok(match arg(args, 0) {
        Value::Str(bytes) => base64_decode_bytes(bytes.as_slice()),
        _ => Value::Null,
    })
}

/// `Convert(data, format)`: a datablock (or string) is encoded into the
/// format's text; a string is decoded from it. Unknown formats give null.
fn convert(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let Some(format) = arg(args, 1).as_str_bytes() else {
        return Ok(Value::Null);
    };
    let format = String::from_utf8_lossy(format).to_ascii_lowercase();
    let subject = arg(args, 0);
    let decoding = matches!(subject, Value::Str(_));
    Ok(match (format.as_str(), subject) {
        ("base64", Value::Str(bytes)) => base64_decode_bytes(bytes.as_slice()),
        ("base64", Value::Data(bytes)) => {
            Value::from(base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()))
        }
        ("hex", Value::Str(bytes)) => hex_decode(bytes.as_slice()),
        ("hex", Value::Data(bytes)) => {
            let uppercase = arg(args, 1).as_str_bytes() == Some(b"HEX");
            Value::from(hex_encode(bytes.as_slice(), uppercase))
        }
        ("utfcode", Value::Str(bytes)) => bytes
            .to_str()
            .and_then(|text| text.chars().next())
            .map_or(Value::Null, |c| Value::Num(i64::from(u32::from(c)))),
        ("utfcode", Value::Num(code)) => u32::try_from(*code)
            .ok()
            .and_then(char::from_u32)
            // Strings hold no NUL (CGPL.md §4).
            .filter(|c| *c != '\0')
            .map_or(Value::Null, |c| Value::from(c.to_string())),
        ("words", Value::Str(bytes)) => {
            let words = bytes
                .as_slice()
                .split(|byte| byte.is_ascii_whitespace())
                .filter(|word| !word.is_empty())
                .map(|word| Value::string_from_bytes(word.to_vec()))
                .collect();
            Value::Array(Array::from_vec(words))
        }
        ("utf-8" | "utf8", Value::Str(bytes)) => Value::Data(bytes.clone()),
        ("utf-8" | "utf8", Value::Data(bytes)) => Value::Str(bytes.clone()),
        ("iso-8859-1" | "latin1" | "latin-1", _) | ("us-ascii" | "ascii", _) => {
            single_byte(subject, decoding, format.contains("ascii"))
        }
        _ => Value::Null,
    })
}

fn base64_decode_bytes(bytes: &[u8]) -> Value {
    let cleaned: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned)
        .map_or(Value::Null, Value::data)
}

fn hex_encode(bytes: &[u8], uppercase: bool) -> String {
    bytes
        .iter()
        .map(|byte| {
            if uppercase {
                format!("{byte:02X}")
            } else {
                format!("{byte:02x}")
            }
        })
        .collect()
}

fn hex_decode(text: &[u8]) -> Value {
    let digits: Vec<u8> = text
        .iter()
        .copied()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    if !digits.len().is_multiple_of(2) || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Value::Null;
    }
    let mut out = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks(2) {
        let Some(byte) = std::str::from_utf8(pair)
            .ok()
            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        else {
            return Value::Null;
        };
        out.push(byte);
    }
    Value::data(out)
}

/// Latin-1 / ASCII: a string becomes a datablock in the charset (characters
/// it cannot hold become `?`); a datablock in the charset becomes a string.
fn single_byte(subject: &Value, decoding: bool, ascii: bool) -> Value {
    let limit = if ascii { 0x7f } else { 0xff };
    match subject {
        Value::Str(bytes) if decoding => Value::data(
            bytes
                .to_str_lossy()
                .chars()
                .map(|c| {
                    if u32::from(c) <= limit {
                        u32::from(c) as u8
                    } else {
                        b'?'
                    }
                })
                .collect(),
        ),
        Value::Data(bytes) => Value::from(
            bytes
                .as_slice()
                .iter()
                .map(|&byte| {
                    if u32::from(byte) <= limit {
                        char::from(byte)
                    } else {
                        '?'
                    }
                })
                .collect::<String>(),
        ),
        _ => Value::Null,
    }
}
