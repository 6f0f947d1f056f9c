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

/// Runs a sipp scenario of tests/sipp against `pbxd` for one call.
fn sipp(sipp: &Path, scenario: &str, pbxd: &Pbxd, extra: &[&str]) -> Output {
    let media_port = pbx_test_peers::free_udp_port().to_string();
    let scenario = repository().join("tests/sipp").join(scenario);
    Command::new(sipp)
        .arg(pbxd.sip.to_string())
        .arg("-sf")
        .arg(&scenario)
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", &media_port])
        .args([
            "-m",
            "1",
            "-l",
            "1",
            "-nostdin",
            "-timeout",
            "90s",
            "-timeout_error",
        ])
        .args(extra)
        .current_dir(std::env::temp_dir())
        .output()
        .expect("sipp runs")
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
