//! JSON for `ObjectToJSON` and `JSONToObject`.
//!
//! Mapping: null ↔ `null`; numbers ↔ integers (JSON numbers with a fraction
//! or exponent, or out of the 64-bit range, become strings of their text);
//! `true` → `"YES"`, `false` → null; timestamps → RFC 822 strings;
//! datablocks → base64 strings; IP addresses → `"[a.b.c.d]:port"` strings;
//! task handles → their number as a string. A JSON object member whose value
//! is null is left out, since a dictionary cannot hold null.

use std::fmt::Write as _;

use base64::Engine as _;

use super::ops::{OpError, MAX_NESTING};
use super::{text, time, Array, Bytes, Dict, Value};

/// The JSON text of `value`.
pub fn to_json(value: &Value) -> Result<String, OpError> {
    let mut out = String::new();
    write(&mut out, value, 0)?;
    Ok(out)
}

fn write_string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for character in String::from_utf8_lossy(bytes).chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write(out: &mut String, value: &Value, depth: usize) -> Result<(), OpError> {
    if depth > MAX_NESTING {
        return Err(OpError::too_deep());
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Num(number) => {
            let _ = write!(out, "{number}");
        }
        Value::Str(bytes) => write_string(out, bytes.as_slice()),
        Value::Date(seconds) => write_string(out, time::format_rfc822(*seconds).as_bytes()),
        Value::Data(bytes) => write_string(
            out,
            base64::engine::general_purpose::STANDARD
                .encode(bytes.as_slice())
                .as_bytes(),
        ),
        Value::Ip(endpoint) => write_string(out, text::ip_text(endpoint).as_bytes()),
        Value::Task(task) => write_string(out, task.0.to_string().as_bytes()),
        Value::Array(array) => {
            out.push('[');
            for (index, item) in array.items().iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write(out, item, depth + 1)?;
            }
            out.push(']');
        }
        Value::Dict(dict) => {
            out.push('{');
            for (index, (key, item)) in dict.entries().iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(out, key.as_slice());
                out.push(':');
                write(out, item, depth + 1)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// Parses JSON text; `None` when it is not valid JSON.
pub fn from_json(text: &[u8]) -> Option<Value> {
    let mut parser = JsonParser { text, position: 0 };
    let value = parser.value(0)?;
    parser.skip_space();
    (parser.position == text.len()).then_some(value)
}

struct JsonParser<'a> {
    text: &'a [u8],
    position: usize,
}

impl JsonParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.position).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.position += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        let found = self.peek() == Some(byte);
        if found {
            self.position += 1;
        }
        found
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let found = self.text[self.position..].starts_with(word);
        if found {
            self.position += word.len();
        }
        found
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_NESTING {
            return None;
        }
        self.skip_space();
        match self.peek()? {
            b'n' => self.literal(b"null").then_some(Value::Null),
            b't' => self.literal(b"true").then(Value::yes),
            b'f' => self.literal(b"false").then_some(Value::Null),
            b'"' => self.string().map(Value::Str),
            b'[' => {
                self.position += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Value::Array(Array::from_vec(items)))
            }
            b'{' => {
                self.position += 1;
                let dict = Dict::new();
                if !self.eat(b'}') {
                    loop {
                        self.skip_space();
                        if self.peek()? != b'"' {
                            return None;
                        }
                        let key = self.string()?;
                        if !self.eat(b':') {
                            return None;
                        }
                        let value = self.value(depth + 1)?;
                        dict.set(key, value).ok()?;
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Value::Dict(dict))
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.position;
        if self.peek() == Some(b'-') {
            self.position += 1;
        }
        let digits_start = self.position;
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.position += 1;
        }
        if self.position == digits_start {
            return None;
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            integral = false;
            self.position += 1;
            let fraction_start = self.position;
            while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
                self.position += 1;
            }
            if self.position == fraction_start {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integral = false;
            self.position += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.position += 1;
            }
            let exponent_start = self.position;
            while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
                self.position += 1;
            }
            if self.position == exponent_start {
                return None;
            }
        }
        let text = std::str::from_utf8(&self.text[start..self.position]).ok()?;
        if integral {
            if let Ok(number) = text.parse::<i64>() {
                return Some(Value::Num(number));
            }
        }
        Some(Value::str(text))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.position..self.position + 4)?;
        let value = u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
        self.position += 4;
        Some(value)
    }

    fn string(&mut self) -> Option<Bytes> {
        self.position += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let byte = self.peek()?;
            self.position += 1;
            match byte {
                b'"' => return Some(Bytes::from_vec(out)),
                b'\\' => {
                    let code = self.peek()?;
                    self.position += 1;
                    let character = match code {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let first = self.hex4()?;
                            let code_point = if (0xD800..0xDC00).contains(&first) {
                                if !self.literal(b"\\u") {
                                    return None;
                                }
                                let second = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&second) {
                                    return None;
                                }
                                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                            } else {
                                first
                            };
                            // Strings hold no NUL byte (CGPL.md §4).
                            char::from_u32(code_point).filter(|c| *c != '\0')?
                        }
                        _ => return None,
                    };
                    let mut buffer = [0u8; 4];
                    out.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
                }
                control if control < 0x20 => return None,
                other => out.push(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_objects_in_order() {
        let text = r#"{"b":1,"a":[true,"x\n",-5],"c":{"d":"é"}}"#;
        let value = from_json(text.as_bytes()).unwrap();
        assert_eq!(
            to_json(&value).unwrap(),
            r#"{"b":1,"a":["YES","x\n",-5],"c":{"d":"é"}}"#
        );
    }

    #[test]
    fn rejects_bad_json() {
        for bad in ["{", "[1,]", "01x", "\"\\q\"", "{\"a\" 1}", "nul"] {
            assert!(from_json(bad.as_bytes()).is_none(), "{bad}");
        }
    }
}
