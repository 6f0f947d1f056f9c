//! Trunks (issue 11): numbers rewritten for each trunk and from it, and
//! failover. `pbxd serve` against sipp peers on loopback: providers that
//! refuse (503), answer, answer a ping, or call in; a provider that never
//! answers is a UDP socket that only listens. petrov's phone (sipp,
//! tests/sipp/petrov_calls_out.xml) places the calls out: it dials
//! 84951234567, which his class of service allows.

// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::peer::{register, Peer};
use common::{assert_passed, header, lines_with, sipp, Pbxd};

/// Monday 10:00 in Moscow: petrov's working hours, so his phone rings.
const IN_HOURS: &str = "clock.start=2026-11-23T10:00:00+03:00";

/// `trunks.NAME` on `port` of loopback, carrying the numbers that start
/// with 8, sent as `outgoing` rewrites them.
fn trunk(name: &str, port: u16, outgoing: &str) -> Vec<String> {
    vec![
        format!("trunks.{name}.proxy=127.0.0.1:{port}"),
        format!("trunks.{name}.numbers=[\"8*\"]"),
        format!("trunks.{name}.outgoing={outgoing}"),
    ]
}

/// Trunk a wants E.164 (`+74951234567`), trunk b the same without the
/// plus (`74951234567`).
const E164: &str = r#"[{ match = "8*", strip = 1, prepend = "+7" }]"#;
const E164_NO_PLUS: &str = r#"[{ match = "8*", strip = 1, prepend = "7" }]"#;

/// The Request-URI of the first INVITE among `messages`.
fn invite_uri(messages: &[String]) -> String {
    messages
        .iter()
        .find_map(|message| message.strip_prefix("INVITE "))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("no INVITE in {messages:#?}"))
        .to_string()
}

/// petrov's phone calls 84951234567 (it authenticates); sipp's output.
fn petrov_calls_out(sipp_program: &Path, pbxd: &Pbxd) -> Output {
    sipp(sipp_program, "petrov_calls_out.xml", pbxd, &[])
}

/// `/metrics`' `pbxd_trunk_up` line of `trunk`.
fn trunk_up(curl_program: &Path, pbxd: &Pbxd, trunk: &str) -> String {
    let (status, text) = common::curl(curl_program, pbxd, &[], "/metrics");
    assert_eq!(status, 200, "{text}");
    let label = format!("pbxd_trunk_up{{trunk=\"{trunk}\"}} ");
    text.lines()
        .find(|line| line.starts_with(&label))
        .unwrap_or_else(|| panic!("no {label} in {text}"))
        .to_string()
}

