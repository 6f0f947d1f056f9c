//! The textual form of values (`ObjectToString` / `ToObject`), after
//! CommuniGate Pro's data format: `abc`, `"a b"`, `#12`, `#T24-10-2008_10:51:24`,
//! `[base64]`, `#I[10.0.1.77]:1812`, `(a, b)`, `{k = v; k2 = v2;}`, `#null#`.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;

use super::ops::{OpError, MAX_NESTING};
use super::{time, Array, Bytes, Dict, IpEndpoint, Value};

/// The textual form of `value`. Nesting past [`MAX_NESTING`] is an error.
pub fn object_to_string(value: &Value) -> Result<String, OpError> {
    let mut out = String::new();
    write_value(&mut out, value, 0)?;
    Ok(out)
}

/// The textual form, with `…` standing for anything nested too deeply
/// (for messages and debugging, where an error would not help).
pub fn to_text(value: &Value) -> String {
    object_to_string(value).unwrap_or_else(|_| "…".into())
}

/// The text `SysLog` writes: strings as they are, other values in their
/// textual form (CGPL.md §0.18).
pub fn log_text(value: &Value) -> Result<String, OpError> {
    match value {
        Value::Str(bytes) => Ok(bytes.to_str_lossy().into_owned()),
        other => object_to_string(other),
    }
}

/// Whether `bytes` can be written without quotes.
fn is_atom(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(u8::is_ascii_alphanumeric)
}

/// Writes `bytes` as an atom or a quoted string.
pub fn write_string(out: &mut String, bytes: &[u8]) {
    if is_atom(bytes) {
        // Atoms are ASCII.
        out.extend(bytes.iter().map(|&byte| byte as char));
        return;
    }
    out.push('"');
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, invalid) = match std::str::from_utf8(rest) {
            Ok(text) => (text, &[][..]),
            Err(error) => {
                let (good, bad) = rest.split_at(error.valid_up_to());
                let bad_length = error.error_len().unwrap_or(bad.len());
                // The prefix was just checked to be UTF-8.
                (std::str::from_utf8(good).unwrap_or(""), &bad[..bad_length])
            }
        };
        for character in valid.chars() {
            match character {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\{:03}", c as u32));
                }
                c => out.push(c),
            }
        }
        for byte in invalid {
            out.push_str(&format!("\\{byte:03}"));
        }
        rest = &rest[valid.len() + invalid.len()..];
    }
    out.push('"');
}

fn write_value(out: &mut String, value: &Value, depth: usize) -> Result<(), OpError> {
    if depth > MAX_NESTING {
        return Err(OpError::too_deep());
    }
    match value {
        Value::Null => out.push_str("#null#"),
        Value::Num(number) => {
            out.push('#');
            out.push_str(&number.to_string());
        }
        Value::Str(bytes) => write_string(out, bytes.as_slice()),
        Value::Date(seconds) => {
            out.push_str("#T");
            out.push_str(&time::format_plain(*seconds));
        }
        Value::Data(bytes) => {
            out.push('[');
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()));
            out.push(']');
        }
        Value::Ip(endpoint) => {
            out.push_str("#I");
            out.push_str(&ip_text(endpoint));
        }
        Value::Array(array) => {
            out.push('(');
            for (index, item) in array.items().iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_value(out, item, depth + 1)?;
            }
            out.push(')');
        }
        Value::Dict(dict) => {
            out.push('{');
            for (index, (key, item)) in dict.entries().iter().enumerate() {
                if index > 0 {
                    out.push(' ');
                }
                write_string(out, key.as_slice());
                out.push_str(" = ");
                write_value(out, item, depth + 1)?;
                out.push(';');
            }
            out.push('}');
        }
        Value::Task(task) => {
            out.push_str(&format!("#Task[{}]", task.0));
        }
    }
    Ok(())
}

/// `[10.0.1.77]:1812`, `[::1]`.
pub fn ip_text(endpoint: &IpEndpoint) -> String {
    match endpoint.port {
        Some(port) => format!("[{}]:{port}", endpoint.address),
        None => format!("[{}]", endpoint.address),
    }
}

/// Parses an IP address with an optional port: `10.0.1.77`, `[10.0.1.77]:1812`,
/// `10.0.1.77:1812`, `[::1]:5060`, `::1`.
pub fn parse_ip(text: &str) -> Option<IpEndpoint> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        let address: IpAddr = address.parse().ok()?;
        let port = match after {
            "" => None,
            port => Some(port.strip_prefix(':')?.parse().ok()?),
        };
        return Some(IpEndpoint { address, port });
    }
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(IpEndpoint { address, port: None });
    }
    let (address, port) = text.rsplit_once(':')?;
    Some(IpEndpoint {
        address: address.parse::<std::net::Ipv4Addr>().ok()?.into(),
        port: Some(port.parse().ok()?),
    })
}

/// Parses the textual form; `None` when the text is not one value.
pub fn parse_object(text: &[u8]) -> Option<Value> {
    let mut parser = TextParser { text, position: 0 };
    let value = parser.value(0)?;
    parser.skip_space();
    (parser.position == text.len()).then_some(value)
}

struct TextParser<'a> {
    text: &'a [u8],
    position: usize,
}

