//! SIP for pbxd (FEATURES.md §3): listeners, the registrar and its digest
//! challenge, SDP offer/answer, and call legs that put SIP dialogs and RTP
//! media behind the runtime's call abstraction.
//!
//! rsipstack carries the messages, transports, transactions and dialogs;
//! what a PBX decides (who may register, where a call goes, which codecs)
//! is ours.

mod call;
pub mod digest;
pub mod gate;
mod incoming;
pub mod location;
mod network;
mod outgoing;
pub mod registrar;
pub mod route;
pub mod sdp;
pub mod secure;
pub mod server;
pub mod transport;
pub mod trunk;

pub use server::{SipNetwork, SipShared};

/// A running pbxd on SIP.
pub type SipServer = pbx_runtime::Server<SipNetwork>;

/// Starts pbxd on SIP for `config` (the one way `pbxd serve` and the tests
/// build it): shards, media workers, listeners on `sip.listen`.
pub fn start(
    config: pbx_runtime::Config,
    observer: std::sync::Arc<dyn pbx_runtime::observe::Observer>,
) -> Result<SipServer, pbx_runtime::ServerError> {
    gate::set_scanners(gate::Scanners {
        agents: config
            .sip
            .scanner_user_agents
            .iter()
            .map(|agent| agent.trim().to_ascii_lowercase())
            .filter(|agent| !agent.is_empty())
            .collect(),
        forbid: config.sip.scanner_answer == "403",
    });
    let mut trusted: Vec<std::net::IpAddr> = config.sip.trusted_sources.clone();
    for trunk in config.trunks.values() {
        // A trunk's proxy by its address (a name is resolved when called,
        // not here: list its addresses in sip.trusted_sources).
        let host = trunk
            .proxy
            .rsplit_once(':')
            .map_or(trunk.proxy.as_str(), |(host, _)| host);
        if let Ok(address) = host.trim_matches(['[', ']']).parse() {
            trusted.push(address);
        }
    }
    gate::set_flood_limit(gate::FloodLimit::new(
        config.sip.requests_per_source_per_second,
        trusted,
    ));
    let options = pbx_runtime::ServerOptions {
        observer,
        mode: pbx_runtime::Mode::Threads,
    };
    pbx_runtime::Server::start(config, options, SipNetwork::bind)
}

/// Undoes `%XX` escapes (a Request-URI's `callback%23ivanov`); a broken
/// escape stays as written.
pub fn percent_decode(text: &str) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(text)).into_owned()
}

/// The bytes `%XX` escapes stand for (a broken escape stays as written).
pub fn percent_decode_bytes(text: &str) -> Vec<u8> {
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
    out
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

/// A URI parsed from text we wrote ourselves: the user part's escapes are
/// undone after parsing, because rsipstack keeps them as written but
/// escapes again when it prints (`%23` would come back as `%2523`).
pub fn sip_uri(text: &str) -> Result<rsipstack::sip::Uri, rsipstack::sip::Error> {
    let mut uri = rsipstack::sip::Uri::try_from(text)?;
    unescape_user(&mut uri);
    Ok(uri)
}

/// Undoes the escapes of a URI's user part (see `sip_uri`).
pub fn unescape_user(uri: &mut rsipstack::sip::Uri) {
    if let Some(auth) = uri.auth.as_mut() {
        auth.user = percent_decode(&auth.user);
    }
}

/// Undoes a second escaping of escapes (`%2523` → `%23`) in `text`.
///
/// rsipstack keeps a URI's user part as written (escapes included) but
/// escapes it again when it prints the URI, so a `callback%23ivanov` in a
/// To header comes back from any round trip as `callback%252523...`. Every
/// message pbxd sends goes through `EscapeRepair`, which undoes that in the
/// headers that carry URIs. (A user part holding a literal `%` followed by
/// two hex digits cannot be told apart; no real account name does.)
pub fn repair_escapes(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("%25") {
        return std::borrow::Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < bytes.len() {
        let double = bytes.get(index..index + 5).is_some_and(|five| {
            five.starts_with(b"%25") && five[3].is_ascii_hexdigit() && five[4].is_ascii_hexdigit()
        });
        if double {
            // "%25XY" → "%XY", and again while it is still doubled.
            out.push('%');
            index += 3;
            while bytes.get(index..index + 4).is_some_and(|four| {
                four.starts_with(b"25") && four[2].is_ascii_hexdigit() && four[3].is_ascii_hexdigit()
            }) {
                index += 2;
            }
        } else {
            let character = text[index..].chars().next().unwrap_or('\u{fffd}');
            out.push(character);
            index += character.len_utf8().max(1);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The message inspector that repairs doubled escapes on the way out,
/// and counts the responses sent by status code.
#[derive(Debug, Default)]
pub struct EscapeRepair {
    pub counts: std::sync::Arc<server::Counts>,
}

impl rsipstack::transaction::endpoint::MessageInspector for EscapeRepair {
    fn before_send(
        &self,
        mut message: rsipstack::sip::SipMessage,
        _destination: Option<&rsipstack::transport::SipAddr>,
    ) -> rsipstack::sip::SipMessage {
        use rsipstack::sip::prelude::HasHeaders;
        use rsipstack::sip::Header;
        if let rsipstack::sip::SipMessage::Response(response) = &message {
            self.counts.responded(response.status_code.code());
        }
        if let rsipstack::sip::SipMessage::Request(request) = &mut message {
            let uri = request.uri.to_string();
            if let std::borrow::Cow::Owned(repaired) = repair_escapes(&uri) {
                if let Ok(parsed) = rsipstack::sip::Uri::try_from(repaired.as_str()) {
                    // Printing would escape again: keep the user part decoded.
                    let mut parsed = parsed;
                    unescape_user(&mut parsed);
                    request.uri = parsed;
                }
            }
        }
        for header in message.headers_mut().iter_mut() {
            match header {
                Header::To(value) => {
                    if let std::borrow::Cow::Owned(repaired) = repair_escapes(value.value()) {
                        value.replace(repaired);
                    }
                }
                Header::From(value) => {
                    if let std::borrow::Cow::Owned(repaired) = repair_escapes(value.value()) {
                        value.replace(repaired);
                    }
                }
                _ => {}
            }
        }
        message
    }

    fn after_received(
        &self,
        message: rsipstack::sip::SipMessage,
        _from: Option<&rsipstack::transport::SipAddr>,
    ) -> rsipstack::sip::SipMessage {
        message
    }
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

#[cfg(test)]
mod escape_tests {
    use super::repair_escapes;

    #[test]
    fn doubled_escapes_are_undone_and_the_rest_kept() {
        assert_eq!(
            repair_escapes("<sip:slow%2523petrov@example.com>;tag=x"),
            "<sip:slow%23petrov@example.com>;tag=x"
        );
        assert_eq!(repair_escapes("<sip:a%25252523b@h>"), "<sip:a%23b@h>");
        assert_eq!(
            repair_escapes("<sip:slow%23petrov@example.com>"),
            "<sip:slow%23petrov@example.com>"
        );
        assert_eq!(
            repair_escapes("\"Иван\" <sip:a%25zz@h>"),
            "\"Иван\" <sip:a%25zz@h>"
        );
        assert_eq!(repair_escapes("100%25"), "100%25");
    }
}
