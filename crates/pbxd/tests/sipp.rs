//! `pbxd serve` against real SIP peers: sipp scenarios (tests/sipp/) over
//! loopback, with a real SMTP server where the call sends mail.

// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use pbx_test_peers::SmtpServer;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `pbxd serve` on a port the OS chose, with the demo configuration and
/// `settings`; stopped when dropped.
struct Pbxd {
    child: Child,
    sip: SocketAddr,
    log: Arc<Mutex<String>>,
    data: PathBuf,
}

impl Pbxd {
    fn start(name: &str, settings: &[String]) -> Pbxd {
        let data = std::env::temp_dir().join(format!("pbxd-sipp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let mut command = Command::new(env!("CARGO_BIN_EXE_pbxd"));
        command
            .arg("serve")
            .args(["--set", "sip.listen=127.0.0.1:0"])
            .args(["--set", &format!("data_dir={}", data.display())])
            .current_dir(repository())
            .env("RUST_LOG", "info,rsipstack=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for setting in settings {
            command.args(["--set", setting]);
        }
        let mut child = command.spawn().expect("pbxd starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = collected.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("pbxd says where it listens");
        let sip = line
            .trim()
            .rsplit(' ')
            .next()
            .and_then(|address| address.parse().ok())
            .unwrap_or_else(|| panic!("pbxd did not start: {line}\n{}", log.lock().unwrap()));
        Pbxd {
            child,
            sip,
            log,
            data,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Pbxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// A sipp command for a scenario of tests/sipp against `pbxd`, one call.
fn sipp_command(sipp: &Path, scenario: &str, pbxd: &Pbxd, extra: &[&str]) -> Command {
    let media_port = pbx_test_peers::free_udp_port().to_string();
    let scenario = repository().join("tests/sipp").join(scenario);
    let mut command = Command::new(sipp);
    command
        .arg(pbxd.sip.to_string())
        .arg("-sf")
        .arg(&scenario)
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", &media_port])
        .args(["-m", "1", "-l", "1", "-nostdin"])
        .args(["-timeout", "90s", "-timeout_error"])
        .args(extra)
        .current_dir(std::env::temp_dir());
    command
}

/// Runs a sipp scenario to its end.
fn sipp(sipp: &Path, scenario: &str, pbxd: &Pbxd, extra: &[&str]) -> Output {
    sipp_command(sipp, scenario, pbxd, extra)
        .output()
        .expect("sipp runs")
}

/// The RTP packets each leg received, from pbxd's log of ended legs.
fn rtp_received(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| line.contains("call leg ended"))
        .filter_map(|line| {
            let value = line.split("rtp_received=").nth(1)?;
            value.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

fn assert_passed(output: &Output, pbxd: &Pbxd) {
    assert!(
        output.status.success(),
        "sipp failed ({}):\n{}\n{}\n--- pbxd ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        pbxd.log()
    );
}

/// (a) The callback app over SIP: RFC 4733 digits from sip-tester's pcaps,
/// the number mailed through a real SMTP server.
#[test]
fn callback_over_sip_mails_the_number_dialled_with_rfc4733() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let Some(smtp) = SmtpServer::start() else { return };
    let pbxd = Pbxd::start("callback", &[format!("smtp.relay={}", smtp.relay())]);
    let output = sipp(&sipp_program, "callback_rfc4733.xml", &pbxd, &[]);
    assert_passed(&output, &pbxd);
    let messages = smtp.messages(1);
    assert_eq!(messages.len(), 1, "{messages:?}\n{}", pbxd.log());
    assert!(messages[0].contains("To: ivanov@example.com"), "{}", messages[0]);
    assert!(
        messages[0].contains("Subject: Call back:5551234\n"),
        "{}",
        messages[0]
    );
}

/// (b) A phone registers as ivanov with digest; a caller from outside calls
/// ivanov@example.com; pbxd rings the phone, it answers, and RTP flows both
/// ways through pbxd (the phone echoes what the caller sends).
#[test]
fn a_registered_phone_answers_and_media_flows_both_ways() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    // Monday noon in Moscow: ivanov's working hours, so his phone rings.
    let pbxd = Pbxd::start("bridge", &["clock.start=2026-11-23T12:00:00+03:00".into()]);
    let phone_port = pbx_test_peers::free_udp_port().to_string();
    let phone = sipp_command(
        &sipp_program,
        "ivanov_answers.xml",
        &pbxd,
        &["-rtp_echo", "-p", &phone_port],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("sipp runs");
    let registered = sipp(
        &sipp_program,
        "register_ivanov.xml",
        &pbxd,
        &["-key", "phone_port", &phone_port],
    );
    assert_passed(&registered, &pbxd);
    let caller = sipp(&sipp_program, "call_ivanov.xml", &pbxd, &[]);
    assert_passed(&caller, &pbxd);
    let phone = phone.wait_with_output().expect("the phone's sipp ends");
    assert_passed(&phone, &pbxd);
    // Both legs ended having heard their peer: ~5 s of the caller's voice
    // reached pbxd, and the phone's echo of it too.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = pbxd.log();
    let received = rtp_received(&log);
    assert_eq!(received.len(), 2, "{log}");
    assert!(received.iter().all(|count| *count > 100), "{received:?}\n{log}");
}