/// Issue 11's test: trunk a answers 503, so the call goes out through
/// trunk b, which answers; each gets the number its own way (a E.164, b
/// without the plus); petrov's phone sees one answered call, and the
/// call's record one call, out through b.
#[test]
fn a_trunk_that_answers_503_hands_the_call_to_the_next() {
    let (Some(sipp_program), Some(curl_program)) = (pbx_test_peers::sipp(), pbx_test_peers::curl()) else {
        return;
    };
    let (port_a, port_b) = (pbx_test_peers::free_udp_port(), pbx_test_peers::free_udp_port());
    let mut settings = trunk("a", port_a, E164);
    settings.extend(trunk("b", port_b, E164_NO_PLUS));
    let pbxd = Pbxd::start("trunks-503", &settings);
    let a = Peer::start(&sipp_program, &pbxd, "trunk_refuses_503.xml", port_a, &[]);
    let b = Peer::start(&sipp_program, &pbxd, "trunk_answers.xml", port_b, &[]);
    let caller = petrov_calls_out(&sipp_program, &pbxd);
    assert_passed(&caller, &pbxd);
    let (a, to_a) = a.finish();
    assert_passed(&a, &pbxd);
    let (b, to_b) = b.finish();
    assert_passed(&b, &pbxd);
    assert_eq!(invite_uri(&to_a), "sip:+74951234567@127.0.0.1", "{to_a:#?}");
    assert_eq!(invite_uri(&to_b), "sip:74951234567@127.0.0.1", "{to_b:#?}");
    // b's INVITE is a call of its own (not a's dialog sent on), with the
    // number in its To too.
    let to_header = |messages: &[String]| header(&messages[0], "To").unwrap_or_default().to_string();
    assert!(to_header(&to_b).contains("sip:74951234567@"), "{to_b:#?}");
    assert_ne!(header(&to_a[0], "Call-ID"), header(&to_b[0], "Call-ID"));
    let log = pbxd.wait_for_line(10, &["failing over to the next trunk", "failed=a", "next=b"]);
    assert_eq!(
        lines_with(&log, "failing over to the next trunk").len(),
        1,
        "{log}"
    );
    // One failure is not enough to take a down (3 in a row by default).
    assert!(!log.contains("trunk a is down"), "{log}");
    assert!(trunk_up(&curl_program, &pbxd, "a").ends_with(" 1"));

    // The call's record: one call, its leg out through b, answered.
    pbxd.wait_for(10, |log| log.matches("call leg ended").count() >= 2);
    let (status, json) = common::curl(
        &curl_program,
        &pbxd,
        &[],
        "/api/cdr?auth=petrov%40example.com%3Apetrov-demo",
    );
    assert_eq!(status, 200, "{json}");
    assert_eq!(json.matches("\"id\":").count(), 1, "{json}");
    assert_eq!(json.matches("\"direction\":\"out\"").count(), 1, "{json}");
    assert!(json.contains("\"trunk\":\"b\""), "{json}");
    assert!(!json.contains("\"trunk\":\"a\""), "{json}");
    assert!(!json.contains("\"disposition\":\"failed\""), "{json}");
}

/// A trunk that never says a word (not even 100 Trying): after its
/// `timeout_seconds` the call goes to the next trunk, which answers. The
/// silent one got the INVITE, with its own rewriting of the number.
#[test]
fn a_trunk_that_never_answers_is_left_after_its_timeout() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port_a = silent.local_addr().unwrap().port();
    let port_b = pbx_test_peers::free_udp_port();
    let mut settings = trunk("a", port_a, E164);
    settings.push("trunks.a.timeout_seconds=1".into());
    settings.extend(trunk("b", port_b, E164_NO_PLUS));
    let pbxd = Pbxd::start("trunks-silent", &settings);
    let b = Peer::start(&sipp_program, &pbxd, "trunk_answers.xml", port_b, &[]);
    let caller = petrov_calls_out(&sipp_program, &pbxd);
    assert_passed(&caller, &pbxd);
    let (b, to_b) = b.finish();
    assert_passed(&b, &pbxd);
    assert_eq!(invite_uri(&to_b), "sip:74951234567@127.0.0.1", "{to_b:#?}");
    silent.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buffer = [0u8; 65_536];
    let (length, _) = silent
        .recv_from(&mut buffer)
        .expect("the silent trunk got an INVITE");
    let invite = String::from_utf8_lossy(&buffer[..length]).into_owned();
    assert!(
        invite.starts_with("INVITE sip:+74951234567@127.0.0.1 SIP/2.0"),
        "{invite}"
    );
    let log = pbxd.wait_for_line(10, &["failing over to the next trunk", "failed=a"]);
    let line = lines_with(&log, "failing over to the next trunk").join("\n");
    assert!(line.contains("no response from trunk a"), "{log}");
}

