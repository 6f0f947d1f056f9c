//! SIP for pbxd (FEATURES.md §3): listeners, the registrar and its digest
//! challenge, SDP offer/answer, and call legs that put SIP dialogs and RTP
//! media behind the runtime's call abstraction.
//!
//! rsipstack carries the messages, transports, transactions and dialogs;
//! what a PBX decides (who may register, where a call goes, which codecs)
//! is ours.

pub mod call;
pub mod digest;
pub mod location;
pub mod network;
pub mod registrar;
pub mod route;
pub mod sdp;
pub mod server;

/// Undoes `%XX` escapes (a Request-URI's `callback%23ivanov`); a broken
/// escape stays as written.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escapes what may not stand in a URI header value (`;`, `=`, `@`…).
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A random number from the operating system (SDP session IDs).
pub fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::percent_decode("callback%23ivanov"), "callback#ivanov");
        assert_eq!(super::percent_decode("100%"), "100%");
        assert_eq!(super::percent_decode("%zz%2"), "%zz%2");
        assert_eq!(super::percent_encode("a;b=c@d"), "a%3Bb%3Dc%40d");
    }
}
