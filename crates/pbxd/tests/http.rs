//! pbxd's HTTP side (issue 10, in part): `/healthz` and `/metrics` on
//! `http.listen`, read with a real HTTP client (curl), and what bad
//! requests get. The metrics are checked against what the test itself
//! sent over SIP.
// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::caller::{Caller, Ending};
use common::{curl, Pbxd};

/// The value of the sample `name` (with its labels, as written) in a
/// Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A sipp caller calls tone#ivanov (tests/sipp/env/tone.sppr: a 3 s
/// tone), and hangs up when pbxd does.
fn call_the_tone(sipp_program: &std::path::Path, pbxd: &Pbxd) {
    let called = common::sipp(
        sipp_program,
        "uac_answered_then_bye.xml",
        pbxd,
        &["-s", "tone%23ivanov"],
    );
    common::assert_passed(&called, pbxd);
}

/// Sends one datagram to pbxd's SIP port and waits for a final answer.
fn sip(pbxd: &Pbxd, message: &str) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = socket.local_addr().unwrap();
    let message = message.replace("LOCAL", &local.to_string());
    socket.send_to(message.as_bytes(), pbxd.sip).unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        let (length, _) = socket.recv_from(&mut buffer).expect("pbxd answers");
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        if !text.starts_with("SIP/2.0 1") {
            return text;
        }
    }
}

const OPTIONS: &str = "OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP LOCAL;branch=z9hG4bK-m1\r\n\
                       From: <sip:probe@outside.test>;tag=m1\r\nTo: <sip:example.com>\r\nCall-ID: m1@outside.test\r\n\
                       CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

