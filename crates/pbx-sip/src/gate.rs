//! The gate: what pbxd checks of every request before the SIP stack parses
//! it, over UDP (in [`crate::transport`]'s socket) and over TCP (the
//! stack's stream guard), and the answer to what the stack cannot parse.
//!
//! The stack drops unanswered what it cannot take: a request without
//! Call-ID or with a CSeq that is no number, an unknown method, invalid
//! UTF-8. RFC 3261 wants an answer to each (§8.2, §20, §21), with a reason
//! phrase naming the fault, so the sender learns what it got wrong. Folded
//! header lines (RFC 3261 §7.3.1), which the stack does not take either,
//! are unfolded here. Responses, and what is no request at all, pass on
//! to the stack.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the gate says of a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the stack parse it as it is.
    Pass,
    /// Let the stack parse this instead: the same message with its folded
    /// header lines unfolded, and no white space within the parameters of
    /// its From and To.
    Rewritten(Vec<u8>),
    /// Do not pass it on: send `answer` back; `fault` says why.
    Refused { fault: String, answer: Vec<u8> },
}

/// The methods the SIP stack knows; any other is answered 501 here.
const KNOWN_METHODS: [&str; 14] = [
    "INVITE",
    "ACK",
    "CANCEL",
    "BYE",
    "OPTIONS",
    "REGISTER",
    "INFO",
    "UPDATE",
    "REFER",
    "NOTIFY",
    "SUBSCRIBE",
    "PUBLISH",
    "MESSAGE",
    "PRACK",
];

/// The mandatory headers of a request, each with its compact form
/// (RFC 3261 §8.1.1, §7.3.3).
const MANDATORY: [(&str, Option<&str>); 5] = [
    ("Via", Some("v")),
    ("Call-ID", Some("i")),
    ("From", Some("f")),
    ("To", Some("t")),
    ("CSeq", None),
];

/// What pbxd does with requests from SIP scanners (SIPVicious and the
/// like), known by their `User-Agent`: set once at start from
/// `sip.scanner_user_agents` and `sip.scanner_answer`.
#[derive(Clone, Debug, Default)]
pub struct Scanners {
    /// Lower-case pieces of a `User-Agent` that mark a scanner.
    pub agents: Vec<String>,
    /// Answer them `403 Forbidden` rather than nothing at all.
    pub forbid: bool,
}

static SCANNERS: std::sync::OnceLock<Scanners> = std::sync::OnceLock::new();

/// Sets the scanner policy for this process (the first call wins).
pub fn set_scanners(scanners: Scanners) {
    let _ = SCANNERS.set(scanners);
}

/// A request from a scanner, refused as the policy says: dropped (an
/// empty answer: nothing is sent) or 403.
fn scanner(head: &str, scanners: &Scanners) -> Option<Verdict> {
    if scanners.agents.is_empty() {
        return None;
    }
    let agent = lines(head).skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("User-Agent")
            .then(|| value.trim().to_ascii_lowercase())
    })?;
    let known = scanners
        .agents
        .iter()
        .find(|piece| agent.contains(piece.as_str()))?;
    let fault = format!("a SIP scanner ({known})");
    if scanners.forbid {
        return Some(refuse(head, 403, "Forbidden", "")).map(|verdict| match verdict {
            Verdict::Refused { answer, .. } => Verdict::Refused { fault, answer },
            other => other,
        });
    }
    Some(Verdict::Refused {
        fault,
        answer: Vec::new(),
    })
}

/// Requests per source address and second, past which a source's
/// requests are dropped unread until its second is over (a REGISTER or
/// INVITE flood costs little more than the datagrams). Set once at start
/// from `sip.requests_per_source_per_second` and `sip.trusted_sources`
/// (with every trunk's proxy address): those are never limited.
#[derive(Debug)]
pub struct FloodLimit {
    /// Requests a second allowed from one address; 0: no limit.
    pub per_second: u32,
    pub trusted: Vec<std::net::IpAddr>,
    counts: Mutex<std::collections::HashMap<std::net::IpAddr, (Instant, u32)>>,
    /// Requests dropped since pbxd started (the metrics).
    pub dropped: Tally,
}

