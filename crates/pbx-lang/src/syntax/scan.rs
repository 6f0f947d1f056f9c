//! A quick lexical pass before the grammar runs.
//!
//! It finds the errors pest would describe poorly (a string or comment that
//! never ends, brackets nested past what the parser may recurse into) and the
//! places where sections start, so that a file with several broken sections
//! gets one syntax error for each rather than one for the whole file.

use crate::source::Span;

/// How deeply brackets may nest. Real programs stay far below; the limit keeps
/// the recursive parser and compiler within a small thread stack.
pub const MAX_NESTING: usize = 100;

/// A problem found by the scan.
#[derive(Debug, PartialEq, Eq)]
pub struct ScanError {
    pub span: Span,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

/// What the scan learned about a file.
#[derive(Debug, Default)]
pub struct Scan {
    /// Byte offsets where a line starts with `entry`, `procedure` or
    /// `function` (outside strings and comments): where sections begin.
    pub section_starts: Vec<usize>,
    pub errors: Vec<ScanError>,
}

/// Scans `text`.
pub fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let mut result = Scan::default();
    let mut brackets: Vec<usize> = Vec::new();
    let mut at_line_start = true;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        match byte {
            b'\n' => {
                at_line_start = true;
                index += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | 0x0c => {
                index += 1;
                continue;
            }
            b'/' if bytes.get(index + 1) == Some(&b'/') => {
                while index < bytes.len() && bytes[index] != b'\n' {
                    index += 1;
                }
                continue;
            }
            b'/' if bytes.get(index + 1) == Some(&b'*') => {
                match find(bytes, index + 2, b"*/") {
                    Some(end) => index = end + 2,
                    None => {
                        result.errors.push(ScanError {
                            span: Span::new(index, index + 2),
                            message: "this comment never ends".into(),
                            label: "comment starts here".into(),
                            help: Some("close it with `*/`".into()),
                        });
                        return result;
                    }
                }
                continue;
            }
            b'"' => {
                match string_end(bytes, index + 1) {
                    Ok(end) => index = end + 1,
                    Err(stop) => {
                        result.errors.push(ScanError {
                            span: Span::new(index, stop),
                            message: "this string never ends on its line".into(),
                            label: "string starts here".into(),
                            help: Some(
                                "close it with `\"`; write a line break inside a string as `\\n` or `\\e`"
                                    .into(),
                            ),
                        });
                        // Go on after the line: later sections may still be scanned.
                        index = stop;
                    }
                }
                at_line_start = false;
                continue;
            }
            b'(' | b'[' | b'{' => {
                brackets.push(index);
                if brackets.len() > MAX_NESTING {
                    result.errors.push(ScanError {
                        span: Span::new(index, index + 1),
                        message: format!("brackets are nested more than {MAX_NESTING} deep here"),
                        label: "too deep".into(),
                        help: Some("split the expression using variables".into()),
                    });
                    return result;
                }
            }
            b')' | b']' | b'}' => {
                brackets.pop();
            }
            _ => {}
        }
        if at_line_start && byte.is_ascii_alphabetic() && starts_section(bytes, index) {
            result.section_starts.push(index);
        }
        at_line_start = false;
        // Skip a whole word so that `end` inside `endpoint` is never seen.
        if byte.is_ascii_alphanumeric() || byte == b'_' {
            while index < bytes.len() && (bytes[index].is_ascii_alphanumeric() || bytes[index] == b'_') {
                index += 1;
            }
        } else {
            index += 1;
        }
    }
    result
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|position| from + position)
}

/// The offset of the closing quote, or the offset where the string stopped
/// (end of line or file) without one.
fn string_end(bytes: &[u8], mut index: usize) -> Result<usize, usize> {
    while index < bytes.len() {
        match bytes[index] {
            b'"' => return Ok(index),
            b'\n' => return Err(index),
            b'\\' if bytes.get(index + 1).is_some_and(|&next| next != b'\n') => index += 2,
            _ => index += 1,
        }
    }
    Err(bytes.len())
}

fn starts_section(bytes: &[u8], index: usize) -> bool {
    let word_end = bytes[index..]
        .iter()
        .position(|byte| !(byte.is_ascii_alphanumeric() || *byte == b'_'))
        .map_or(bytes.len(), |length| index + length);
    let word = &bytes[index..word_end];
    ["entry", "procedure", "function"]
        .iter()
        .any(|keyword| word.eq_ignore_ascii_case(keyword.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_section_starts_outside_strings_and_comments() {
        let text = "entry Main is\n  x = \"function\";\nend;\n/* procedure\n*/ procedure Q() is end;\nprocedure P() is end;\n";
        let scan = scan(text);
        let q = text.find("procedure Q").unwrap();
        let p = text.find("procedure P").unwrap();
        assert_eq!(scan.section_starts, vec![0, q, p]);
    }

    #[test]
    fn reports_unterminated_comment() {
        let scan = scan("entry Main is /* no end\nend;");
        assert_eq!(scan.errors.len(), 1);
        assert_eq!(scan.errors[0].span, Span::new(14, 16));
    }
}