/// `/healthz` says ok; `/metrics` is Prometheus text whose counters follow
/// what happened: an OPTIONS answered 200 and a request without Call-ID
/// refused show up, by method, by code and as a malformed message; a call
/// to a program that plays a 3 s tone counts a task, an answered incoming
/// leg and the RTP it sent; a wrong password on a click-to-dial link
/// counts an authentication failure; the media clock's lateness is a
/// histogram.
#[test]
fn metrics_count_what_pbxd_did_and_health_says_ok() {
    let (Some(curl_program), Some(sipp_program)) = (pbx_test_peers::curl(), pbx_test_peers::sipp()) else {
        return;
    };
    let environment = common::repository().join("tests/sipp/env");
    let pbxd = Pbxd::start(
        "http-metrics",
        &[format!("environments.server={}", environment.display())],
    );
    let (status, body) = curl(&curl_program, &pbxd, &[], "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let (status, before) = curl(&curl_program, &pbxd, &[], "/metrics");
    assert_eq!(status, 200, "{before}");
    assert_eq!(sample(&before, "pbxd_calls_active"), Some(0.0), "{before}");
    assert!(before.contains("# TYPE pbxd_sip_requests counter"), "{before}");
    assert!(before.ends_with("# EOF\n"), "{before}");
    let malformed_before = sample(&before, "pbxd_sip_malformed_refused_total").unwrap();

    assert!(sip(&pbxd, OPTIONS).starts_with("SIP/2.0 200"));
    let no_call_id = OPTIONS.replace("Call-ID: m1@outside.test\r\n", "");
    assert!(sip(&pbxd, &no_call_id).starts_with("SIP/2.0 400 Missing Call-ID"));

    call_the_tone(&sipp_program, &pbxd);
    let (status, _) = curl(
        &curl_program,
        &pbxd,
        &[],
        "/remote_call.htm?user=ivanov&dest=202&auth=ivanov%3Awrong",
    );
    assert_eq!(status, 403);
    pbxd.wait_for_line(10, &["call leg ended"]);

    let (_, after) = curl(&curl_program, &pbxd, &[], "/metrics");
    assert_eq!(sample(&after, "pbxd_tasks_started_total"), Some(1.0), "{after}");
    assert_eq!(
        sample(&after, "pbxd_calls_total{disposition=\"answered\"}"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "pbxd_sip_legs_ended_total{direction=\"in\",answered=\"yes\"}"
        ),
        Some(1.0),
        "{after}"
    );
    // 3 s of tone in 20 ms packets.
    assert!(
        sample(&after, "pbxd_rtp_packets_sent_total").is_some_and(|sent| sent >= 140.0),
        "{after}"
    );
    assert_eq!(sample(&after, "pbxd_auth_failures_total"), Some(1.0), "{after}");
    // sipp sends no RTP in this call: nothing lost.
    assert_eq!(
        sample(&after, "pbxd_rtp_packets_lost_total"),
        Some(0.0),
        "{after}"
    );
    assert!(
        sample(&after, "pbxd_media_slot_lateness_seconds_count").is_some_and(|count| count > 0.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "pbxd_sip_requests_total{method=\"OPTIONS\"}"),
        Some(1.0),
        "{after}"
    );
    assert!(
        sample(&after, "pbxd_sip_responses_total{code=\"200\"}").is_some_and(|count| count >= 1.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "pbxd_sip_malformed_refused_total"),
        Some(malformed_before + 1.0),
        "{after}"
    );
    assert_eq!(sample(&after, "pbxd_tasks_active"), Some(0.0), "{after}");
    assert!(sample(&after, "pbxd_media_lateness_seconds").is_some(), "{after}");
}

/// Bad requests get a 4xx and pbxd goes on: an unknown page 404, a wrong
/// method 405, a request that is not HTTP 400, a 100 KB header 431, a
/// 10 KB address 414; then
/// `/healthz` still answers.
#[test]
fn bad_http_requests_get_4xx_and_pbxd_goes_on() {
    let Some(curl_program) = pbx_test_peers::curl() else {
        return;
    };
    let pbxd = Pbxd::start("http-bad", &[]);
    assert_eq!(curl(&curl_program, &pbxd, &[], "/no-such-page").0, 404);
    assert_eq!(curl(&curl_program, &pbxd, &["-X", "POST"], "/metrics").0, 405);
    assert_eq!(curl(&curl_program, &pbxd, &["-X", "DELETE"], "/healthz").0, 405);
    // Click-to-dial and the records API: what is missing or broken gets
    // 400 with the reason, before anything else (and no call starts).
    for (path, named) in [
        ("/remote_call.htm", "user"),
        ("/remote_call.htm?user=ivanov", "dest"),
        ("/remote_call.htm?user=%ff&dest=1", "UTF-8"),
        ("/remote_call.htm?user=ivanov&dest=202&connect=maybe", "connect"),
        ("/api/cdr?limit=lots", "limit"),
        ("/api/cdr?since=yesterday", "since"),
    ] {
        let (status, body) = curl(&curl_program, &pbxd, &[], path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body.contains(named),
            "{path}: the reason does not name {named}: {body}"
        );
    }
    let (status, _) = curl(
        &curl_program,
        &pbxd,
        &["-X", "POST", "--data", "csrf=x&dest=1"],
        "/console/dial",
    );
    assert_eq!(status, 303, "a dial without a session goes to the login");
    assert!(
        !pbxd.log().contains("start remotecall"),
        "a bad request started a call"
    );
    let huge = format!("X-Huge: {}", "h".repeat(100_000));
    assert_eq!(curl(&curl_program, &pbxd, &["-H", &huge], "/healthz").0, 431);
    let long = format!("/healthz?{}", "q".repeat(10_000));
    assert_eq!(curl(&curl_program, &pbxd, &[], &long).0, 414);
    for garbage in [
        &b"\x00\x01\x02 not http at all\r\n\r\n"[..],
        b"GET /healthz HTTP/9.9\r\n\r\n",
        b"GET /he\xffalthz HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(pbxd.http).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream.write_all(garbage).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let status: u16 = answer.get(9..12).and_then(|code| code.parse().ok()).unwrap_or(0);
        assert!(
            answer.is_empty() || (400..500).contains(&status) || status == 505,
            "{garbage:?} got {answer:?}"
        );
    }
    assert_eq!(
        curl(&curl_program, &pbxd, &[], "/healthz"),
        (200, "ok\n".to_string())
    );
}

/// Slow-loris and too many connections (issue 15 item 4): with
/// `http.connections_per_source=4` and `http.header_timeout_seconds=2`,
/// four connections from one address that trickle their headers hold
/// their places, a fifth from there is closed at once, the four are
/// closed by pbxd once their headers are late, and then that address is
/// served again.
#[test]
fn slow_and_surplus_http_connections_are_closed() {
    let pbxd = Pbxd::start(
        "http-slow",
        &[
            "http.connections_per_source=4".into(),
            "http.header_timeout_seconds=2".into(),
        ],
    );
    let slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut stream = TcpStream::connect(pbxd.http).unwrap();
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The fifth is closed without an answer.
    let mut fifth = TcpStream::connect(pbxd.http).unwrap();
    fifth.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut answer = Vec::new();
    let _ = fifth.read_to_end(&mut answer);
    assert!(
        answer.is_empty(),
        "the fifth connection was served: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // The slow ones are closed once their headers are 2 s late.
    for mut stream in slow {
        stream.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
        let mut rest = Vec::new();
        let ended = stream.read_to_end(&mut rest);
        assert!(
            ended.is_ok()
                || ended
                    .as_ref()
                    .is_err_and(|error| error.kind() == std::io::ErrorKind::ConnectionReset),
            "a slow connection stayed open: {ended:?}"
        );
    }
    // And the address is served again.
    let mut stream = TcpStream::connect(pbxd.http).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut stream = TcpStream::connect(pbxd.http).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    let _ = stream.read_to_string(&mut page);
    assert_eq!(
        sample(&page, "pbxd_http_connections_refused_total"),
        Some(1.0),
        "{page}"
    );
}

/// An HTTP flood from one address (issue 15 item 4): past
/// `http.requests_per_source_per_second` (here 10) the address gets 429,
/// or its connections are closed as they come, until its second is over.
#[test]
fn a_flood_of_http_requests_is_cut_to_the_limit() {
    let pbxd = Pbxd::start("http-flood", &["http.requests_per_source_per_second=10".into()]);
    let status = || {
        let Ok(mut stream) = TcpStream::connect(pbxd.http) else {
            return 0;
        };
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            return 0;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.get(9..12).and_then(|code| code.parse().ok()).unwrap_or(0)
    };
    let statuses: Vec<u16> = (0..30).map(|_| status()).collect();
    let served = statuses.iter().filter(|code| **code == 200).count();
    assert!((10..=20).contains(&served), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|code| [200, 429, 0].contains(code)),
        "{statuses:?}"
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(status(), 200);
}

/// Call records reach `cdr.webhook` (a real HTTP server, Python's
/// http.server) as JSON when the call ends; one the server refuses
/// (503, twice) is sent again until taken, and only once taken.
#[test]
fn call_records_reach_the_webhook_retried_until_taken() {
    let (Some(curl_program), Some(sipp_program), Some(receiver)) = (
        pbx_test_peers::curl(),
        pbx_test_peers::sipp(),
        pbx_test_peers::HttpServer::start(),
    ) else {
        return;
    };
    let environment = common::repository().join("tests/sipp/env");
    let pbxd = Pbxd::start(
        "http-webhook",
        &[
            format!("environments.server={}", environment.display()),
            format!("cdr.webhook={}", receiver.url("/flaky")),
        ],
    );
    call_the_tone(&sipp_program, &pbxd);
    let received = || {
        let output = std::process::Command::new(&curl_program)
            .args(["--silent", "--max-time", "5", &receiver.url("/received")])
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut got = received();
    while !got.contains("tone.sppr") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        got = received();
    }
    assert!(
        got.contains("tone.sppr"),
        "the webhook got: {got}\n{}",
        pbxd.log()
    );
    // One record, sent once (the two refusals before it are not kept).
    assert_eq!(got.matches("\\\"program\\\"").count(), 1, "{got}");
    assert!(got.contains("\\\"disposition\\\":\\\"answered\\\""), "{got}");
    let log = pbxd.log();
    assert_eq!(
        common::lines_with(&log, "call records' webhook: 503").len(),
        2,
        "{log}"
    );
}

/// With `http.tls_cert` and `http.tls_key`, the web side speaks HTTPS
/// (a certificate made by openssl for the test): `/healthz` answers over
/// TLS, and Basic credentials are taken there; over plain HTTP they are
/// not (the API answers with a Digest challenge instead).
#[test]
fn https_serves_the_same_pages_and_takes_basic_credentials() {
    let Some(curl_program) = pbx_test_peers::curl() else {
        return;
    };
    let folder = std::env::temp_dir().join(format!("pbxd-https-{}", std::process::id()));
    let Some(certificates) = pbx_test_peers::TestCertificates::make(&folder) else {
        return;
    };
    let (cert, key) = (certificates.cert, certificates.key);
    let pbxd = Pbxd::start(
        "https",
        &[
            format!("http.tls_cert={}", cert.display()),
            format!("http.tls_key={}", key.display()),
        ],
    );
    let get = |url: String, arguments: &[&str]| {
        let output = std::process::Command::new(&curl_program)
            .args([
                "--silent",
                "--insecure",
                "--max-time",
                "5",
                "--write-out",
                "\n%{http_code}",
            ])
            .args(arguments)
            .arg(url)
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse::<u16>().unwrap_or(0), body.to_string())
    };
    let https = |path: &str| format!("https://{}{path}", pbxd.http);
    assert_eq!(get(https("/healthz"), &[]), (200, "ok\n".to_string()));
    let basic = ["--user", "ivanov@example.com:ivanov-demo"];
    assert_eq!(get(https("/api/cdr"), &basic), (200, "[]".to_string()));
    let wrong = ["--user", "ivanov@example.com:wrong"];
    assert_eq!(get(https("/api/cdr"), &wrong).0, 403);
    // Plain HTTP on the same port: no TLS, no answer.
    assert_eq!(get(format!("http://{}/healthz", pbxd.http), &[]).0, 0);
    let plain = Pbxd::start("https-plain", &[]);
    let (status, _) = get(format!("http://{}/api/cdr", plain.http), &basic);
    assert_eq!(status, 401, "Basic credentials were taken over plain HTTP");
    let _ = std::fs::remove_dir_all(&folder);
}

/// Failed logins count against the source address as SIP's digest
/// failures do (`sip.auth_failures_per_minute`): past the limit even the
/// right password is refused for a while, from the API and the
/// console's form (SIP counts in the same tally); the password is never
/// logged.
#[test]
fn failed_logins_lock_the_source_out() {
    let Some(curl_program) = pbx_test_peers::curl() else {
        return;
    };
    let pbxd = Pbxd::start("http-lockout", &["sip.auth_failures_per_minute=3".into()]);
    for round in 0..3 {
        let (status, _) = curl(
            &curl_program,
            &pbxd,
            &[],
            &format!("/api/cdr?auth=ivanov%3Awrong-{round}"),
        );
        assert_eq!(status, 403);
    }
    let (status, body) = curl(&curl_program, &pbxd, &[], "/api/cdr?auth=ivanov%3Aivanov-demo");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("too many failed logins"), "{body}");
    let (status, page) = curl(
        &curl_program,
        &pbxd,
        &["--data", "name=ivanov&password=ivanov-demo"],
        "/login",
    );
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Too many failed logins"), "{page}");
    let log = pbxd.log();
    assert!(
        !log.contains("wrong-0") && !log.contains("ivanov-demo"),
        "a password was logged:\n{log}"
    );
}

