//! sipp peers running beside a test: a provider's trunk or a registered
//! phone, each keeping every message it exchanges in a trace file of its
//! own, so a test can read what pbxd sent it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{assert_passed, sipp, sipp_command_with_media, Pbxd};

/// A sipp in the background with its message trace; stopped (and its
/// trace removed) if the test ends before it.
pub struct Peer {
    child: Option<Child>,
    trace: PathBuf,
}

impl Peer {
    /// Starts `command` (a sipp command, see `sipp_command`), tracing its
    /// messages.
    pub fn spawn(mut command: Command) -> Peer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let trace = std::env::temp_dir().join(format!(
            "pbxd-peer-{}-{}.messages",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&trace);
        let child = command
            .args(["-trace_msg", "-message_file"])
            .arg(&trace)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sipp runs");
        Peer {
            child: Some(child),
            trace,
        }
    }

    /// A peer playing `scenario` on UDP `port` (a trunk, a phone that is
    /// not registered), one call unless `extra` says.
    pub fn start(sipp_program: &Path, pbxd: &Pbxd, scenario: &str, port: u16, extra: &[&str]) -> Peer {
        let port = port.to_string();
        let mut arguments = vec!["-p", &port];
        arguments.extend_from_slice(extra);
        Peer::spawn(sipp_command_with_media(
            sipp_program,
            scenario,
            pbxd,
            pbx_test_peers::free_udp_port(),
            &arguments,
        ))
    }

    /// A phone of `account` playing `scenario` (e.g.
    /// tests/sipp/stock_phone_answers.xml, echoing what it hears) for
    /// `calls` calls, registered with `password` once it listens.
    pub fn phone(
        sipp_program: &Path,
        pbxd: &Pbxd,
        account: &str,
        password: &str,
        scenario: &str,
        calls: u32,
    ) -> Peer {
        let phone_port = pbx_test_peers::free_udp_port();
        let calls = calls.to_string();
        let peer = Peer::start(
            sipp_program,
            pbxd,
            scenario,
            phone_port,
            &["-rtp_echo", "-m", &calls],
        );
        register(sipp_program, pbxd, account, password, &phone_port.to_string());
        peer
    }

    /// Everything the peer exchanged so far, as sipp wrote it.
    pub fn messages(&self) -> String {
        std::fs::read_to_string(&self.trace).unwrap_or_default()
    }

    /// The messages the peer received so far, in order.
    pub fn received(&self) -> Vec<String> {
        received(&self.messages())
    }

    /// Waits for the peer's scenario to end: its output, and the messages
    /// it received.
    pub fn finish(mut self) -> (Output, Vec<String>) {
        let child = self.child.take().expect("a running peer");
        let output = child.wait_with_output().expect("sipp ends");
        (output, self.received())
    }

    /// As `finish`, for a peer that should end with the call that has
    /// just ended: after 10 s it is stopped, and fails (a phone never rung
    /// would otherwise wait for its INVITE for a minute and a half).
    pub fn finish_soon(mut self) -> (Output, Vec<String>) {
        let child = self.child.take().expect("a running peer");
        (finish_soon(child), self.received())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.trace);
    }
}

/// The messages of a sipp message trace that sipp received.
pub fn received(trace: &str) -> Vec<String> {
    trace
        .split("\n-----------------------------------------------")
        .filter(|entry| entry.contains("message received"))
        .filter_map(|entry| {
            entry
                .split_once("\n\n")
                .map(|(_, message)| message.trim().to_string())
        })
        .collect()
}

/// The Request-URIs of the INVITEs among `messages`.
pub fn invites(messages: &[String]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|message| message.strip_prefix("INVITE "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Waits for a sipp that should end with the call that has just ended:
/// after 10 s it is stopped, and fails.
pub fn finish_soon(child: Child) -> Output {
    let pid = child.id().to_string();
    let (sender, ended) = std::sync::mpsc::channel();
    // Its output is read meanwhile, so that sipp never waits on a full pipe.
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    let output = ended.recv_timeout(Duration::from_secs(10)).or_else(|_| {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        ended.recv()
    });
    output.unwrap().expect("sipp ends")
}

/// Registers `account`'s phone, listening on `phone_port`, with digest
/// (tests/sipp/stock_register.xml).
pub fn register(sipp_program: &Path, pbxd: &Pbxd, account: &str, password: &str, phone_port: &str) {
    register_by(
        sipp_program,
        pbxd,
        "stock_register.xml",
        account,
        password,
        phone_port,
    );
}

/// As `register`, with the REGISTER of `scenario` (which takes the
/// account as `-s`, the password as `-ap`, the phone's port as
/// `phone_port`).
pub fn register_by(
    sipp_program: &Path,
    pbxd: &Pbxd,
    scenario: &str,
    account: &str,
    password: &str,
    phone_port: &str,
) {
    let registered = sipp(
        sipp_program,
        scenario,
        pbxd,
        &["-s", account, "-ap", password, "-key", "phone_port", phone_port],
    );
    assert_passed(&registered, pbxd);
}
