//! RFC 3261 conformance (issue 17): requests pbxd must answer as the RFC
//! says, each sent over UDP and over TCP to a running `pbxd serve`, each
//! test named after the section that decides it. After every case, an
//! OPTIONS still gets 200: a bad request never stops pbxd answering.
// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use common::Pbxd;

#[derive(Clone, Copy, Debug)]
enum Transport {
    Udp,
    Tcp,
}

/// What a test request carries besides the usual: a To tag, a CSeq
/// number (1 unless given), more headers (each line ending in CRLF), a
/// body.
#[derive(Clone, Copy, Default)]
struct Extra<'a> {
    to_tag: Option<&'a str>,
    cseq: Option<u32>,
    headers: &'a str,
    body: &'a str,
}

/// A request from a peer at `local` (the Via and Contact say where), in
/// SIP/2.0 unless `call_id` starts with a version such as `SIP/3.0 `.
fn request(method: &str, call_id: &str, extra: Extra<'_>, transport: Transport, local: SocketAddr) -> String {
    let (version, call_id) = match call_id.split_once(' ') {
        Some((version, rest)) if version.starts_with("SIP/") => (version, rest),
        _ => ("SIP/2.0", call_id),
    };
    let via = match transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    };
    let to_tag = extra.to_tag.map(|tag| format!(";tag={tag}")).unwrap_or_default();
    let cseq = extra.cseq.unwrap_or(1);
    let (headers, body) = (extra.headers, extra.body);
    let length = body.len();
    format!(
        "{method} sip:ivanov@example.com {version}\r\n\
         Via: SIP/2.0/{via} {local};branch=z9hG4bK-{call_id}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:tester@outside.test>;tag=from-{call_id}\r\n\
         To: <sip:ivanov@example.com>{to_tag}\r\n\
         Call-ID: {call_id}@outside.test\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:tester@{local}>\r\n\
         {headers}\
         Content-Length: {length}\r\n\r\n{body}"
    )
}

/// A test's SIP peer: one UDP socket or one TCP connection to pbxd.
struct Peer {
    transport: Transport,
    local: SocketAddr,
    server: SocketAddr,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
    /// What came on the stream and is not read yet.
    pending: Vec<u8>,
}

impl Peer {
    fn new(pbxd: &Pbxd, transport: Transport) -> Peer {
        let (udp, tcp, local) = match transport {
            Transport::Udp => {
                let socket = datagram_socket();
                let local = socket.local_addr().unwrap();
                (Some(socket), None, local)
            }
            Transport::Tcp => {
                let stream = TcpStream::connect(pbxd.sip).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let local = stream.local_addr().unwrap();
                (None, Some(stream), local)
            }
        };
        Peer {
            transport,
            local,
            server: pbxd.sip,
            udp,
            tcp,
            pending: Vec::new(),
        }
    }

    /// A request inside the dialog whose To tag is `tag`, with CSeq `cseq`.
    fn in_dialog(&self, method: &str, call_id: &str, tag: &str, cseq: u32) -> String {
        let extra = Extra {
            to_tag: Some(tag),
            cseq: Some(cseq),
            ..Extra::default()
        };
        self.request(method, call_id, extra)
    }

    /// A request from this peer (see `request`).
    fn request(&self, method: &str, call_id: &str, extra: Extra<'_>) -> String {
        request(method, call_id, extra, self.transport, self.local)
    }

    fn send(&mut self, message: &[u8]) {
        if let Some(socket) = &self.udp {
            socket.send_to(message, self.server).unwrap();
        }
        if let Some(stream) = &mut self.tcp {
            stream.write_all(message).unwrap();
        }
    }