/// A call pbxd refuses is recorded with what it was refused with: a call
/// to an application that does not exist gets 500, and its record, read
/// by the account it was for, says `failed` and 500.
#[test]
fn a_refused_call_is_recorded_as_failed_with_its_code() {
    let (Some(curl_program), Some(sipp_program)) = (pbx_test_peers::curl(), pbx_test_peers::sipp()) else {
        return;
    };
    let pbxd = Pbxd::start("http-refused-record", &[]);
    let called = common::sipp(
        &sipp_program,
        "uac_expect_500.xml",
        &pbxd,
        &["-s", "nosuchapp%23ivanov"],
    );
    common::assert_passed(&called, &pbxd);
    let (status, json) = curl(&curl_program, &pbxd, &[], "/api/cdr?auth=ivanov%3Aivanov-demo");
    assert_eq!(status, 200, "{json}");
    assert!(json.contains("\"disposition\":\"failed\""), "{json}");
    assert!(json.contains("\"code\":500"), "{json}");
    assert!(json.contains("\"accounts\":[\"ivanov@example.com\"]"), "{json}");
}

/// `log.format = "json"`: every line pbxd logs is a JSON object, a
/// call's events among them, for a log collector.
#[test]
fn the_log_can_be_json_lines() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let environment = common::repository().join("tests/sipp/env");
    let pbxd = Pbxd::start(
        "http-json-log",
        &[
            format!("environments.server={}", environment.display()),
            "log.format=\"json\"".to_string(),
        ],
    );
    call_the_tone(&sipp_program, &pbxd);
    let log = pbxd.wait_for(10, |log| log.contains("finished"));
    let lines: Vec<&str> = log.lines().filter(|line| !line.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{log}");
    for line in &lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
        assert!(
            object["fields"].is_object() && object["level"].is_string(),
            "{line}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|line| line.contains("\"message\":\"start tone.sppr\"")),
        "{log}"
    );
}