static FLOOD: std::sync::OnceLock<FloodLimit> = std::sync::OnceLock::new();

impl FloodLimit {
    pub fn new(per_second: u32, trusted: Vec<std::net::IpAddr>) -> FloodLimit {
        FloodLimit {
            per_second,
            trusted,
            counts: Mutex::default(),
            dropped: Tally::new("SIP requests dropped from sources past sip.requests_per_source_per_second:"),
        }
    }

    /// Whether a message from `from` is a request past its source's limit
    /// (then counted as dropped). Responses are never limited.
    pub fn over(&self, from: SocketAddr, message: &[u8]) -> bool {
        if self.per_second == 0 || message.starts_with(b"SIP/") || self.trusted.contains(&from.ip()) {
            return false;
        }
        let over = {
            let Ok(mut counts) = self.counts.lock() else {
                return false;
            };
            if counts.len() > 10_000 {
                counts.retain(|_, (since, _)| since.elapsed() < Duration::from_secs(1));
            }
            let entry = counts.entry(from.ip()).or_insert((Instant::now(), 0));
            if entry.0.elapsed() >= Duration::from_secs(1) {
                *entry = (Instant::now(), 0);
            }
            entry.1 += 1;
            entry.1 > self.per_second
        };
        if over {
            self.dropped
                .note(Some(from), "too many requests a second from there");
        }
        over
    }
}

/// Sets the flood limit for this process (the first call wins).
pub fn set_flood_limit(limit: FloodLimit) {
    let _ = FLOOD.set(limit);
}

/// The flood limit in force (none until set).
pub fn flood_limit() -> Option<&'static FloodLimit> {
    FLOOD.get()
}

/// Judges one message (a datagram, or one message cut from a stream).
pub fn judge(message: &[u8]) -> Verdict {
    judge_with(message, SCANNERS.get())
}

