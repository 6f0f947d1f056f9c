//! "Ask web URL" (issue 12, seed 000 §30) over real SIP and HTTP: sipp as
//! the caller, phones and trunk, and a customer's web server (Python's
//! http.server, pbx-test-peers' web_router.py) that routes each call by
//! what its URL says and keeps every request it gets.
//!
//! - routing to a phone, with the ring request's exact fields and the
//!   answer and hangup URLs called once per leg;
//! - replies ending lines in \n and in \r\n: a number out through a trunk
//!   (the owner's class of service), voicemail, hang-up;
//! - the timeout destination: after the timeout when the server sleeps,
//!   at once when it answers 500, refuses connections or answers HTML;
//! - a pattern menu's digits;
//! - HTTPS (a test authority trusted through `http.ca_file`), and mail to
//!   a relay that requires STARTTLS (`smtp.tls`).

// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::caller::{key_pcap, Caller, Ending, Step};
use common::peer::{invites, Peer};
use common::{assert_passed, lines_with, Pbxd};
use pbx_test_peers::{Received, TestCertificates, WebRouter};

/// Monday 23 November 2026, 10:00 in Moscow: petrov's working hours.
const IN_HOURS: &str = "clock.start=2026-11-23T10:00:00+03:00";
/// The same Monday at 20:00: after hours (ivanov's callback).
const AFTER_HOURS: &str = "clock.start=2026-11-23T20:00:00+03:00";

/// The fields of the ring request, in seed 000 §30.2's order.
const FIELDS: [&str; 13] = [
    "scustomer",
    "stype",
    "snumber",
    "ctype",
    "cnumber",
    "dcustomer",
    "dtype",
    "dnumber",
    "server",
    "callid",
    "uniqueid",
    "state",
    "patternmenu_digits",
];

/// `numbers."NUMBER".KEY = "VALUE"` of example.com, for `--set`.
fn number(number: &str, key: &str, value: &str) -> String {
    format!("domains.\"example.com\".numbers.\"{number}\".{key}=\"{value}\"")
}

/// `text` percent-encoded for a URL's query.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A caller from outside (5550000@outside.test) calls `called`, stays
/// `seconds` once answered, and hangs up.
fn call(sipp_program: &Path, pbxd: &Pbxd, called: &'static str, seconds: f64) {
    let caller = Caller {
        called,
        steps: vec![Step::Pause(seconds)],
        ending: Ending::HangsUp,
        as_phone: None,
    };
    let output = caller.call(called, sipp_program, pbxd, pbx_test_peers::free_udp_port());
    assert_passed(&output, pbxd);
}

/// The requests the router got whose request line starts with `start`.
fn requests<'a>(received: &'a [Received], start: &str) -> Vec<&'a Received> {
    received
        .iter()
        .filter(|request| request.request.starts_with(start))
        .collect()
}