/// The SMTP relay down (issue 15): a script's SendEMail is told the mail
/// is queued; it is kept in `data_dir/mail-queue`, outlasts a restart,
/// and reaches the relay once the relay is up.
#[test]
fn mail_the_relay_cannot_take_is_kept_and_sent_when_it_is_back() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let port = pbx_test_peers::free_tcp_port();
    let environment = common::repository().join("tests/sipp/env");
    let pbxd = Pbxd::start(
        "http-mail-queue",
        &[
            format!("environments.server={}", environment.display()),
            format!("smtp.relay=127.0.0.1:{port}"),
            "smtp.retry_seconds=1".to_string(),
            "smtp.timeout_seconds=2".to_string(),
        ],
    );
    let caller = Caller {
        called: "mail%23ivanov",
        steps: Vec::new(),
        ending: Ending::PbxdHangsUp,
        as_phone: None,
    };
    common::assert_passed(
        &caller.call(
            "mail-queue",
            &sipp_program,
            &pbxd,
            pbx_test_peers::free_udp_port(),
        ),
        &pbxd,
    );
    let log = pbxd.wait_for(10, |log| log.contains("mail: "));
    assert!(log.contains("mail: queued: "), "{log}");
    let kept = |pbxd: &Pbxd| {
        std::fs::read_dir(pbxd.data.join("mail-queue"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|entry| {
                        entry
                            .path()
                            .extension()
                            .is_some_and(|extension| extension == "env")
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(kept(&pbxd), 1);
    let pbxd = pbxd.restart();
    let Some(smtp) = pbx_test_peers::SmtpServer::start_on(port) else {
        return;
    };
    let mut mail = Vec::new();
    for _ in 0..10 {
        mail = smtp.messages(1);
        if !mail.is_empty() {
            break;
        }
    }
    assert_eq!(mail.len(), 1, "{}", pbxd.log());
    assert!(mail[0].contains("It waited for the relay."), "{}", mail[0]);
    assert!(mail[0].contains("ivanov@example.com"), "{}", mail[0]);
    let emptied = pbxd.wait_for(5, |_| kept(&pbxd) == 0);
    assert_eq!(kept(&pbxd), 0, "{emptied}");
}

/// `kill -9` of pbxd with calls up (issue 15): at the next start each
/// of them is written as a failed call record, which the call's account
/// (the program ran for ivanov) reads like any other.
#[test]
fn calls_up_when_pbxd_is_killed_are_recorded_as_failed_after_the_restart() {
    let (Some(sipp_program), Some(curl_program)) = (pbx_test_peers::sipp(), pbx_test_peers::curl()) else {
        return;
    };
    let environment = common::repository().join("tests/sipp/env");
    let pbxd = Pbxd::start(
        "http-killed",
        &[
            format!("environments.server={}", environment.display()),
            "sip.rtp_timeout_seconds=120".to_string(),
        ],
    );
    let callers: Vec<_> = (0..3)
        .map(|index| {
            let caller = Caller {
                called: "wait%23ivanov",
                steps: vec![common::caller::Step::Pause(60.0)],
                ending: Ending::HangsUp,
                as_phone: None,
            };
            caller.start(
                &format!("killed-{index}"),
                &sipp_program,
                &pbxd,
                pbx_test_peers::free_udp_port(),
            )
        })
        .collect();
    pbxd.wait_for(15, |log| log.matches("wait: answered").count() >= 3);
    std::thread::sleep(Duration::from_millis(500));
    let pbxd = pbxd.crash_and_restart();
    let (status, body) = curl(
        &curl_program,
        &pbxd,
        &[],
        "/api/cdr?auth=ivanov%40example.com%3Aivanov-demo",
    );
    assert_eq!(status, 200, "{body}");
    let records: serde_json::Value = serde_json::from_str(&body).unwrap();
    let failed: Vec<&serde_json::Value> = records
        .as_array()
        .map(|records| {
            records
                .iter()
                .filter(|record| {
                    record["legs"][0]["disposition"] == "failed"
                        && record["notes"]
                            .to_string()
                            .contains("pbxd stopped during the call")
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(failed.len(), 3, "{body}");
    assert!(
        failed.iter().all(|record| record["program"] == "wait.sppr"),
        "{body}"
    );
    drop(callers);
}
