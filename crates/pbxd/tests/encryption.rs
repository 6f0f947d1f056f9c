//! Encryption (issue 15 item 5): SIP over TLS (`sip.tls_listen`) and SRTP
//! (SDES, `AES_CM_128_HMAC_SHA1_80`) against real peers: baresip with
//! `mediaenc=srtp-mand` over TLS calling an app and called through pbxd
//! by a plain caller (sipp), with tcpdump checking that no RTP of theirs
//! crosses the wire in clear; sipp's own TLS transport registering and
//! calling; and what bad input gets (a handshake of garbage, malformed
//! `a=crypto` lines).

// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pbx_media::{Codec, Prompt};
use pbx_test_peers::TestCertificates;

mod common;

use common::capture::{Capture, Rtp};
use common::{baresip, collect, lines_with, wait_until, Pbxd};

/// Bytes an SRTP packet's payload carries besides 20 ms of G.711: the tag.
const SRTP_TAG: usize = 10;

/// pbxd with SIP over TLS on a free port, with test certificates; the
/// certificates and the TLS port. `extra` are more `--set`s.
fn pbxd_with_tls(name: &str, extra: &[&str], log: &str) -> Option<(Pbxd, TestCertificates, u16)> {
    let folder = std::env::temp_dir().join(format!("pbxd-encryption-{name}-{}", std::process::id()));
    let certificates = TestCertificates::make(&folder)?;
    let tls_port = pbx_test_peers::free_tcp_port();
    let mut settings = vec![
        format!("sip.tls_listen=127.0.0.1:{tls_port}"),
        format!("sip.tls_cert={}", certificates.cert.display()),
        format!("sip.tls_key={}", certificates.key.display()),
    ];
    settings.extend(extra.iter().map(|setting| setting.to_string()));
    let pbxd = Pbxd::start_logging(name, &settings, log);
    Some((pbxd, certificates, tls_port))
}

/// Four UDP ports free right now, from an even one: baresip's RTP range.
fn free_rtp_range() -> u16 {
    for _ in 0..200 {
        let port = pbx_test_peers::free_udp_port() & !1;
        if port < 60000 && (port..port + 4).all(|port| UdpSocket::bind(("127.0.0.1", port)).is_ok()) {
            return port;
        }
    }
    panic!("no free RTP ports for baresip");
}

/// baresip registered with pbxd over TLS as ivanov, SRTP mandatory, its
/// RTP on `rtp_ports..rtp_ports+3`, answering calls when `answer`.
fn tls_phone(
    installation: &(PathBuf, PathBuf),
    ca: &Path,
    tls_port: u16,
    rtp_ports: u16,
    answer: bool,
) -> baresip::Phone {
    let settings = format!(
        "sip_cafile {}\nrtp_ports {rtp_ports}-{}\n",
        ca.display(),
        rtp_ports + 3
    );
    let answermode = if answer { ";answermode=auto" } else { "" };
    let account = format!(
        "<sip:ivanov@example.com;transport=tls>;auth_pass=ivanov-demo;\
         outbound=\"sip:127.0.0.1:{tls_port};transport=tls\";regint=300;\
         mediaenc=srtp-mand{answermode}\n"
    );
    baresip::Phone::start(
        installation,
        &format!("encryption-phone-{rtp_ports}"),
        &settings,
        &["srtp.so"],
        &account,
    )
}

/// Every 20 ms frame of a prompt of the stock environment, in PCMU and
/// PCMA: what pbxd would send in clear.
fn clear_frames(prompt: &str) -> HashSet<Vec<u8>> {
    let path = common::repository().join("stdlib-scripts").join(prompt);
    let prompt = Prompt::from_wav(&std::fs::read(&path).unwrap()).unwrap();
    let mut frames = HashSet::new();
    for index in 0..prompt.frames() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            frames.insert(prompt.frame(codec, index).to_vec());
        }
    }
    frames
}