/// Waits (up to 15 s) until the router has `count` requests starting with
/// `start`; everything it got then.
fn wait_for_requests(router: &WebRouter, start: &str, count: usize) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let received = router.received();
        if requests(&received, start).len() >= count || Instant::now() > deadline {
            return received;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A log line's time stamp (`2026-12-07T19:05:19.429994Z`) in
/// milliseconds since the epoch.
fn log_ms(line: &str) -> u64 {
    let stamp = line.split_whitespace().next().unwrap_or_default();
    let number = |from: usize, to: usize| {
        stamp
            .get(from..to)
            .and_then(|text| text.parse::<i64>().ok())
            .unwrap()
    };
    let (year, month, day) = (number(0, 4), number(5, 7), number(8, 10));
    // Days since 1970-01-01 of a Gregorian date.
    let shifted = if month <= 2 { year - 1 } else { year };
    let era = shifted.div_euclid(400);
    let of_era = shifted - era * 400;
    let of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let of_cycle = of_era * 365 + of_era / 4 - of_era / 100 + of_year;
    let days = era * 146_097 + of_cycle - 719_468;
    let seconds = days * 86_400 + number(11, 13) * 3600 + number(14, 16) * 60 + number(17, 19);
    let millis = stamp
        .get(20..23)
        .and_then(|text| text.parse::<i64>().ok())
        .unwrap_or(0);
    (seconds * 1000 + millis) as u64
}

/// This host's name, as pbxd sends it in `server`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// A call from a trunk to the number 74990000001 is routed by the web
/// server to petrov's phone (`dtype: phone`, `dnumber: 202`). The ring
/// request carries exactly seed 000's fields; the answer URL and the
/// hangup URL the reply names are each called once per leg (the caller's
/// and the phone's), with the call's `callid` and each leg's `uniqueid`,
/// and at hang-up the times and status of the call.
#[test]
fn a_web_server_routes_a_call_to_a_phone_and_hears_of_each_leg() {
    let (Some(sipp_program), Some(router)) = (pbx_test_peers::sipp(), WebRouter::start(None)) else {
        return;
    };
    let route = format!(
        "/route?dtype=phone&dnumber=202&answer_url={}&hangup_url={}",
        encode(&router.url("/answer")),
        encode(&router.url("/hangup"))
    );
    let pbxd = Pbxd::start(
        "weburl-phone",
        &[
            IN_HOURS.into(),
            number("74990000001", "weburl", &router.url(&route)),
        ],
    );
    let phone = Peer::phone(
        &sipp_program,
        &pbxd,
        "petrov",
        "petrov-demo",
        "stock_phone_answers.xml",
        1,
    );
    call(&sipp_program, &pbxd, "74990000001", 2.0);
    let (phone, at_phone) = phone.finish_soon();
    assert_passed(&phone, &pbxd);
    assert_eq!(invites(&at_phone).len(), 1, "{at_phone:#?}");

    let received = wait_for_requests(&router, "POST /hangup", 2);
    let rings = requests(&received, "POST /route?");
    assert_eq!(rings.len(), 1, "{received:#?}");
    let ring = rings[0];
    let keys: Vec<&str> = ring.fields.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(keys, FIELDS, "{ring:#?}");
    let expected = [
        ("scustomer", "example.com".to_string()),
        ("stype", "external".to_string()),
        ("snumber", "5550000".to_string()),
        ("ctype", String::new()),
        ("cnumber", "74990000001".to_string()),
        ("dcustomer", "example.com".to_string()),
        ("dtype", "number".to_string()),
        ("dnumber", "74990000001".to_string()),
        ("server", host_name()),
        ("state", "ring".to_string()),
        ("patternmenu_digits", String::new()),
    ];
    for (key, value) in expected {
        assert_eq!(ring.field(key), Some(value.as_str()), "{key}: {ring:#?}");
    }
    let callid = ring.field("callid").unwrap();
    assert!(!callid.is_empty());

    // Once per leg: the caller's (the uniqueid of the ring request) and
    // petrov's phone's.
    for (path, state) in [("POST /answer", "answer"), ("POST /hangup", "hangup")] {
        let told = requests(&received, path);
        assert_eq!(told.len(), 2, "{path}: {received:#?}");
        let mut unique: Vec<&str> = told
            .iter()
            .map(|request| request.field("uniqueid").unwrap())
            .collect();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 2, "{told:#?}");
        assert!(unique.contains(&ring.field("uniqueid").unwrap()), "{told:#?}");
        for request in &told {
            assert_eq!(request.field("state"), Some(state), "{request:#?}");
            assert_eq!(request.field("callid"), Some(callid), "{request:#?}");
            assert_eq!(request.field("dnumber"), Some("74990000001"), "{request:#?}");
        }
    }
    for hangup in requests(&received, "POST /hangup") {
        assert_eq!(hangup.field("status"), Some("answer"), "{hangup:#?}");
        assert_eq!(hangup.field("recording"), Some(""), "{hangup:#?}");
        let talk: i64 = hangup.field("talktime").unwrap().parse().unwrap();
        let total: i64 = hangup.field("totaltime").unwrap().parse().unwrap();
        // The caller talked 2 s (within a second, as the seed's fields are
        // whole seconds).
        assert!((1..=3).contains(&talk), "talktime {talk}: {hangup:#?}");
        assert!(total >= talk, "{hangup:#?}");
    }
}