    /// The next message from pbxd, or why none came (a timeout, or the
    /// connection closed).
    fn next(&mut self) -> Result<String, String> {
        let mut buffer = vec![0u8; 70_000];
        if let Some(socket) = &self.udp {
            let (length, _) = socket.recv_from(&mut buffer).map_err(|error| error.to_string())?;
            return Ok(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
        let stream = self.tcp.as_mut().unwrap();
        loop {
            // One whole message: its head and as much body as it says.
            if let Some(end) = self.pending.windows(4).position(|window| window == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                let length: usize = header(&head, "Content-Length")
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(0);
                if self.pending.len() >= end + 4 + length {
                    let message: Vec<u8> = self.pending.drain(..end + 4 + length).collect();
                    return Ok(String::from_utf8_lossy(&message).into_owned());
                }
            }
            match stream.read(&mut buffer) {
                Ok(0) => return Err("the connection closed".into()),
                Ok(length) => self.pending.extend_from_slice(&buffer[..length]),
                Err(error) => return Err(error.to_string()),
            }
        }
    }

    /// pbxd's next final response (`what` names the request if none comes).
    fn response(&mut self, what: &str) -> String {
        loop {
            let message = self
                .next()
                .unwrap_or_else(|error| panic!("no answer to {what} over {:?}: {error}", self.transport));
            if !message.starts_with("SIP/2.0 1") {
                return message;
            }
        }
    }
}

/// Sends one request from a new peer and returns pbxd's first final response.
fn exchange(pbxd: &Pbxd, transport: Transport, method: &str, call_id: &str, extra: Extra<'_>) -> String {
    let mut peer = Peer::new(pbxd, transport);
    let message = peer.request(method, call_id, extra);
    peer.send(message.as_bytes());
    peer.response(method)
}

/// Sends `message` as one datagram from `socket` and returns pbxd's first
/// final response (`what` names it if none comes).
fn send_datagram(pbxd: &Pbxd, socket: &UdpSocket, message: &str, what: &str) -> String {
    socket.send_to(message.as_bytes(), pbxd.sip).unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        let (length, _) = socket
            .recv_from(&mut buffer)
            .unwrap_or_else(|error| panic!("no answer to {what} over UDP: {error}"));
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        if !text.starts_with("SIP/2.0 1") {
            return text;
        }
    }
}

/// A socket for a test's own datagrams, with a timeout on answers.
fn datagram_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    socket
}

/// No refused INVITE started anything: no task took a call, no phone rang
/// (but for the auto-attendant's good calls after each case).
fn assert_no_call_set_up(pbxd: &Pbxd) {
    let log = pbxd.log();
    let started = log
        .lines()
        .filter(|line| line.contains("incoming call") || line.contains("ringing") || line.contains("start "))
        .filter(|line| !line.contains("200@example.com") && !line.contains("pbx.sppr"))
        .collect::<Vec<_>>();
    assert!(
        started.is_empty(),
        "a refused INVITE set up a call: {started:#?}\n{log}"
    );
}

fn status(response: &str) -> &str {
    response.lines().next().unwrap_or_default()
}

/// The value of header `name` (long form), if present.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// After a case: an OPTIONS still gets 200, and a good call still works
/// (the auto-attendant, 200, answers; the caller hangs up).
fn still_answers(pbxd: &Pbxd, transport: Transport, case: &str) {
    let response = exchange(
        pbxd,
        transport,
        "OPTIONS",
        &format!("{case}-after"),
        Extra::default(),
    );
    assert!(
        status(&response).starts_with("SIP/2.0 200"),
        "after {case} over {transport:?}, OPTIONS got: {response}"
    );
    let mut peer = Peer::new(pbxd, transport);
    let call_id = format!("{case}-good-call-{transport:?}");
    let extra = Extra {
        headers: "Content-Type: application/sdp\r\n",
        body: SDP,
        ..Extra::default()
    };
    let invite = peer
        .request("INVITE", &call_id, extra)
        .replacen("sip:ivanov@example.com", GOOD_CALL, 2);
    peer.send(invite.as_bytes());
    let answer = peer.response("a good call");
    assert!(
        status(&answer).starts_with("SIP/2.0 200"),
        "after {case} over {transport:?}, a good call got: {answer}"
    );
    let tag = header(&answer, "To")
        .unwrap()
        .split(";tag=")
        .nth(1)
        .unwrap()
        .to_string();
    let in_dialog = |method: &str, cseq: u32| {
        peer.in_dialog(method, &call_id, &tag, cseq)
            .replacen("sip:ivanov@example.com", GOOD_CALL, 2)
    };
    let (ack, bye) = (in_dialog("ACK", 1), in_dialog("BYE", 2));
    peer.send(ack.as_bytes());
    peer.send(bye.as_bytes());
    let ended = peer.response("the good call's BYE");
    assert!(status(&ended).starts_with("SIP/2.0 200"), "{ended}");
}

/// Where the good call goes: the demo's auto-attendant.
const GOOD_CALL: &str = "sip:200@example.com";

