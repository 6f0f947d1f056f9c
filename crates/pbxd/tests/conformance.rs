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

/// What a test request carries besides the usual: a To tag, more
/// headers (each line ending in CRLF), a body.
#[derive(Clone, Copy, Default)]
struct Extra<'a> {
    to_tag: Option<&'a str>,
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
    let (headers, body) = (extra.headers, extra.body);
    let length = body.len();
    format!(
        "{method} sip:ivanov@example.com {version}\r\n\
         Via: SIP/2.0/{via} {local};branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:tester@outside.test>;tag=from-{call_id}\r\n\
         To: <sip:ivanov@example.com>{to_tag}\r\n\
         Call-ID: {call_id}@outside.test\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:tester@{local}>\r\n\
         {headers}\
         Content-Length: {length}\r\n\r\n{body}"
    )
}

/// Sends one request and returns pbxd's first final response.
fn exchange(pbxd: &Pbxd, transport: Transport, method: &str, call_id: &str, extra: Extra<'_>) -> String {
    match transport {
        Transport::Udp => {
            let socket = datagram_socket();
            let message = request(method, call_id, extra, transport, socket.local_addr().unwrap());
            send_datagram(pbxd, &socket, &message, method)
        }
        Transport::Tcp => {
            let mut stream = TcpStream::connect(pbxd.sip).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let message = request(method, call_id, extra, transport, stream.local_addr().unwrap());
            stream.write_all(message.as_bytes()).unwrap();
            let mut received = String::new();
            let mut buffer = [0u8; 4096];
            loop {
                // The first complete final response on the stream.
                if let Some(end) = received.find("\r\n\r\n") {
                    let head = &received[..end];
                    if !head.starts_with("SIP/2.0 1") {
                        return head.to_string();
                    }
                    received.drain(..end + 4);
                    continue;
                }
                let length = stream
                    .read(&mut buffer)
                    .unwrap_or_else(|error| panic!("no answer to {method} over TCP: {error}"));
                assert!(
                    length > 0,
                    "pbxd closed the connection without answering {method}"
                );
                received.push_str(&String::from_utf8_lossy(&buffer[..length]));
            }
        }
    }
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

/// No refused INVITE started anything: no task took a call, no phone rang.
fn assert_no_call_set_up(pbxd: &Pbxd) {
    let log = pbxd.log();
    assert!(
        !log.contains("incoming call") && !log.contains("ringing"),
        "a refused INVITE set up a call:\n{log}"
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
}

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
/// negative, or not a number, gets 400 (and no call is set up).
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
    assert_no_call_set_up(&pbxd);
}

/// §8.2 and §20: a request without Call-ID, From, To or CSeq, or whose
/// CSeq is not a number below 2^31 followed by the request's own method,
/// gets 400 with a reason phrase naming the fault (over UDP, where the
/// stack used to drop it unanswered).
#[test]
fn rfc3261_8_2_a_request_missing_or_garbling_a_mandatory_header_gets_400_naming_it() {
    let pbxd = Pbxd::start("rfc3261-8-2", &[]);
    let socket = datagram_socket();
    let local = socket.local_addr().unwrap();
    let cases: [(&str, &str, Option<&str>, &str); 9] = [
        ("no-call-id", "Call-ID:", None, "Call-ID"),
        ("no-from", "From:", None, "From"),
        ("no-to", "To:", None, "To"),
        ("no-cseq", "CSeq:", None, "CSeq"),
        ("cseq-words", "CSeq:", Some("CSeq: many INVITE"), "CSeq"),
        ("cseq-negative", "CSeq:", Some("CSeq: -1 INVITE"), "CSeq"),
        ("cseq-huge", "CSeq:", Some("CSeq: 2147483648 INVITE"), "CSeq"),
        ("cseq-no-method", "CSeq:", Some("CSeq: 1"), "CSeq"),
        ("cseq-other-method", "CSeq:", Some("CSeq: 1 BYE"), "CSeq"),
    ];
    for (case, header_name, replacement, named) in cases {
        let good = request(
            "INVITE",
            &format!("8-2-{case}"),
            Extra::default(),
            Transport::Udp,
            local,
        );
        let message: String = good
            .split_inclusive("\r\n")
            .filter_map(|line| {
                if !line.starts_with(header_name) {
                    return Some(line.to_string());
                }
                replacement.map(|text| format!("{text}\r\n"))
            })
            .collect();
        assert_ne!(message, good);
        let response = send_datagram(&pbxd, &socket, &message, case);
        let line = status(&response);
        assert!(line.starts_with("SIP/2.0 400 "), "{case}: {response}");
        assert!(
            line.contains(named),
            "{case}: the reason does not name {named}: {response}"
        );
        if case != "no-call-id" {
            assert!(
                response.contains(&format!("8-2-{case}@outside.test")),
                "{case}: no Call-ID: {response}"
            );
        }
    }
    still_answers(&pbxd, Transport::Udp, "400");
    assert_no_call_set_up(&pbxd);
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
            "sip:tone%23operator@example.com",
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