/// Replies with lines ending in \r\n and in \n: a number out through the
/// trunk (with the class of service of the number's owner, the operator:
/// international), petrov's voicemail, and hang-up.
#[test]
fn replies_route_to_a_trunk_voicemail_or_hang_up() {
    let (Some(sipp_program), Some(router)) = (pbx_test_peers::sipp(), WebRouter::start(None)) else {
        return;
    };
    let trunk_port = pbx_test_peers::free_udp_port();
    let pbxd = Pbxd::start(
        "weburl-replies",
        &[
            IN_HOURS.into(),
            format!("trunks.provider.proxy=127.0.0.1:{trunk_port}"),
            number(
                "74990000002",
                "weburl",
                &router.url("/route?dtype=number&dnumber=84951234567&crlf=1"),
            ),
            number("74990000002", "owner", "operator"),
            number(
                "74990000003",
                "weburl",
                &router.url("/route?dtype=voicemail&dnumber=petrov"),
            ),
            number("74990000004", "weburl", &router.url("/route?dtype=hangup&crlf=1")),
        ],
    );
    let trunk = Peer::start(&sipp_program, &pbxd, "trunk_answers.xml", trunk_port, &[]);
    call(&sipp_program, &pbxd, "74990000002", 1.0);
    let (trunk, at_trunk) = trunk.finish_soon();
    assert_passed(&trunk, &pbxd);
    let sent = invites(&at_trunk);
    assert_eq!(sent.len(), 1, "{at_trunk:#?}");
    assert!(sent[0].contains("84951234567"), "{sent:?}");

    call(&sipp_program, &pbxd, "74990000003", 2.0);
    let log = pbxd.log();
    assert!(
        lines_with(&log, "start voicemail.sppr")
            .iter()
            .any(|line| line.contains("account=petrov@example.com")),
        "{log}"
    );

    let refused = Caller {
        called: "74990000004",
        steps: Vec::new(),
        ending: Ending::Refused(603),
        as_phone: None,
    };
    assert_passed(
        &refused.call("hangup", &sipp_program, &pbxd, pbx_test_peers::free_udp_port()),
        &pbxd,
    );
    assert_eq!(requests(&router.received(), "POST /route?").len(), 3);
    assert!(
        pbxd.log()
            .contains("weburl: 74990000004: hung up, as the web server says"),
        "{}",
        pbxd.log()
    );
}

/// How long after a call's program started (`start weburl.sppr`) it went
/// to the timeout destination, in the log written since `from`.
fn to_timeout_destination(pbxd: &Pbxd, from: usize, number: &str) -> Duration {
    let log = pbxd.wait_for(10, |log| {
        log.get(from..)
            .is_some_and(|log| log.contains(&format!("weburl: {number}: to the timeout destination")))
    });
    let log = &log[from..];
    let started = lines_with(log, "start weburl.sppr");
    let routed = lines_with(log, &format!("weburl: {number}: to the timeout destination"));
    assert!(!started.is_empty() && !routed.is_empty(), "{log}");
    Duration::from_millis(log_ms(routed[0]).saturating_sub(log_ms(started[0])))
}