/// §8.2.1: a method pbxd does not take gets 405, and the response must
/// carry `Allow` with the methods it does take.
#[test]
fn rfc3261_8_2_1_a_method_not_allowed_gets_405_with_allow() {
    let pbxd = Pbxd::start("rfc3261-8-2-1", &[]);
    for transport in [Transport::Udp, Transport::Tcp] {
        for (method, dialog) in [
            ("MESSAGE", None),
            ("SUBSCRIBE", None),
            ("PUBLISH", Some("no-such-dialog")),
        ] {
            let call_id = format!("405-{method}-{transport:?}");
            let extra = Extra {
                to_tag: dialog,
                ..Extra::default()
            };
            let response = exchange(&pbxd, transport, method, &call_id, extra);
            assert!(
                status(&response).starts_with("SIP/2.0 405"),
                "{method} over {transport:?}: {response}"
            );
            let allow = header(&response, "Allow").unwrap_or_else(|| panic!("405 without Allow: {response}"));
            for taken in ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER"] {
                assert!(allow.contains(taken), "Allow lacks {taken}: {response}");
            }
            assert!(!allow.contains(method), "Allow names {method}: {response}");
        }
        still_answers(&pbxd, transport, "405");
    }
}

/// §12.2.2: a request with a To tag that matches no dialog gets 481,
/// whatever its method; so does a BYE outside any dialog.
#[test]
fn rfc3261_12_2_2_a_to_tag_matching_no_dialog_gets_481() {
    let pbxd = Pbxd::start("rfc3261-12-2-2", &[]);
    for transport in [Transport::Udp, Transport::Tcp] {
        for (method, tag) in [
            ("BYE", Some("gone")),
            ("INVITE", Some("gone")),
            ("OPTIONS", Some("gone")),
            ("INFO", Some("gone")),
            ("BYE", None),
        ] {
            let call_id = format!("481-{method}-{}-{transport:?}", tag.is_some());
            let extra = Extra {
                to_tag: tag,
                ..Extra::default()
            };
            let response = exchange(&pbxd, transport, method, &call_id, extra);
            assert!(
                status(&response).starts_with("SIP/2.0 481"),
                "{method} (To tag {tag:?}) over {transport:?}: {response}"
            );
        }
        still_answers(&pbxd, transport, "481");
    }
}

/// §8.1.1.1 and §21.5.7: pbxd speaks SIP/2.0; a request in another version
/// gets 505 and is not processed (an INVITE sets up no call).
#[test]
fn rfc3261_21_5_7_a_request_in_another_sip_version_gets_505() {
    let pbxd = Pbxd::start("rfc3261-21-5-7", &[]);
    for transport in [Transport::Udp, Transport::Tcp] {
        for version in ["SIP/1.0", "SIP/3.0"] {
            for method in ["OPTIONS", "INVITE"] {
                let call_id = format!("{version} 505-{method}-{}-{transport:?}", &version[4..5]);
                let response = exchange(&pbxd, transport, method, &call_id, Extra::default());
                assert!(
                    status(&response).starts_with("SIP/2.0 505"),
                    "{method} in {version} over {transport:?}: {response}"
                );
            }
        }
        still_answers(&pbxd, transport, "505");
    }
    assert_no_call_set_up(&pbxd);
}

/// A session description pbxd can answer.
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

/// §8.2.2.3: a request that requires an extension pbxd does not support
/// gets 420 with `Unsupported` naming it (one it supports, `replaces`,
/// passes).
#[test]
fn rfc3261_8_2_2_3_an_unknown_required_extension_gets_420_with_unsupported() {
    let pbxd = Pbxd::start("rfc3261-8-2-2-3", &[]);
    for transport in [Transport::Udp, Transport::Tcp] {
        for method in ["OPTIONS", "INVITE"] {
            let extra = Extra {
                headers: "Require: replaces, x-nonexistent-extension\r\nContent-Type: application/sdp\r\n",
                body: SDP,
                ..Extra::default()
            };
            let call_id = format!("420-{method}-{transport:?}");
            let response = exchange(&pbxd, transport, method, &call_id, extra);
            assert!(
                status(&response).starts_with("SIP/2.0 420"),
                "{method} over {transport:?}: {response}"
            );
            let unsupported = header(&response, "Unsupported")
                .unwrap_or_else(|| panic!("420 without Unsupported: {response}"));
            assert_eq!(unsupported, "x-nonexistent-extension", "{response}");
        }
        let extra = Extra {
            headers: "Require: replaces\r\n",
            ..Extra::default()
        };
        let response = exchange(
            &pbxd,
            transport,
            "OPTIONS",
            &format!("420-ok-{transport:?}"),
            extra,
        );
        assert!(status(&response).starts_with("SIP/2.0 200"), "{response}");
        still_answers(&pbxd, transport, "420");
    }
}