/// As `judge`, with this scanner policy.
pub fn judge_with(message: &[u8], scanners: Option<&Scanners>) -> Verdict {
    let (head, body) = split_head(message);
    if !looks_like_request(head) {
        return Verdict::Pass;
    }
    let Ok(text) = std::str::from_utf8(head) else {
        let copied = String::from_utf8_lossy(head);
        return refuse(&copied, 400, "Invalid UTF-8 in Message Head", "");
    };
    // A line that starts with white space continues the one before.
    let folded = memchr::memchr_iter(b'\n', head).any(|at| matches!(head.get(at + 1), Some(b' ' | b'\t')));
    let unfolded = if folded {
        std::borrow::Cow::Owned(unfold(text))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    let untidy = match check(&unfolded) {
        Ok(untidy) => untidy,
        Err(refusal) => return refusal,
    };
    if let Some(refusal) = scanners.and_then(|scanners| scanner(&unfolded, scanners)) {
        return refusal;
    }
    let tidied = if untidy { tidy_addresses(&unfolded) } else { None };
    if folded || tidied.is_some() {
        let head = tidied.unwrap_or_else(|| unfolded.into_owned());
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(b"\r\n\r\n");
        bytes.extend_from_slice(body);
        return Verdict::Rewritten(bytes);
    }
    Verdict::Pass
}

/// What to send back about a message the stack could not parse (`error`
/// says why), or could not cut from a stream: a request gets 400 (513 when
/// `too_large`), with the reason; anything else nothing.
pub fn answer_unusable(message: &[u8], error: &str, too_large: bool) -> Option<(String, Vec<u8>)> {
    let (head, _) = split_head(message);
    if !looks_like_request(head) {
        return None;
    }
    let text = String::from_utf8_lossy(head);
    let (status, fault) = if too_large {
        (513, "Message Too Large".to_string())
    } else {
        (400, format!("Bad Request ({})", phrase(error)))
    };
    match refuse(&text, status, &fault, "") {
        Verdict::Refused { fault, answer } => Some((fault, answer)),
        _ => None,
    }
}

/// The message's head (up to the blank line) and body.
fn split_head(message: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memmem::find(message, b"\r\n\r\n") {
        Some(end) => (&message[..end], &message[end + 4..]),
        None => (message, &[]),
    }
}

/// Whether `head` starts with a request line: a method, then anything,
/// then a SIP version. Responses start with the version.
fn looks_like_request(head: &[u8]) -> bool {
    let line_end = head
        .windows(2)
        .position(|window| window == b"\r\n")
        .unwrap_or(head.len());
    let line = &head[..line_end];
    let method = line.split(|&byte| byte == b' ').next().unwrap_or_default();
    !method.is_empty()
        && !line.starts_with(b"SIP/")
        && line
            .rsplit(|&byte| byte == b' ')
            .next()
            .is_some_and(|version| version.starts_with(b"SIP/"))
}

/// Joins each folded line to the one before, with one space (RFC 3261
/// §7.3.1: a line that starts with white space continues the last).
fn unfold(head: &str) -> String {
    let mut out = String::with_capacity(head.len());
    let mut rest = head;
    while let Some(at) = rest.find("\r\n") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let continued = after.trim_start_matches([' ', '\t']);
        if continued.len() < after.len() {
            out.push(' ');
            rest = continued;
        } else {
            out.push_str("\r\n");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The head with the parameters of its From and To written without the
/// white space RFC 3261 allows around `;` and `=` (`;  tag = 1`), which
/// the stack does not take; `None` when there is none.
fn tidy_addresses(head: &str) -> Option<String> {
    let mut changed = false;
    let lines: Vec<std::borrow::Cow<'_, str>> = lines(head)
        .enumerate()
        .map(|(index, line)| {
            let tidied = (index > 0)
                .then(|| line.split_once(':'))
                .flatten()
                .filter(|(name, _)| {
                    let name = name.trim();
                    is_header(name, "From", Some("f")) || is_header(name, "To", Some("t"))
                })
                .and_then(|(name, value)| {
                    let value = value.trim();
                    let (address, params) = match value.rfind('>') {
                        Some(end) => value.split_at(end + 1),
                        None => value.split_at(value.find(';').unwrap_or(value.len())),
                    };
                    let squeezed: String = params
                        .chars()
                        .filter(|character| !character.is_whitespace())
                        .collect();
                    (squeezed.len() != params.len() || address.len() != address.trim_end().len())
                        .then(|| format!("{}: {}{squeezed}", name.trim(), address.trim_end()))
                });
            match tidied {
                Some(line) => {
                    changed = true;
                    std::borrow::Cow::Owned(line)
                }
                None => std::borrow::Cow::Borrowed(line),
            }
        })
        .collect();
    changed.then(|| lines.join("\r\n"))
}

/// The lines of a head, without their CRLF (split on LF: a search for
/// one byte, where a search for "\r\n" costs more than the rest).
fn lines(head: &str) -> impl Iterator<Item = &str> {
    head.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
}

/// The header lines of an unfolded head: (name, value), names as written
/// (white space before the colon dropped), values untrimmed.
fn header_lines(head: &str) -> impl Iterator<Item = (&str, &str)> {
    lines(head).skip(1).filter_map(|line| {
        let (name, value) = line.split_once(':')?;
        Some((name.trim_end(), value))
    })
}

fn is_header(name: &str, long: &str, compact: Option<&str>) -> bool {
    name.eq_ignore_ascii_case(long) || compact.is_some_and(|compact| name.eq_ignore_ascii_case(compact))
}

/// What is wrong with a request whose head is `head` (unfolded), as the
/// refusal to send back.
/// Checks a request whose head is `head` (unfolded): the refusal to send
/// back, or whether its From or To has white space within its parameters
/// (to be tidied for the stack).
fn check(head: &str) -> Result<bool, Verdict> {
    let request_line = lines(head).next().unwrap_or_default();
    // Method SP Request-URI SP SIP-Version, one space each (§25.1): extra
    // white space, or a URI in angle brackets, is no request line.
    let mut parts = request_line.split(' ');
    let (Some(method), Some(uri), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse(head, 400, "Bad Request-Line", ""));
    };
    if method.is_empty() || uri.is_empty() || uri.starts_with('<') {
        return Err(refuse(head, 400, "Bad Request-Line", ""));
    }
    // One pass: the first value of each mandatory header, the Vias, and
    // whether a From or To needs tidying.
    let mut values: [Option<&str>; 5] = [None; 5];
    let mut via = None;
    let mut untidy = false;
    for (name, value) in header_lines(head) {
        let Some(index) = MANDATORY
            .iter()
            .position(|(long, compact)| is_header(name, long, *compact))
        else {
            continue;
        };
        let value = value.trim();
        match index {
            0 if via.is_none() => via = via_fault(value),
            2 | 3 => untidy |= has_untidy_params(value),
            _ => {}
        }
        values[index].get_or_insert(value);
    }
    if let Some(missing) = values.iter().position(Option::is_none) {
        let long = MANDATORY[missing].0;
        return Err(refuse(head, 400, &format!("Missing {long} Header"), ""));
    }
    let [_, _, from, to, cseq] = values.map(Option::unwrap_or_default);
    let mut parts = cseq.split_whitespace();
    let number = parts.next().and_then(|number| number.parse::<u32>().ok());
    let cseq_fault = match (number, parts.next()) {
        (Some(number), Some(cseq_method)) if number < 1 << 31 && cseq_method == method => None,
        (Some(number), Some(_)) if number < 1 << 31 => Some("CSeq Method Does Not Match"),
        (Some(_), None) => Some("CSeq Without Method"),
        _ => Some("Bad CSeq Number"),
    };
    if let Some(fault) = cseq_fault.or(via) {
        return Err(refuse(head, 400, fault, ""));
    }
    if !has_tag(from) {
        return Err(refuse(head, 400, "Missing From Tag", ""));
    }
    if !KNOWN_METHODS.contains(&method) {
        let allow = format!("Allow: {}\r\n", crate::server::ALLOWED);
        return Err(refuse(head, 501, "Not Implemented", &allow));
    }
    if !is_sip_uri(uri) {
        return Err(refuse(head, 416, "Unsupported URI Scheme", ""));
    }
    if method == "REGISTER" && !is_sip_uri(address_uri(to)) {
        return Err(refuse(head, 400, "To Is Not a SIP URI", ""));
    }
    Ok(untidy)
}

/// Whether a From or To value has white space among its parameters
/// (`<sip:a@b> ; tag = 1`, `sip:a@b ;tag=1`).
fn has_untidy_params(value: &str) -> bool {
    let params = match value.rfind('>') {
        Some(end) => &value[end..],
        // From the character before the first `;` (a character, not a
        // byte: it may take several).
        None => value.find(';').map_or("", |at| {
            let before = value[..at]
                .char_indices()
                .next_back()
                .map_or(at, |(start, _)| start);
            &value[before..]
        }),
    };
    params.contains([' ', '\t'])
}

/// What is wrong with a Via header's value, if anything: each of its
/// comma-separated entries must be `SIP/2.0/transport host` (any version)
/// with
/// parameters that are not empty (RFC 4475 §3.1.2.1).
fn via_fault(value: &str) -> Option<&'static str> {
    for entry in value.split(',') {
        let mut params = entry.split(';');
        // `SIP/2.0/UDP host`: three parts, none empty (white space allowed
        // around the slashes).
        let mut protocol = params.next().unwrap_or_default().splitn(3, '/');
        let protocol_ok = (0..3).all(|_| protocol.next().is_some_and(|part| !part.trim().is_empty()));
        if !protocol_ok || params.any(|param| param.trim().is_empty()) {
            return Some("Bad Via Header");
        }
    }
    None
}

/// Whether a From or To value carries a `tag` parameter (outside its URI).
fn has_tag(value: &str) -> bool {
    let params = match value.rfind('>') {
        Some(end) => &value[end + 1..],
        None => value.split_once(';').map_or("", |(_, params)| params),
    };
    params.split(';').any(|param| {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        name.trim().eq_ignore_ascii_case("tag") && !value.trim().is_empty()
    })
}

/// The URI of a name-addr or addr-spec (From, To, Contact).
fn address_uri(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(start), Some(end)) if start < end => &value[start + 1..end],
        _ => value.split(';').next().unwrap_or_default().trim(),
    }
}