impl TextParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.position).copied()
    }

    fn skip_space(&mut self) {
        while let Some(byte) = self.peek() {
            if byte.is_ascii_whitespace() {
                self.position += 1;
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        if self.peek() == Some(byte) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_NESTING {
            return None;
        }
        self.skip_space();
        match self.peek()? {
            b'"' => self.quoted().map(Value::Str),
            b'#' => self.hashed(),
            b'[' => {
                self.position += 1;
                let start = self.position;
                while self.peek()? != b']' {
                    self.position += 1;
                }
                let encoded: Vec<u8> = self.text[start..self.position]
                    .iter()
                    .copied()
                    .filter(|byte| !byte.is_ascii_whitespace())
                    .collect();
                self.position += 1;
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
                    .map(Value::data)
            }
            b'(' => {
                self.position += 1;
                let mut items = Vec::new();
                if self.eat(b')') {
                    return Some(Value::Array(Array::from_vec(items)));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b')') {
                        return Some(Value::Array(Array::from_vec(items)));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'{' => {
                self.position += 1;
                let dict = Dict::new();
                loop {
                    if self.eat(b'}') {
                        return Some(Value::Dict(dict));
                    }
                    self.skip_space();
                    let key = match self.peek()? {
                        b'"' => self.quoted()?,
                        _ => Bytes::copy_from(self.atom()?),
                    };
                    if !self.eat(b'=') {
                        return None;
                    }
                    let value = self.value(depth + 1)?;
                    dict.set(key, value).ok()?;
                    if !self.eat(b';') {
                        // The last `;` may be left out.
                        return self.eat(b'}').then_some(Value::Dict(dict));
                    }
                }
            }
            _ => self.atom().map(Bytes::copy_from).map(Value::Str),
        }
    }

    /// Atoms: letters and digits (and, leniently on input, `.`, `_`, `-`, `@`).
    fn atom(&mut self) -> Option<&[u8]> {
        let start = self.position;
        while let Some(byte) = self.peek() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'@') {
                self.position += 1;
            } else {
                break;
            }
        }
        (self.position > start).then(|| &self.text[start..self.position])
    }

    fn quoted(&mut self) -> Option<Bytes> {
        self.position += 1;
        let mut out = Vec::new();
        loop {
            let byte = self.peek()?;
            self.position += 1;
            match byte {
                b'"' => return Some(Bytes::from_vec(out)),
                b'\\' => {
                    let code = self.peek()?;
                    self.position += 1;
                    match code {
                        b'"' | b'\\' => out.push(code),
                        b'r' => out.push(b'\r'),
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'e' => out.push(b'\n'),
                        b'0'..=b'9' => {
                            let digits = self.text.get(self.position - 1..self.position + 2)?;
                            let value: u16 = std::str::from_utf8(digits).ok()?.parse().ok()?;
                            // Strings hold no NUL byte (CGPL.md §4).
                            out.push(u8::try_from(value).ok().filter(|byte| *byte != 0)?);
                            self.position += 2;
                        }
                        _ => return None,
                    }
                }
                other => out.push(other),
            }
        }
    }

    fn hashed(&mut self) -> Option<Value> {
        let rest = &self.text[self.position..];
        if rest.len() >= 6 && rest[..6].eq_ignore_ascii_case(b"#null#") {
            self.position += 6;
            return Some(Value::Null);
        }
        self.position += 1;
        match self.peek()? {
            b'T' | b't' => {
                self.position += 1;
                let start = self.position;
                while let Some(byte) = self.peek() {
                    if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b':') {
                        self.position += 1;
                    } else {
                        break;
                    }
                }
                let text = std::str::from_utf8(&self.text[start..self.position]).ok()?;
                time::parse(text).map(Value::Date)
            }
            b'I' | b'i' => {
                self.position += 1;
                let start = self.position;
                while let Some(byte) = self.peek() {
                    if byte.is_ascii_hexdigit() || matches!(byte, b'.' | b':' | b'[' | b']') {
                        self.position += 1;
                    } else {
                        break;
                    }
                }
                let text = std::str::from_utf8(&self.text[start..self.position]).ok()?;
                parse_ip(text).map(|endpoint| Value::Ip(Arc::new(endpoint)))
            }
            _ => {
                let start = self.position;
                if self.peek() == Some(b'-') {
                    self.position += 1;
                }
                while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
                    self.position += 1;
                }
                let text = std::str::from_utf8(&self.text[start..self.position]).ok()?;
                text.parse().ok().map(Value::Num)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) {
        let value = parse_object(text.as_bytes()).unwrap_or_else(|| panic!("parse {text}"));
        assert_eq!(object_to_string(&value).unwrap(), text);
    }

    #[test]
    fn forms_round_trip() {
        round_trip("abc");
        round_trip("\"a b\\\"c\\\\\"");
        round_trip("#-12");
        round_trip("#T24-10-2008_10:51:24");
        round_trip("#TPAST");
        round_trip("[HcqHfHI=]");
        round_trip("#I[10.0.1.77]:1812");
        round_trip("(a, #1, (b, \"\"))");
        round_trip("{a = #1; \"b c\" = (x);}");
        round_trip("#null#");
        round_trip("\"line\\nbreak \\001\"");
    }

    #[test]
    fn rejects_trailing_and_broken_text() {
        assert!(parse_object(b"(a, b").is_none());
        assert!(parse_object(b"a b").is_none());
        assert!(parse_object(b"{a = }").is_none());
    }
}