/// §8.2.3: a body pbxd cannot use gets 415: an INVITE whose body is not a
/// session description, with `Accept`; a body in an encoding pbxd cannot
/// read, with `Accept-Encoding`.
#[test]
fn rfc3261_8_2_3_a_body_pbxd_cannot_use_gets_415_saying_what_it_takes() {
    let pbxd = Pbxd::start("rfc3261-8-2-3", &[]);
    for transport in [Transport::Udp, Transport::Tcp] {
        let cases = [
            (
                "type",
                "Content-Type: text/plain\r\n",
                "Accept",
                "application/sdp",
            ),
            (
                "encoding",
                "Content-Type: application/sdp\r\nContent-Encoding: x-squeezed\r\n",
                "Accept-Encoding",
                "identity",
            ),
        ];
        for (case, headers, named, value) in cases {
            let extra = Extra {
                headers,
                body: SDP,
                ..Extra::default()
            };
            let call_id = format!("415-{case}-{transport:?}");
            let response = exchange(&pbxd, transport, "INVITE", &call_id, extra);
            assert!(
                status(&response).starts_with("SIP/2.0 415"),
                "{case} over {transport:?}: {response}"
            );
            assert_eq!(header(&response, named), Some(value), "{response}");
        }
        still_answers(&pbxd, transport, "415");
    }
    assert_no_call_set_up(&pbxd);
}

/// §18.3: over UDP, a `Content-Length` larger than what the datagram holds,
/// negative, or not a number, gets 400 (and no call is set up). Over TCP,
/// where the length is what cuts the stream into messages, one negative
/// or not a number gets 400 and the connection closes (the next message
/// cannot be found); a longer one is waited for.
#[test]
fn rfc3261_18_3_a_datagram_whose_content_length_does_not_fit_gets_400() {
    let pbxd = Pbxd::start("rfc3261-18-3", &[]);
    let socket = datagram_socket();
    let local = socket.local_addr().unwrap();
    for (case, length) in [("longer", "9999"), ("negative", "-5"), ("words", "many")] {
        let extra = Extra {
            headers: "Content-Type: application/sdp\r\n",
            body: SDP,
            ..Extra::default()
        };
        let good = request("INVITE", &format!("18-3-{case}"), extra, Transport::Udp, local);
        let message = good.replace(
            &format!("Content-Length: {}", SDP.len()),
            &format!("Content-Length: {length}"),
        );
        assert_ne!(message, good);
        let response = send_datagram(&pbxd, &socket, &message, &format!("Content-Length {length}"));
        assert!(
            status(&response).starts_with("SIP/2.0 400"),
            "Content-Length {length}: {response}"
        );
    }
    still_answers(&pbxd, Transport::Udp, "400");
    for (case, length) in [("negative", "-5"), ("words", "many")] {
        let mut peer = Peer::new(&pbxd, Transport::Tcp);
        let extra = Extra {
            headers: "Content-Type: application/sdp\r\n",
            body: SDP,
            ..Extra::default()
        };
        let good = peer.request("INVITE", &format!("18-3-tcp-{case}"), extra);
        let message = good.replace(
            &format!("Content-Length: {}", SDP.len()),
            &format!("Content-Length: {length}"),
        );
        peer.send(message.as_bytes());
        let response = peer.response(&format!("Content-Length {length} over TCP"));
        assert!(
            status(&response).starts_with("SIP/2.0 400") && status(&response).contains("Content-Length"),
            "Content-Length {length} over TCP: {response}"
        );
        assert_eq!(peer.next(), Err("the connection closed".to_string()));
    }
    still_answers(&pbxd, Transport::Tcp, "400");
    assert_no_call_set_up(&pbxd);
}