/// Whether `uri` is a SIP or SIPS URI, the schemes pbxd routes.
fn is_sip_uri(uri: &str) -> bool {
    uri.split_once(':')
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips"))
}

/// A reason phrase from free text: printable ASCII on one line, short.
fn phrase(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|character| {
            if character.is_ascii_graphic() {
                character
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let mut phrase = words.join(" ");
    if phrase.len() > 80 {
        phrase.truncate(77);
        phrase.push_str("...");
    }
    phrase
}

/// The refusal of a request whose head is `head`: the status line, the
/// headers a response copies (RFC 3261 §8.2.6.2: Via, From, To with a tag
/// of ours added when it has none, Call-ID, CSeq), then `extra`.
fn refuse(head: &str, status: u16, fault: &str, extra: &str) -> Verdict {
    let mut answer = format!("SIP/2.0 {status} {fault}\r\n");
    for line in lines(head).skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let copied = ["Via", "From", "Call-ID", "CSeq"]
            .iter()
            .any(|long| is_header(name, long, compact_of(long)));
        if copied {
            answer.push_str(line);
            answer.push_str("\r\n");
        } else if is_header(name, "To", Some("t")) {
            answer.push_str(line);
            if !has_tag(value) {
                answer.push_str(&format!(";tag={:08x}", crate::random_u32()));
            }
            answer.push_str("\r\n");
        }
    }
    answer.push_str(extra);
    answer.push_str("Content-Length: 0\r\n\r\n");
    Verdict::Refused {
        fault: fault.to_string(),
        answer: answer.into_bytes(),
    }
}

fn compact_of(long: &str) -> Option<&'static str> {
    MANDATORY
        .iter()
        .find(|(name, _)| *name == long)
        .and_then(|(_, compact)| *compact)
}