/// A trunk that fails `down_after_failures` times in a row is down: the
/// next call does not try it, `/metrics` says so, and pbxd pings it with
/// OPTIONS; once it answers a ping it is up again.
#[test]
fn a_trunk_that_keeps_failing_is_skipped_until_it_answers_a_ping() {
    let (Some(sipp_program), Some(curl_program)) = (pbx_test_peers::sipp(), pbx_test_peers::curl()) else {
        return;
    };
    let (port_a, port_b) = (pbx_test_peers::free_udp_port(), pbx_test_peers::free_udp_port());
    let mut settings = trunk("a", port_a, E164);
    settings.push("trunks.a.down_after_failures=1".into());
    settings.push("trunks.a.ping_seconds=1".into());
    settings.extend(trunk("b", port_b, E164_NO_PLUS));
    let pbxd = Pbxd::start("trunks-down", &settings);
    // The first call: a refuses and goes down, b answers.
    let a = Peer::start(&sipp_program, &pbxd, "trunk_refuses_503.xml", port_a, &[]);
    let b = Peer::start(&sipp_program, &pbxd, "trunk_answers.xml", port_b, &[]);
    assert_passed(&petrov_calls_out(&sipp_program, &pbxd), &pbxd);
    assert_passed(&a.finish().0, &pbxd);
    assert_passed(&b.finish().0, &pbxd);
    let log = pbxd.wait_for_line(10, &["trunk a is down"]);
    assert_eq!(lines_with(&log, "trunk a is down").len(), 1, "{log}");
    assert!(trunk_up(&curl_program, &pbxd, "a").ends_with(" 0"));
    assert!(trunk_up(&curl_program, &pbxd, "b").ends_with(" 1"));
    // The second call goes straight to b: a is not tried.
    let b = Peer::start(&sipp_program, &pbxd, "trunk_answers.xml", port_b, &[]);
    assert_passed(&petrov_calls_out(&sipp_program, &pbxd), &pbxd);
    let (b, to_b) = b.finish();
    assert_passed(&b, &pbxd);
    assert_eq!(invite_uri(&to_b), "sip:74951234567@127.0.0.1", "{to_b:#?}");
    let log = pbxd.log();
    let tried = |trunk: &str| {
        lines_with(&log, "calling out through a trunk")
            .into_iter()
            .filter(|line| line.contains(&format!("trunk={trunk} ")))
            .count()
    };
    assert_eq!((tried("a"), tried("b")), (1, 2), "{log}");
    // a comes back: it answers pbxd's OPTIONS.
    let a = Peer::start(&sipp_program, &pbxd, "trunk_answers_options.xml", port_a, &[]);
    let (answered, pings) = a.finish();
    assert_passed(&answered, &pbxd);
    assert!(
        pings[0].starts_with("OPTIONS sip:127.0.0.1 SIP/2.0"),
        "{pings:#?}"
    );
    let log = pbxd.wait_for_line(10, &["trunk a is up again"]);
    assert_eq!(lines_with(&log, "trunk a is up again").len(), 1, "{log}");
    assert!(trunk_up(&curl_program, &pbxd, "a").ends_with(" 1"));
}

/// A call from a trunk, in E.164: the direct number +74951234202 reaches
/// extension 202 (petrov) by the trunk's `incoming_called` rule, and
/// petrov's phone shows the caller +74957654321 as 84957654321, a number
/// it can dial back, by its `incoming_caller` rule.
#[test]
fn numbers_from_a_trunk_are_rewritten_into_the_form_users_dial() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let port_a = pbx_test_peers::free_udp_port();
    let mut settings = trunk("a", port_a, E164);
    settings.push(r#"trunks.a.incoming_caller=[{ match = "+7*", strip = 2, prepend = "8" }]"#.into());
    settings.push(r#"trunks.a.incoming_called=[{ match = "+74951234*", strip = 9 }]"#.into());
    settings.push(IN_HOURS.into());
    let pbxd = Pbxd::start("trunks-in", &settings);
    let phone_port = pbx_test_peers::free_udp_port();
    let phone = Peer::start(&sipp_program, &pbxd, "stock_phone_answers.xml", phone_port, &[]);
    register(
        &sipp_program,
        &pbxd,
        "petrov",
        "petrov-demo",
        &phone_port.to_string(),
    );
    let port = port_a.to_string();
    let caller = sipp(&sipp_program, "trunk_calls_in.xml", &pbxd, &["-p", &port]);
    assert_passed(&caller, &pbxd);
    let (phone, to_phone) = phone.finish();
    assert_passed(&phone, &pbxd);
    let from = header(&to_phone[0], "From").unwrap_or_default();
    assert!(from.contains("sip:84957654321@"), "{to_phone:#?}");
}