/// §8.2 and §20: a request without Call-ID, From, To or CSeq, whose CSeq
/// is not a number below 2^31 followed by the request's own method, or
/// whose head is not UTF-8, gets 400 with a reason phrase naming the
/// fault, over UDP and TCP (the SIP stack used to drop such requests
/// unanswered, or close the connection).
#[test]
fn rfc3261_8_2_a_request_missing_or_garbling_a_mandatory_header_gets_400_naming_it() {
    let pbxd = Pbxd::start("rfc3261-8-2", &[]);
    let cases: [(&str, &str, Option<&str>, &str); 10] = [
        ("no-call-id", "Call-ID:", None, "Call-ID"),
        ("no-from", "From:", None, "From"),
        ("no-to", "To:", None, "To"),
        ("no-cseq", "CSeq:", None, "CSeq"),
        ("cseq-words", "CSeq:", Some("CSeq: many INVITE"), "CSeq"),
        ("cseq-negative", "CSeq:", Some("CSeq: -1 INVITE"), "CSeq"),
        ("cseq-huge", "CSeq:", Some("CSeq: 2147483648 INVITE"), "CSeq"),
        ("cseq-no-method", "CSeq:", Some("CSeq: 1"), "CSeq"),
        ("cseq-other-method", "CSeq:", Some("CSeq: 1 BYE"), "CSeq"),
        (
            "not-utf-8",
            "Max-Forwards:",
            Some("Subject: caf\u{ff}\r\nMax-Forwards: 70"),
            "UTF-8",
        ),
    ];
    for transport in [Transport::Udp, Transport::Tcp] {
        for (case, header_name, replacement, named) in cases {
            let mut peer = Peer::new(&pbxd, transport);
            let good = peer.request("INVITE", &format!("8-2-{case}-{transport:?}"), Extra::default());
            let message: Vec<u8> = good
                .split_inclusive("\r\n")
                .filter_map(|line| {
                    if !line.starts_with(header_name) {
                        return Some(line.to_string());
                    }
                    replacement.map(|text| format!("{text}\r\n"))
                })
                .collect::<String>()
                .chars()
                // U+00FF stands for the byte 0xFF, which is not UTF-8.
                .flat_map(|character| match character {
                    '\u{ff}' => vec![0xFF],
                    other => other.to_string().into_bytes(),
                })
                .collect();
            assert_ne!(message, good.as_bytes());
            peer.send(&message);
            let response = peer.response(case);
            let line = status(&response);
            assert!(
                line.starts_with("SIP/2.0 400 "),
                "{case} over {transport:?}: {response}"
            );
            assert!(
                line.contains(named),
                "{case} over {transport:?}: the reason does not name {named}: {response}"
            );
            if case != "no-call-id" {
                assert!(
                    response.contains(&format!("8-2-{case}-{transport:?}@outside.test")),
                    "{case}: no Call-ID: {response}"
                );
            }
        }
        still_answers(&pbxd, transport, "400");
    }
    assert_no_call_set_up(&pbxd);
}

/// §8.2.1 and §21.5.2: a method pbxd does not know at all gets 501, with
/// `Allow` naming those it takes; so does one written in lower case
/// (methods are case-sensitive).
#[test]
fn rfc3261_8_2_1_an_unknown_method_gets_501() {
    let pbxd = Pbxd::start("rfc3261-8-2-1-501", &[]);
    for transport in [Transport::Udp, Transport::Tcp] {
        for method in ["NEWMETHOD", "invite", "RE%47ISTER"] {
            let call_id = format!("501-{}-{transport:?}", method.len());
            let response = exchange(&pbxd, transport, method, &call_id, Extra::default());
            assert!(
                status(&response).starts_with("SIP/2.0 501"),
                "{method} over {transport:?}: {response}"
            );
            let allow = header(&response, "Allow").unwrap_or_else(|| panic!("501 without Allow: {response}"));
            assert!(
                allow.contains("INVITE") && allow.contains("REGISTER"),
                "{response}"
            );
            let to = header(&response, "To").unwrap_or_default();
            assert!(to.contains(";tag="), "501 without a To tag: {response}");
        }
        still_answers(&pbxd, transport, "501");
    }
}