/// The `name=value` of pbxd's "call leg ended" lines, as numbers.
fn leg_values(log: &str, name: &str) -> Vec<u64> {
    let needle = format!("{name}=");
    lines_with(log, "call leg ended")
        .iter()
        .filter_map(|line| {
            line.split(&needle)
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// What crossed the wire to and from baresip's RTP ports: each packet is
/// SRTP (a 160-byte G.711 frame and a 10-byte tag), and none of pbxd's
/// carries a frame of `clear` as it is. The packets pbxd sent.
fn assert_all_encrypted(packets: &[Rtp], rtp_ports: u16, clear: &HashSet<Vec<u8>>, context: &str) -> usize {
    let ours = |port: u16| (rtp_ports..rtp_ports + 4).contains(&port);
    let to_phone: Vec<&Rtp> = packets
        .iter()
        .filter(|packet| ours(packet.destination_port))
        .collect();
    let from_phone: Vec<&Rtp> = packets.iter().filter(|packet| ours(packet.source_port)).collect();
    assert!(
        to_phone.len() > 50 && from_phone.len() > 50,
        "{} packets to the phone, {} from it\n{context}",
        to_phone.len(),
        from_phone.len()
    );
    for packet in to_phone.iter().chain(&from_phone) {
        // RTCP (SRTCP) goes to the odd port; it is not what we look at.
        if packet.payload_type >= 72 && packet.payload_type <= 76 {
            continue;
        }
        assert_eq!(
            packet.payload.len(),
            160 + SRTP_TAG,
            "a packet of {} bytes between {} and {}: not SRTP\n{context}",
            packet.payload.len(),
            packet.source_port,
            packet.destination_port
        );
    }
    for packet in &to_phone {
        assert!(
            !clear.contains(&packet.payload[..160.min(packet.payload.len())]),
            "a frame of the prompt crossed the wire in clear\n{context}"
        );
    }
    to_phone.len()
}

/// baresip (SRTP mandatory) registers over TLS and calls the callback
/// demo; the prompts reach it over SRTP: pbxd authenticates what baresip
/// sends (none refused), baresip hears the prompt (it drops what fails its
/// check), and no frame of the prompt crosses the wire in clear.
#[test]
fn baresip_over_tls_with_srtp_calls_an_app_and_nothing_crosses_in_clear() {
    let Some(installation) = baresip::installation(&["srtp.so"]) else {
        return;
    };
    let Some((pbxd, certificates, tls_port)) = pbxd_with_tls(
        "srtp-app",
        &["sip.srtp=mandatory"],
        "info,rsipstack=warn,pbx_runtime::observe=debug",
    ) else {
        return;
    };
    let rtp_ports = free_rtp_range();
    let Some(capture) = Capture::start_filter(
        "srtp-app",
        &format!("udp and portrange {rtp_ports}-{}", rtp_ports + 3),
    ) else {
        return;
    };
    let mut phone = tls_phone(&installation, &certificates.ca, tls_port, rtp_ports, false);
    let log = pbxd.wait_for_line(10, &["registered account=ivanov@example.com", "bindings=1"]);
    assert!(
        log.contains("registered account=ivanov@example.com"),
        "no registration over TLS\n{log}\n{}",
        phone.transcript()
    );
    phone.command("dial", "sip:callback%23ivanov@example.com");
    assert!(
        phone.wait_for_event(10, "CALL_ESTABLISHED"),
        "no call\n{}\n{}",
        pbxd.log(),
        phone.transcript()
    );
    let log = pbxd.wait_for_line(10, &["callbacklater.wav"]);
    assert!(log.contains("callbacklater.wav"), "{log}\n{}", phone.transcript());
    std::thread::sleep(Duration::from_secs(3));
    phone.command("hangup", "");
    let log = pbxd.wait_for_line(10, &["call leg ended"]);
    let packets = capture.stop();
    phone.quit();
    let context = format!("{log}\n{}", phone.transcript());
    assert_eq!(leg_values(&log, "srtp_refused"), vec![0], "{context}");
    let received = leg_values(&log, "rtp_received");
    assert!(
        received.len() == 1 && received[0] > 100,
        "{received:?}\n{context}"
    );
    let clear = clear_frames("russian/callbacklater.wav");
    let sent = assert_all_encrypted(&packets, rtp_ports, &clear, &context);
    assert!(sent > 100, "{sent} packets to the phone\n{context}");
    // baresip's own count: what passed its SRTP check and was played.
    let said = phone.transcript();
    assert!(
        !said.contains("srtp: unprotect"),
        "baresip refused packets\n{said}"
    );
}

/// A plain caller (sipp over UDP, RTP/AVP) calls ivanov, whose phone
/// (baresip) registered over TLS: pbxd calls the phone over its TLS
/// connection and offers SRTP (sip.srtp = "optional"), bridging the plain
/// leg with the encrypted one; nothing towards the phone is clear.
#[test]
fn a_phone_registered_over_tls_is_called_over_tls_with_srtp() {
    let Some(installation) = baresip::installation(&["srtp.so"]) else {
        return;
    };
    let Some(sipp) = pbx_test_peers::sipp() else {
        return;
    };
    let Some((pbxd, certificates, tls_port)) =
        // Within ivanov's working hours: his phone rings.
        pbxd_with_tls(
            "srtp-called",
            &["clock.start=2026-11-23T12:00:00+03:00"],
            "info,rsipstack=warn,pbx_sip::outgoing=debug",
        )
    else {
        return;
    };
    let rtp_ports = free_rtp_range();
    let Some(capture) = Capture::start_filter(
        "srtp-called",
        &format!("udp and portrange {rtp_ports}-{}", rtp_ports + 3),
    ) else {
        return;
    };
    let phone = tls_phone(&installation, &certificates.ca, tls_port, rtp_ports, true);
    let log = pbxd.wait_for_line(10, &["registered account=ivanov@example.com", "bindings=1"]);
    assert!(
        log.contains("registered account=ivanov@example.com"),
        "{log}\n{}",
        phone.transcript()
    );
    let output = common::sipp(&sipp, "call_ivanov.xml", &pbxd, &[]);
    common::assert_passed(&output, &pbxd);
    let log = pbxd.wait_for(10, |log| lines_with(log, "call leg ended").len() >= 2);
    let packets = capture.stop();
    let context = format!("{log}\n{}", phone.transcript());
    assert!(phone.wait_for_event(1, "CALL_ESTABLISHED"), "{context}");
    let invite = lines_with(&log, "INVITE to ");
    assert!(
        invite.len() == 1 && invite[0].contains("Tls") && invite[0].contains("srtp=true"),
        "the phone was not called over TLS with SRTP: {invite:?}\n{context}"
    );
    assert_eq!(leg_values(&log, "srtp_refused"), vec![0, 0], "{context}");
    let no_prompt = HashSet::new();
    assert_all_encrypted(&packets, rtp_ports, &no_prompt, &context);
}

/// A phone registers over TLS with its digest: sipp's own TLS transport
/// (`-t l1`) where sipp has one; Debian's sipp is built without TLS, and
/// there the client is OpenSSL's (`openssl s_client`), the two REGISTERs
/// written by the test (the second answering pbxd's challenge). (Being
/// called over TLS is baresip's test above.)
#[test]
fn a_phone_registers_over_tls() {
    let Some((pbxd, certificates, tls_port)) = pbxd_with_tls("register-tls", &[], common::LOG_FILTER) else {
        return;
    };
    let sipp = pbx_test_peers::sipp();
    let sipp_has_tls = sipp.as_ref().is_some_and(|sipp| {
        Command::new(sipp).arg("-h").output().is_ok_and(|output| {
            String::from_utf8_lossy(&output.stdout).contains("l1:")
                || String::from_utf8_lossy(&output.stderr).contains("l1:")
        })
    });
    if let (Some(sipp), true) = (sipp, sipp_has_tls) {
        let output = common::sipp_command(
            &sipp,
            "register_ivanov.xml",
            &pbxd,
            &["-key", "phone_port", "5999"],
        )
        .args(["-t", "l1", "-rsa", &format!("127.0.0.1:{tls_port}")])
        .arg("-tls_cert")
        .arg(&certificates.cert)
        .arg("-tls_key")
        .arg(&certificates.key)
        .output()
        .expect("sipp runs");
        common::assert_passed(&output, &pbxd);
    } else {
        eprintln!("sipp has no TLS transport: registering with openssl s_client instead");
        let mut client = Command::new("openssl")
            .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
            .arg(format!("127.0.0.1:{tls_port}"))
            .arg("-CAfile")
            .arg(&certificates.ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl runs");
        let register = |cseq: u32, authorization: &str| {
            format!(
                "REGISTER sip:example.com SIP/2.0\r\n\
                 Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-tls-reg-{cseq};rport\r\n\
                 From: <sip:ivanov@example.com>;tag=tls-reg\r\nTo: <sip:ivanov@example.com>\r\n\
                 Call-ID: tls-register@127.0.0.1\r\nCSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\n\
                 Contact: <sip:ivanov@127.0.0.1:5999;transport=tls>\r\nExpires: 300\r\n\
                 {authorization}Content-Length: 0\r\n\r\n"
            )
        };
        let stdin = client.stdin.as_mut().unwrap();
        stdin.write_all(register(1, "").as_bytes()).unwrap();
        let said = collect(client.stdout.take().unwrap());
        let challenge = wait_until(&said, 10, |said| {
            said.contains("SIP/2.0 401") && said.contains("\n\n")
        });
        let header = challenge
            .lines()
            .find_map(|line| line.strip_prefix("WWW-Authenticate: "))
            .unwrap_or_else(|| panic!("no challenge over TLS: {challenge:?}\n{}", pbxd.log()));
        let answer = pbx_sip::digest::client_response(
            header,
            "REGISTER",
            "sip:example.com",
            "ivanov",
            "ivanov-demo",
            "0a4f113b",
            1,
        )
        .unwrap();
        let stdin = client.stdin.as_mut().unwrap();
        stdin
            .write_all(register(2, &format!("Authorization: {answer}\r\n")).as_bytes())
            .unwrap();
        let answered = wait_until(&said, 10, |said| said.contains("SIP/2.0 200"));
        let _ = client.kill();
        let _ = client.wait();
        assert!(answered.contains("SIP/2.0 200"), "{answered:?}\n{}", pbxd.log());
    }
    let log = pbxd.wait_for_line(5, &["registered account=ivanov@example.com"]);
    assert!(log.contains("registered account=ivanov@example.com"), "{log}");
}

/// Bytes that are no TLS handshake close that connection only: pbxd goes
/// on taking TLS connections (openssl's client sends OPTIONS and gets
/// 200) and SIP over UDP.
#[test]
fn a_handshake_of_garbage_closes_only_that_connection() {
    let Some((pbxd, certificates, tls_port)) = pbxd_with_tls("tls-garbage", &[], common::LOG_FILTER) else {
        return;
    };
    let mut garbage = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    garbage.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    garbage
        .write_all(b"OPTIONS sip:pbx@127.0.0.1 SIP/2.0\r\n\r\n\x16\x03\x01\xff\xff garbage")
        .unwrap();
    let mut buffer = [0u8; 512];
    // Closed (or reset) rather than left waiting: 0 bytes or an error, soon.
    let started = Instant::now();
    let read = garbage.read(&mut buffer);
    assert!(
        matches!(read, Ok(0) | Err(_)) || read.as_ref().is_ok_and(|&length| length > 0 && buffer[0] == 0x15),
        "{read:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // A real client after it.
    let options = format!(
        "OPTIONS sip:pbx@127.0.0.1:{tls_port};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-tls-1;rport\r\n\
         From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:pbx@127.0.0.1>\r\n\
         Call-ID: tls-probe-1@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
        .arg(format!("127.0.0.1:{tls_port}"))
        .arg("-CAfile")
        .arg(&certificates.ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl runs");
    client
        .stdin
        .as_mut()
        .unwrap()
        .write_all(options.as_bytes())
        .unwrap();
    let said = collect(client.stdout.take().unwrap());
    let answer = wait_until(&said, 10, |said| said.contains("SIP/2.0 "));
    let _ = client.kill();
    let _ = client.wait();
    assert!(answer.starts_with("SIP/2.0 200"), "{answer:?}\n{}", pbxd.log());
    // And UDP is as it was.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let options = options
        .replace("SIP/2.0/TLS", "SIP/2.0/UDP")
        .replace("tls-probe-1", "udp-probe-1");
    udp.send_to(options.as_bytes(), pbxd.sip).unwrap();
    let length = udp.recv(&mut buffer).unwrap();
    assert!(buffer[..length].starts_with(b"SIP/2.0 200"));
}

/// An INVITE from outside to ivanov with `body`; the status pbxd answers
/// (after any 100).
fn invite_status(pbxd: &Pbxd, body: &str, call: &str) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = socket.local_addr().unwrap().port();
    let invite = format!(
        "INVITE sip:ivanov@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{call};rport\r\n\
         From: <sip:5550000@outside.test>;tag={call}\r\nTo: <sip:ivanov@example.com>\r\n\
         Call-ID: {call}@127.0.0.1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
         Contact: <sip:caller@127.0.0.1:{port}>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.send_to(invite.as_bytes(), pbxd.sip).unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        let length = socket.recv(&mut buffer).unwrap();
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        if !text.starts_with("SIP/2.0 100") {
            return text.lines().next().unwrap_or_default().to_string();
        }
    }
}

fn offer(protocol: &str, crypto: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 40000 {protocol} 0\r\na=rtpmap:0 PCMU/8000\r\n{crypto}"
    )
}

/// What cannot be used is refused with 488, and pbxd goes on: a malformed
/// `a=crypto` line, another suite, an MKI, SRTP where it is off, plain
/// audio where SRTP is mandatory.
#[test]
fn unusable_crypto_offers_get_488() {
    let pbxd = Pbxd::start("crypto-488", &[]);
    for (number, crypto) in [
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:tooshort\r\n",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80\r\n",
        "a=crypto:one two three four five\r\n",
        "a=crypto:1 F8_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n",
        "",
    ]
    .iter()
    .enumerate()
    {
        let status = invite_status(&pbxd, &offer("RTP/SAVP", crypto), &format!("crypto-{number}"));
        assert!(
            status.starts_with("SIP/2.0 488"),
            "{crypto}: {status}\n{}",
            pbxd.log()
        );
    }
    drop(pbxd);
    let off = Pbxd::start("crypto-off", &["sip.srtp=off".into()]);
    let good = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";
    let status = invite_status(&off, &offer("RTP/SAVP", good), "srtp-off");
    assert!(status.starts_with("SIP/2.0 488"), "{status}");
    drop(off);
    let mandatory = Pbxd::start("crypto-mandatory", &["sip.srtp=mandatory".into()]);
    let status = invite_status(&mandatory, &offer("RTP/AVP", ""), "srtp-mandatory");
    assert!(status.starts_with("SIP/2.0 488"), "{status}");
}