/// Counts what pbxd refused or dropped of one kind (malformed messages,
/// REGISTERs from a locked-out source) and says so in the log at most
/// once per [`SUMMARY_EVERY`]: a scanner's flood must not flood the log.
#[derive(Debug)]
pub struct Tally {
    what: &'static str,
    total: AtomicU64,
    window: Mutex<(Option<Instant>, u64)>,
}

/// How often a [`Tally`] may write its summary.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);

impl Tally {
    pub const fn new(what: &'static str) -> Tally {
        Tally {
            what,
            total: AtomicU64::new(0),
            window: Mutex::new((None, 0)),
        }
    }

    /// Counts one, from `from`, for `fault`.
    pub fn note(&self, from: Option<SocketAddr>, fault: &str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(?from, what = self.what, "{fault}");
        let Ok(mut window) = self.window.lock() else {
            return;
        };
        window.1 += 1;
        let due = window.0.is_none_or(|since| since.elapsed() >= SUMMARY_EVERY);
        if due {
            let (since, count) = (window.0.replace(Instant::now()), std::mem::take(&mut window.1));
            let seconds = since.map_or(0, |since| since.elapsed().as_secs());
            let from = from.map_or_else(|| "?".to_string(), |from| from.to_string());
            tracing::info!(
                "{} {count} in the last {seconds} s; the latest from {from}: {fault}",
                self.what
            );
        }
    }