/// §12.2.2: inside a dialog, a request whose CSeq is lower than the last
/// one pbxd had from that side is out of order and gets 500; the dialog
/// goes on (a BYE in order then ends it with 200). A CANCEL that matches
/// no transaction gets 481 with a To tag (§9.2, §8.2.6.2).
#[test]
fn rfc3261_12_2_2_a_request_out_of_order_in_a_dialog_gets_500() {
    let environment = common::repository().join("tests/sipp/env");
    let pbxd = Pbxd::start(
        "rfc3261-12-2-2-500",
        &[format!("environments.server={}", environment.display())],
    );
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut peer = Peer::new(&pbxd, transport);
        let call_id = format!("500-{transport:?}");
        let invite = peer
            .request(
                "INVITE",
                &call_id,
                Extra {
                    cseq: Some(5),
                    headers: "Content-Type: application/sdp\r\n",
                    body: SDP,
                    ..Extra::default()
                },
            )
            .replacen("sip:ivanov@example.com", "sip:tone%23ivanov@example.com", 1);
        peer.send(invite.as_bytes());
        let answer = peer.response("INVITE");
        assert!(status(&answer).starts_with("SIP/2.0 200"), "{answer}");
        let to = header(&answer, "To").unwrap();
        let tag = to.split(";tag=").nth(1).unwrap().to_string();
        let in_dialog = |method: &str, cseq: u32| peer.in_dialog(method, &call_id, &tag, cseq);
        let ack = in_dialog("ACK", 5);
        let old = in_dialog("BYE", 3);
        let bye = in_dialog("BYE", 6);
        peer.send(ack.as_bytes());
        peer.send(old.as_bytes());
        let response = peer.response("a BYE out of order");
        assert!(
            status(&response).starts_with("SIP/2.0 500"),
            "{transport:?}: {response}"
        );
        peer.send(bye.as_bytes());
        let response = peer.response("a BYE in order");
        assert!(
            status(&response).starts_with("SIP/2.0 200"),
            "{transport:?}: {response}"
        );

        let cancel = exchange(
            &pbxd,
            transport,
            "CANCEL",
            &format!("no-such-{transport:?}"),
            Extra::default(),
        );
        assert!(status(&cancel).starts_with("SIP/2.0 481"), "{cancel}");
        let to = header(&cancel, "To").unwrap_or_default();
        assert!(to.contains(";tag="), "481 to CANCEL without a To tag: {cancel}");
        still_answers(&pbxd, transport, "500");
    }
}

/// §17.2.1: over UDP, a final response other than 2xx to an INVITE (here
/// the 407 challenge) is sent again, at T1 and doubling, until the ACK
/// comes; after the ACK, no more.
#[test]
fn rfc3261_17_2_1_a_challenge_to_an_invite_is_retransmitted_until_the_ack() {
    let pbxd = Pbxd::start("rfc3261-17-2-1", &[]);
    let mut peer = Peer::new(&pbxd, Transport::Udp);
    // A caller claiming one of pbxd's accounts must prove it: 407.
    let invite = peer
        .request("INVITE", "17-2-1", Extra::default())
        .replace("<sip:tester@outside.test>", "<sip:petrov@example.com>");
    peer.send(invite.as_bytes());
    let challenge = peer.response("INVITE");
    assert!(status(&challenge).starts_with("SIP/2.0 407"), "{challenge}");
    // T1 is 500 ms: the copies come at 0.5 s, 1.5 s, 3.5 s.
    let again = peer.response("INVITE, again");
    assert_eq!(status(&again), status(&challenge), "{again}");
    assert_eq!(header(&again, "To"), header(&challenge, "To"), "{again}");
    let tag = header(&challenge, "To")
        .unwrap()
        .split(";tag=")
        .nth(1)
        .unwrap()
        .to_string();
    let ack = peer
        .request(
            "ACK",
            "17-2-1",
            Extra {
                to_tag: Some(&tag),
                ..Extra::default()
            },
        )
        .replace("<sip:tester@outside.test>", "<sip:petrov@example.com>");
    peer.send(ack.as_bytes());
    // Whatever was on its way before the ACK, then nothing for 4 s.
    let socket = peer.udp.as_ref().unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    let mut after = Vec::new();
    while let Ok(message) = peer.next() {
        after.push(message);
    }
    assert!(after.len() <= 1, "the 407 went on after the ACK: {after:#?}");
    assert_no_call_set_up(&pbxd);
}

/// §18.3 and §21.5.14: a datagram up to the UDP maximum is read whole
/// (here 20 KB: it used to be cut at 8 KB); over TCP, a message of more
/// than 64 KB gets 513 and the connection closes.
#[test]
fn rfc3261_18_3_large_messages_are_read_whole_or_refused_with_513() {
    let pbxd = Pbxd::start("rfc3261-18-3-large", &[]);
    let padding: String = (0..200)
        .map(|line| format!("X-Padding-{line}: {}\r\n", "p".repeat(90)))
        .collect();
    let extra = Extra {
        headers: &padding,
        ..Extra::default()
    };
    let response = exchange(&pbxd, Transport::Udp, "OPTIONS", "large-udp", extra);
    assert!(status(&response).starts_with("SIP/2.0 200"), "{response}");

    let mut peer = Peer::new(&pbxd, Transport::Tcp);
    let body = "v".repeat(70_000);
    let extra = Extra {
        headers: "Content-Type: text/plain\r\n",
        body: &body,
        ..Extra::default()
    };
    let message = peer.request("OPTIONS", "large-tcp", extra);
    peer.send(message.as_bytes());
    let response = peer.response("70 KB over TCP");
    assert!(status(&response).starts_with("SIP/2.0 513"), "{response}");
    still_answers(&pbxd, Transport::Tcp, "513");
}

