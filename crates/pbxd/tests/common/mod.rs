//! Shared by the tests that run `pbxd serve` against real peers (sipp.rs,
//! stock_apps.rs, baresip.rs): pbxd on a free port with its log collected, sipp
//! scenarios played against it, and what pbxd's log says of each call leg.

// Each test file uses its own part of these.
#![allow(dead_code)]
// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

pub mod audio;
pub mod baresip;
pub mod caller;
pub mod capture;
pub mod peer;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// pbxd's log filter unless a test asks for another: the runtime's
/// events at info (tasks starting and ending, routing, SysLog).
pub const LOG_FILTER: &str = "info,rsipstack=warn";

/// The repository's root (pbxd runs there, on its demo pbxd.toml).
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Collects what a child writes to `stream`, line by line.
pub fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let collected = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut text = collected.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}

/// Waits up to `seconds` until `done` holds for the text; the text then.
pub fn wait_until(text: &Mutex<String>, seconds: u64, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let now = text.lock().unwrap().clone();
        if done(&now) || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `pbxd serve` on a port the OS chose, with the demo configuration and
/// `settings`; stopped when dropped.
pub struct Pbxd {
    child: Child,
    pub sip: SocketAddr,
    /// Where `/metrics` and `/healthz` are.
    pub http: SocketAddr,
    log: Arc<Mutex<String>>,
    pub data: PathBuf,
    settings: Vec<String>,
    log_filter: String,
    /// Whether dropping this pbxd leaves its data directory (a restart).
    keep_data: bool,
}

impl Pbxd {
    /// Starts pbxd with a fresh data directory named after `name`.
    pub fn start(name: &str, settings: &[String]) -> Pbxd {
        Pbxd::start_logging(name, settings, LOG_FILTER)
    }

    /// As `start`, with `log_filter` as pbxd's RUST_LOG.
    pub fn start_logging(name: &str, settings: &[String], log_filter: &str) -> Pbxd {
        let data = std::env::temp_dir().join(format!("pbxd-sipp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        Pbxd::spawn(data, "127.0.0.1:0", settings, log_filter)
    }

    fn spawn(data: PathBuf, listen: &str, settings: &[String], log_filter: &str) -> Pbxd {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pbxd"));
        command
            .arg("serve")
            .args(["--set", &format!("sip.listen={listen}")])
            .args(["--set", &format!("data_dir={}", data.display())])
            // A port of its own: tests run side by side.
            .args(["--set", "http.listen=127.0.0.1:0"])
            // Three shards and two media workers whatever the machine, so
            // the calls of one test (bridges, conferences, transfers) run
            // on different shards and workers. A test's settings come
            // after and win.
            .args(["--set", "runtime.threads=3", "--set", "media.threads=2"])
            .current_dir(repository())
            .env("RUST_LOG", log_filter)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for setting in settings {
            command.args(["--set", setting]);
        }
        let mut child = command.spawn().expect("pbxd starts");
        let log = collect(child.stderr.take().expect("stderr"));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("pbxd says where it listens");
        let sip = line
            .trim()
            .rsplit(' ')
            .next()
            .and_then(|address| address.parse().ok())
            .unwrap_or_else(|| panic!("pbxd did not start: {line}\n{}", log.lock().unwrap()));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("pbxd says where HTTP is");
        let http = line
            .trim()
            .strip_prefix("pbxd: HTTP on ")
            .and_then(|url| url.split_once("://"))
            .and_then(|(_, address)| address.parse().ok())
            .unwrap_or_else(|| panic!("pbxd did not say where HTTP is: {line}"));
        // The rest of what it says goes nowhere (it must not block on it).
        std::thread::spawn(move || {
            let mut rest = String::new();
            while stdout.read_line(&mut rest).is_ok_and(|length| length > 0) {
                rest.clear();
            }
        });
        Pbxd {
            child,
            sip,
            http,
            log,
            data,
            settings: settings.to_vec(),
            log_filter: log_filter.to_string(),
            keep_data: false,
        }
    }

    /// How many files (sockets included) the pbxd process has open.
    pub fn open_files(&self) -> usize {
        let directory = format!("/proc/{}/fd", self.child.id());
        std::fs::read_dir(&directory)
            .unwrap_or_else(|error| panic!("{directory}: {error}"))
            .count()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to `seconds`) until some line of the log contains all of
    /// `texts`; the log then.
    pub fn wait_for_line(&self, seconds: u64, texts: &[&str]) -> String {
        wait_until(&self.log, seconds, |log| {
            log.lines()
                .any(|line| texts.iter().all(|text| line.contains(text)))
        })
    }

    /// Waits (up to `seconds`) until `done` says yes of the log; the log then.
    pub fn wait_for(&self, seconds: u64, done: impl Fn(&str) -> bool) -> String {
        wait_until(&self.log, seconds, done)
    }

    /// Waits (up to 10 s) until the log has a line containing each of
    /// `texts`; the log then.
    pub fn wait_for_log(&self, texts: &[&str]) -> String {
        for _ in 0..200 {
            let log = self.log();
            if texts.iter().all(|text| log.contains(text)) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log()
    }

    /// Stops pbxd as Ctrl-C does (SIGINT) and starts it again on the same
    /// address with the same data directory and settings.
    /// Kills pbxd at once (SIGKILL: nothing is flushed, nothing ended) and
    /// starts it again on the same data and SIP port.
    pub fn crash_and_restart(mut self) -> Pbxd {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.keep_data = true;
        Pbxd::spawn(
            self.data.clone(),
            &self.sip.to_string(),
            &self.settings,
            &self.log_filter,
        )
    }

    pub fn restart(mut self) -> Pbxd {
        let pid = self.child.id().to_string();
        let signalled = Command::new("kill").args(["-INT", &pid]).status();
        assert!(signalled.is_ok_and(|status| status.success()), "kill -INT {pid}");
        let status = self.child.wait().expect("pbxd stops");
        assert!(status.success(), "pbxd stopped with {status}\n{}", self.log());
        self.keep_data = true;
        Pbxd::spawn(
            self.data.clone(),
            &self.sip.to_string(),
            &self.settings,
            &self.log_filter,
        )
    }
}

impl Drop for Pbxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_data {
            let _ = std::fs::remove_dir_all(&self.data);
        }
    }
}

/// A sipp command for a scenario of tests/sipp (or at an absolute path)
/// against `pbxd`, one call.
pub fn sipp_command(sipp: &Path, scenario: impl AsRef<Path>, pbxd: &Pbxd, extra: &[&str]) -> Command {
    sipp_command_with_media(sipp, scenario, pbxd, pbx_test_peers::free_udp_port(), extra)
}

/// As `sipp_command`, with sipp's RTP on `media_port`.
pub fn sipp_command_with_media(
    sipp: &Path,
    scenario: impl AsRef<Path>,
    pbxd: &Pbxd,
    media_port: u16,
    extra: &[&str],
) -> Command {
    let media_port = media_port.to_string();
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
pub fn sipp(sipp: &Path, scenario: impl AsRef<Path>, pbxd: &Pbxd, extra: &[&str]) -> Output {
    sipp_command(sipp, scenario, pbxd, extra)
        .output()
        .expect("sipp runs")
}

/// The RTP packets each leg received, from pbxd's log of ended legs.
pub fn rtp_received(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| line.contains("call leg ended"))
        .filter_map(|line| {
            let value = line.split("rtp_received=").nth(1)?;
            value.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

pub fn assert_passed(output: &Output, pbxd: &Pbxd) {
    assert!(
        output.status.success(),
        "sipp failed ({}):\n{}\n{}\n--- pbxd ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        pbxd.log()
    );
}

/// The log lines that contain `text`.
pub fn lines_with<'a>(log: &'a str, text: &str) -> Vec<&'a str> {
    log.lines().filter(|line| line.contains(text)).collect()
}

/// A header's value in a message (the first such header; a SIP message or
/// a mail).
pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|line| {
        let (found, value) = line.split_once(':')?;
        found.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// `curl` (the real HTTP client) on `path` of pbxd's HTTP side, with
/// `arguments` (`-i` puts the response's headers before its body):
/// (status, what it printed).
pub fn curl(curl: &Path, pbxd: &Pbxd, arguments: &[&str], path: &str) -> (u16, String) {
    let url = format!("http://{}{path}", pbxd.http);
    let output = Command::new(curl)
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "5",
            "--write-out",
            "\n%{http_code}",
        ])
        .args(arguments)
        .arg(&url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A SIP provider on `port` (tests/sipp/trunk_challenges_and_answers.xml:
/// challenges pbxd's INVITE, then answers and takes the BYE), running.
pub fn sipp_trunk(sipp: &Path, pbxd: &Pbxd, port: &str) -> Child {
    sipp_command(sipp, "trunk_challenges_and_answers.xml", pbxd, &["-p", port])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp runs")
}