    /// How many since pbxd started.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                        From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\ni: c1\r\nCSeq: 7 INVITE\r\n\
                        Content-Length: 0\r\n\r\n";

    #[test]
    fn scanners_are_dropped_or_forbidden_by_their_user_agent() {
        let options = |agent: &str| {
            format!(
                "OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK1\r\n\
                 From: <sip:100@10.0.0.9>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: scan\r\nCSeq: 1 OPTIONS\r\n\
                 User-Agent: {agent}\r\nContent-Length: 0\r\n\r\n"
            )
        };
        let drop = Scanners {
            agents: vec!["friendly-scanner".into(), "sipvicious".into()],
            forbid: false,
        };
        match judge_with(options("friendly-scanner").as_bytes(), Some(&drop)) {
            Verdict::Refused { fault, answer } => {
                assert_eq!(fault, "a SIP scanner (friendly-scanner)");
                assert!(answer.is_empty());
            }
            other => panic!("not dropped: {other:?}"),
        }
        assert!(matches!(
            judge_with(options("Linphone/5.2").as_bytes(), Some(&drop)),
            Verdict::Pass
        ));
        assert!(matches!(
            judge_with(options("friendly-scanner").as_bytes(), None),
            Verdict::Pass
        ));
        let forbid = Scanners { forbid: true, ..drop };
        match judge_with(options("SIPVicious 0.3").as_bytes(), Some(&forbid)) {
            Verdict::Refused { answer, .. } => {
                let answer = String::from_utf8(answer).unwrap();
                assert!(answer.starts_with("SIP/2.0 403 Forbidden\r\n"), "{answer}");
            }
            other => panic!("not forbidden: {other:?}"),
        }
    }