/// The call goes to the timeout destination (petrov's voicemail) when
/// the web server takes longer than the timeout (5 s), at once when it
/// answers 500, cannot be reached, or answers with HTML.
#[test]
fn the_timeout_destination_takes_the_call_when_the_web_server_fails() {
    let (Some(sipp_program), Some(router)) = (pbx_test_peers::sipp(), WebRouter::start(None)) else {
        return;
    };
    let closed = format!("http://127.0.0.1:{}/route", pbx_test_peers::free_tcp_port());
    let cases = [
        ("74990000005", router.url("/sleep?seconds=10")),
        ("74990000006", router.url("/error")),
        ("74990000007", closed),
        ("74990000008", router.url("/html")),
    ];
    let mut settings = vec![IN_HOURS.to_string()];
    for (called, url) in &cases {
        settings.push(number(called, "weburl", url));
        settings.push(number(called, "timeout_destination", "voicemail#petrov"));
    }
    let pbxd = Pbxd::start("weburl-timeout", &settings);
    for (called, _) in &cases {
        let from = pbxd.log().len();
        let called: &'static str = Box::leak(called.to_string().into_boxed_str());
        call(&sipp_program, &pbxd, called, 1.0);
        let waited = to_timeout_destination(&pbxd, from, called);
        if called == "74990000005" {
            // The server sleeps: the timeout, DNS to the last byte.
            assert!(
                waited >= Duration::from_millis(4500) && waited <= Duration::from_millis(6500),
                "{called}: {waited:?}"
            );
        } else {
            // An error, a refused connection, HTML: no waiting.
            assert!(waited < Duration::from_millis(3000), "{called}: {waited:?}");
        }
        let log = pbxd.log();
        assert!(
            lines_with(&log[from..], "start voicemail.sppr")
                .iter()
                .any(|line| line.contains("account=petrov@example.com")),
            "{called}: {}",
            &log[from..]
        );
    }
}

/// A number with patterns is a pattern menu: the caller keys 123, which
/// matches 1XX, and the web server gets them as patternmenu_digits (its
/// reply hangs up).
#[test]
fn a_pattern_menu_passes_the_digits_keyed() {
    let (Some(sipp_program), Some(router)) = (pbx_test_peers::sipp(), WebRouter::start(None)) else {
        return;
    };
    let pbxd = Pbxd::start(
        "weburl-menu",
        &[
            number("74990000009", "weburl", &router.url("/route?dtype=hangup")),
            "domains.\"example.com\".numbers.\"74990000009\".patterns=[\"1XX\", \"9.\"]".into(),
        ],
    );
    let caller = Caller {
        called: "74990000009",
        // The last key without a pause after it: pbxd hangs up as soon as
        // the digits match.
        steps: vec![
            Step::Pause(1.0),
            Step::Keys("12"),
            Step::Play(PathBuf::from(key_pcap('3'))),
        ],
        ending: Ending::PbxdHangsUp,
        as_phone: None,
    };
    assert_passed(
        &caller.call("menu", &sipp_program, &pbxd, pbx_test_peers::free_udp_port()),
        &pbxd,
    );
    let received = router.received();
    let rings = requests(&received, "POST /route?");
    assert_eq!(rings.len(), 1, "{received:#?}");
    assert_eq!(rings[0].field("patternmenu_digits"), Some("123"), "{rings:#?}");
}

/// The web server over HTTPS, its certificate signed by a test authority
/// pbxd trusts through `http.ca_file`.
#[test]
fn a_web_server_over_https_routes_the_call() {
    let folder = std::env::temp_dir().join(format!("pbxd-weburl-tls-{}", std::process::id()));
    let Some(certificates) = TestCertificates::make(&folder) else {
        return;
    };
    let (Some(sipp_program), Some(router)) = (pbx_test_peers::sipp(), WebRouter::start(Some(&certificates)))
    else {
        return;
    };
    let pbxd = Pbxd::start(
        "weburl-https",
        &[
            format!("http.ca_file={}", certificates.ca.display()),
            number("74990000010", "weburl", &router.url("/route?dtype=hangup")),
        ],
    );
    let refused = Caller {
        called: "74990000010",
        steps: Vec::new(),
        ending: Ending::Refused(603),
        as_phone: None,
    };
    assert_passed(
        &refused.call("https", &sipp_program, &pbxd, pbx_test_peers::free_udp_port()),
        &pbxd,
    );
    let received = router.received();
    assert_eq!(
        requests(&received, "POST /route?").len(),
        1,
        "{received:#?}\n{}",
        pbxd.log()
    );
    assert!(pbxd.log().contains("as the web server says"), "{}", pbxd.log());
    let _ = std::fs::remove_dir_all(&folder);
}