/// Issue 17: a TCP connection on which nothing comes for
/// `sip.tcp_idle_seconds` is closed, and one address may hold at most
/// `sip.tcp_connections_per_source` at once (more are closed as they come);
/// everyone else is answered meanwhile.
#[test]
fn idle_tcp_connections_are_closed_and_one_source_holds_at_most_its_share() {
    let pbxd = Pbxd::start(
        "tcp-idle",
        &[
            "sip.tcp_idle_seconds=2".into(),
            "sip.tcp_connections_per_source=4".into(),
        ],
    );
    let held: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(pbxd.sip).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut over = TcpStream::connect(pbxd.sip).unwrap();
    over.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buffer = [0u8; 16];
    let refused = matches!(over.read(&mut buffer), Ok(0))
        || over
            .read(&mut buffer)
            .is_err_and(|error| error.kind() == std::io::ErrorKind::ConnectionReset);
    assert!(refused, "a fifth connection from one address was kept");
    still_answers(&pbxd, Transport::Udp, "over the cap");
    // Idle for longer than 2 s: each is closed by pbxd.
    for mut stream in held {
        stream.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
        let read = stream.read(&mut buffer);
        assert!(
            matches!(read, Ok(0))
                || read.is_err_and(|error| error.kind() == std::io::ErrorKind::ConnectionReset),
            "an idle connection was not closed"
        );
    }
    // Those closed no longer count: a new one from the same address works.
    still_answers(&pbxd, Transport::Tcp, "idle");
    let log = pbxd.log();
    assert!(log.contains("refused TCP connections: 1"), "{log}");
}

/// Issue 17: a flood of malformed requests is counted and summed up in
/// the log at most once every 10 s, not a line each; so are the requests
/// refused while their source is locked out for failing to authenticate.
#[test]
fn refusals_and_lockouts_are_logged_as_a_summary() {
    let pbxd = Pbxd::start("refusal-summary", &["sip.auth_failures_per_minute=3".into()]);
    let socket = datagram_socket();
    let local = socket.local_addr().unwrap();
    for round in 0..30 {
        let message = request(
            "OPTIONS",
            &format!("flood-{round}"),
            Extra::default(),
            Transport::Udp,
            local,
        )
        .replace("CSeq: 1 OPTIONS", "CSeq: 1 BYE");
        let response = send_datagram(&pbxd, &socket, &message, "a bad CSeq");
        assert!(status(&response).starts_with("SIP/2.0 400"), "{response}");
    }
    // REGISTERs with credentials for a name that is no account: each a
    // failure, until the source is locked out.
    let authorization = "Authorization: Digest username=\"nobody\", realm=\"example.com\", \
                         nonce=\"x\", uri=\"sip:example.com\", response=\"0123456789abcdef0123456789abcdef\"\r\n";
    let mut statuses = Vec::new();
    for round in 0..6 {
        let extra = Extra {
            headers: authorization,
            ..Extra::default()
        };
        let message = request(
            "REGISTER",
            &format!("locked-{round}"),
            extra,
            Transport::Udp,
            local,
        )
        .replace("REGISTER sip:ivanov@example.com", "REGISTER sip:example.com")
        .replace("<sip:ivanov@example.com>", "<sip:nobody@example.com>");
        let response = send_datagram(&pbxd, &socket, &message, "REGISTER");
        statuses.push(status(&response).to_string());
    }
    assert!(
        statuses.iter().all(|line| line.starts_with("SIP/2.0 403")),
        "{statuses:?}"
    );
    let log = pbxd.wait_for_line(5, &["refused requests from locked-out sources:"]);
    let summaries = common::lines_with(&log, "refused malformed SIP messages:");
    assert_eq!(summaries.len(), 1, "{log}");
    assert!(!log.contains("WARN"), "malformed requests wrote warnings:\n{log}");
    assert!(
        log.contains("refused requests from locked-out sources: 1 in the last 0 s"),
        "{log}"
    );
}