    fn refused(message: &str) -> (String, String) {
        match judge(message.as_bytes()) {
            Verdict::Refused { fault, answer } => (fault, String::from_utf8(answer).unwrap()),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_source_past_its_requests_a_second_is_dropped_but_not_its_responses_nor_trusted_ones() {
        let trusted: std::net::IpAddr = "127.0.0.9".parse().unwrap();
        let limit = FloodLimit::new(3, vec![trusted]);
        let from: SocketAddr = "127.0.0.2:5060".parse().unwrap();
        let other: SocketAddr = "127.0.0.3:5060".parse().unwrap();
        let request = GOOD.as_bytes();
        let passed = (0..10).filter(|_| !limit.over(from, request)).count();
        assert_eq!(passed, 3);
        assert_eq!(limit.dropped.total(), 7);
        assert!(!limit.over(from, b"SIP/2.0 200 OK\r\n\r\n"));
        assert!(!limit.over(other, request));
        assert!((0..10).all(|_| !limit.over(SocketAddr::new(trusted, 5060), request)));
        assert!((0..10).all(|_| !FloodLimit::new(0, Vec::new()).over(from, request)));
    }

    #[test]
    fn good_requests_responses_and_garbage_pass() {
        assert_eq!(judge(GOOD.as_bytes()), Verdict::Pass);
        assert_eq!(judge(b"SIP/2.0 200 OK\r\n\r\n"), Verdict::Pass);
        assert_eq!(judge(b"garbage"), Verdict::Pass);
        assert_eq!(judge(b"\r\n\r\n"), Verdict::Pass);
    }

    #[test]
    fn a_garbled_cseq_is_refused_naming_it_with_the_copied_headers() {
        let (fault, answer) = refused(&GOOD.replace("7 INVITE", "7 ACK"));
        assert_eq!(fault, "CSeq Method Does Not Match");
        assert!(answer
            .starts_with("SIP/2.0 400 CSeq Method Does Not Match\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"));
        assert!(answer.contains("\r\ni: c1\r\n") && answer.ends_with("Content-Length: 0\r\n\r\n"));
        assert!(answer.contains("To: <sip:a@b>;tag="), "{answer}");
        assert_eq!(refused(&GOOD.replace("7 INVITE", "7")).0, "CSeq Without Method");
        assert_eq!(
            refused(&GOOD.replace("7 INVITE", "2147483648 INVITE")).0,
            "Bad CSeq Number"
        );
        assert_eq!(
            refused(&GOOD.replace("i: c1\r\n", "")).0,
            "Missing Call-ID Header"
        );
    }

    #[test]
    fn unknown_methods_schemes_and_bad_vias_get_their_own_answers() {
        let unknown = GOOD.replace("INVITE", "NEWMETHOD");
        let (fault, answer) = refused(&unknown);
        assert_eq!(fault, "Not Implemented");
        assert!(answer.starts_with("SIP/2.0 501 ") && answer.contains("\r\nAllow: INVITE"));
        assert_eq!(
            refused(&GOOD.replace("sip:a@b SIP", "tel:+1 SIP")).0,
            "Unsupported URI Scheme"
        );
        assert_eq!(
            refused(&GOOD.replace("branch=z9hG4bK1", "branch=z9hG4bK1;;,;")).0,
            "Bad Via Header"
        );
        assert_eq!(refused(&GOOD.replace(";tag=1", "")).0, "Missing From Tag");
        assert_eq!(
            refused(&GOOD.replace("INVITE sip:a@b", "INVITE  sip:a@b")).0,
            "Bad Request-Line"
        );
        assert_eq!(
            refused(&GOOD.replace("INVITE sip:a@b", "INVITE <sip:a@b>")).0,
            "Bad Request-Line"
        );
        let no_via = GOOD.replace("Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n", "");
        assert_eq!(refused(&no_via).0, "Missing Via Header");
        let (fault, _) = match judge(b"OPTIONS sip:a@b SIP/2.0\r\nVia: \xff\r\n\r\n") {
            Verdict::Refused { fault, answer } => (fault, answer),
            other => panic!("{other:?}"),
        };
        assert_eq!(fault, "Invalid UTF-8 in Message Head");
    }

    /// Found by the datagram fuzz target: a To whose last character before
    /// its first `;` takes two bytes (it panicked, slicing inside it).
    #[test]
    fn a_multibyte_character_before_a_semicolon_is_no_panic() {
        let message =
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\n\
                       To: \"Mr. U ((~.}о д;евяносто\r\ni: c1\r\nCSeq: 7 OPTIONS\r\n\r\n";
        let _ = judge(message.as_bytes());
        assert!(has_untidy_params("sip:д ;tag=1"));
        assert!(!has_untidy_params("sip:дд;tag=1"));
    }

    #[test]
    fn folded_lines_are_unfolded_and_the_body_kept() {
        let folded = GOOD.replace("CSeq: 7 INVITE", "CSeq: 7\r\n   INVITE") + "body";
        let Verdict::Rewritten(bytes) = judge(folded.as_bytes()) else {
            panic!("not unfolded");
        };
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains("\r\nCSeq: 7 INVITE\r\n") && text.ends_with("\r\n\r\nbody"),
            "{text}"
        );
    }

    #[test]
    fn what_the_stack_cannot_parse_gets_400_with_its_reason_on_one_line() {
        let (fault, answer) = answer_unusable(GOOD.as_bytes(), "empty\r\nhost", false).unwrap();
        assert_eq!(fault, "Bad Request (empty host)");
        assert!(answer.starts_with(b"SIP/2.0 400 Bad Request (empty host)\r\n"));
        assert!(answer_unusable(b"SIP/2.0 200 OK\r\n\r\n", "x", false).is_none());
        let (fault, _) = answer_unusable(GOOD.as_bytes(), "", true).unwrap();
        assert_eq!(fault, "Message Too Large");
    }
}