/// Mail goes to a relay that requires STARTTLS (`smtp.tls = "starttls"`,
/// its certificate from a test authority in `smtp.ca_file`): ivanov's
/// callback after hours mails the number keyed.
#[test]
fn mail_goes_to_a_relay_that_requires_starttls() {
    let folder = std::env::temp_dir().join(format!("pbxd-smtp-tls-{}", std::process::id()));
    let Some(certificates) = TestCertificates::make(&folder) else {
        return;
    };
    let (Some(sipp_program), Some(smtp)) = (
        pbx_test_peers::sipp(),
        pbx_test_peers::SmtpServer::start_tls(&certificates),
    ) else {
        return;
    };
    let pbxd = Pbxd::start(
        "smtp-starttls",
        &[
            AFTER_HOURS.into(),
            format!("smtp.relay={}", smtp.relay()),
            "smtp.tls=starttls".into(),
            format!("smtp.ca_file={}", certificates.ca.display()),
        ],
    );
    let caller = Caller {
        called: "201",
        steps: vec![Step::Pause(1.0), Step::Keys("5553210#")],
        ending: Ending::PbxdHangsUp,
        as_phone: None,
    };
    assert_passed(
        &caller.call("starttls", &sipp_program, &pbxd, pbx_test_peers::free_udp_port()),
        &pbxd,
    );
    let messages = smtp.messages(1);
    assert_eq!(messages.len(), 1, "{}", pbxd.log());
    assert!(messages[0].contains("5553210"), "{}", messages[0]);
    let _ = std::fs::remove_dir_all(&folder);
}

/// A feature code of the numbers table asks the web server too, for the
/// domain's phones only: petrov's phone dials *77, and the ring request
/// says so (`stype` phone, `snumber` the account, `dtype` code).
#[test]
fn a_feature_code_asks_the_web_server_for_a_phone() {
    let (Some(sipp_program), Some(router)) = (pbx_test_peers::sipp(), WebRouter::start(None)) else {
        return;
    };
    let pbxd = Pbxd::start(
        "weburl-code",
        &[number("*77", "weburl", &router.url("/route?dtype=hangup"))],
    );
    let caller = Caller {
        called: "*77",
        steps: Vec::new(),
        ending: Ending::Refused(603),
        as_phone: Some(("petrov", "petrov-demo")),
    };
    assert_passed(
        &caller.call("code", &sipp_program, &pbxd, pbx_test_peers::free_udp_port()),
        &pbxd,
    );
    let received = router.received();
    let rings = requests(&received, "POST /route?");
    assert_eq!(rings.len(), 1, "{received:#?}");
    for (key, value) in [
        ("stype", "phone"),
        ("snumber", "petrov"),
        ("dtype", "code"),
        ("dnumber", "*77"),
    ] {
        assert_eq!(rings[0].field(key), Some(value), "{key}: {rings:#?}");
    }
    // From outside, the code is a number beyond the server: a challenge.
    let outside = Caller {
        called: "*77",
        steps: Vec::new(),
        ending: Ending::Refused(407),
        as_phone: None,
    };
    assert_passed(
        &outside.call(
            "code-outside",
            &sipp_program,
            &pbxd,
            pbx_test_peers::free_udp_port(),
        ),
        &pbxd,
    );
    assert_eq!(requests(&router.received(), "POST /route?").len(), 1);
}