/// Issue 17, defect 1: a TCP connection that the client resets while
/// pbxd sets up its call (before the answer, right after the provisional
/// responses, or right after the 200 OK) leaves no socket open: once
/// those calls have ended, pbxd holds as many files as before them.
#[test]
fn tcp_connections_reset_while_a_call_is_set_up_leave_no_socket_open() {
    let environment = common::repository().join("tests/sipp/env");
    let pbxd = Pbxd::start(
        "reset-tcp",
        &[format!("environments.server={}", environment.display())],
    );
    still_answers(&pbxd, Transport::Tcp, "warm-up");
    std::thread::sleep(Duration::from_millis(300));
    let before = pbxd.open_files();
    for round in 0..30 {
        let stream = TcpStream::connect(pbxd.sip).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let local = stream.local_addr().unwrap();
        let extra = Extra {
            headers: "Content-Type: application/sdp\r\n",
            body: SDP,
            ..Extra::default()
        };
        let invite = request("INVITE", &format!("reset-{round}"), extra, Transport::Tcp, local).replacen(
            "sip:ivanov@example.com",
            "sip:tone%23ivanov@example.com",
            1,
        );
        let mut stream = stream;
        stream.write_all(invite.as_bytes()).unwrap();
        // A third reset at once, a third after the first response, a
        // third after the answer.
        let wanted = ["", "SIP/2.0 1", "SIP/2.0 200"][round % 3];
        let mut received = String::new();
        let mut buffer = [0u8; 4096];
        while !wanted.is_empty() && !received.contains(wanted) {
            match stream.read(&mut buffer) {
                Ok(length) if length > 0 => received.push_str(&String::from_utf8_lossy(&buffer[..length])),
                other => panic!(
                    "round {round}: no {wanted:?} from pbxd ({other:?}): {received}\n{}",
                    pbxd.log()
                ),
            }
        }
        let socket = socket2::Socket::from(stream);
        socket.set_linger(Some(Duration::ZERO)).unwrap();
        drop(socket);
    }
    // The calls end (a 200 OK never acknowledged gives up after 64·T1 =
    // 32 s); then every socket they used must be closed.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut now = pbxd.open_files();
    while now > before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        now = pbxd.open_files();
    }
    assert!(
        now <= before,
        "pbxd held {before} files before 30 reset INVITEs over TCP and {now} after\n{}",
        pbxd.log()
    );
    still_answers(&pbxd, Transport::Tcp, "reset");
}

/// SIP scanners (SIPVicious's `friendly-scanner` and the like, by their
/// User-Agent) get nothing back by default, over UDP and TCP, while the
/// same request from a phone is answered; with `sip.scanner_answer =
/// "403"` they get 403.
#[test]
fn scanners_are_answered_with_nothing_or_403() {
    let scan = |agent: &str, call_id: &str| {
        let socket = datagram_socket();
        let local = socket.local_addr().unwrap();
        let extra = Extra {
            headers: &format!("User-Agent: {agent}\r\n"),
            ..Extra::default()
        };
        (socket, request("OPTIONS", call_id, extra, Transport::Udp, local))
    };
    let pbxd = Pbxd::start("conformance-scanner", &[]);
    let (socket, message) = scan("friendly-scanner", "scan-1");
    socket
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    socket.send_to(message.as_bytes(), pbxd.sip).unwrap();
    let mut buffer = [0u8; 4096];
    assert!(socket.recv_from(&mut buffer).is_err(), "a scanner was answered");
    let mut tcp = Peer::new(&pbxd, Transport::Tcp);
    let extra = Extra {
        headers: "User-Agent: sipvicious 0.3.4\r\n",
        ..Extra::default()
    };
    let message = tcp.request("OPTIONS", "scan-2", extra);
    tcp.send(message.as_bytes());
    assert!(tcp.next().is_err(), "a scanner was answered over TCP");
    let (socket, message) = scan("Linphone/5.2.0", "phone-1");
    let answer = send_datagram(&pbxd, &socket, &message, "a phone's OPTIONS");
    assert_eq!(status(&answer), "SIP/2.0 200 OK", "{answer}");

    let pbxd = Pbxd::start(
        "conformance-scanner-403",
        &["sip.scanner_answer=\"403\"".to_string()],
    );
    let (socket, message) = scan("friendly-scanner", "scan-3");
    let answer = send_datagram(&pbxd, &socket, &message, "a scanner's OPTIONS");
    assert_eq!(status(&answer), "SIP/2.0 403 Forbidden", "{answer}");
}
