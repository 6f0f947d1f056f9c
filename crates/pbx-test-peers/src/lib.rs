//! Real peers for pbxd's tests, started on free loopback ports and stopped
//! when dropped: an SMTP server (aiosmtpd) and an HTTP server (Python's
//! http.server). When a peer program is missing, a test says why and skips,
//! unless `PBXD_REQUIRE_PEERS=1` (CI), when it fails.

// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Whether tests must have their peers (CI sets PBXD_REQUIRE_PEERS=1).
pub fn peers_required() -> bool {
    std::env::var_os("PBXD_REQUIRE_PEERS").is_some_and(|value| value == "1")
}

/// A real SMTP server (aiosmtpd) on a free loopback port, printing every
/// message it receives; stopped when dropped.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

impl SmtpServer {
    /// Starts aiosmtpd, or `None` (after saying why) when it is missing and
    /// peers are not required.
    pub fn start() -> Option<SmtpServer> {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let spawned = Command::new("python3")
            .args(["-u", "-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => return missing(&format!("python3: {error}")),
        };
        let stdout = child.stdout.take()?;
        let messages = Arc::new(Mutex::new(Vec::new()));
        let collected = messages.clone();
        std::thread::spawn(move || {
            let mut current = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("------------ END MESSAGE") {
                    collected.lock().unwrap().push(std::mem::take(&mut current));
                } else if !line.starts_with("---------- MESSAGE FOLLOWS") {
                    current.push_str(&line);
                    current.push('\n');
                }
            }
        });
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(SmtpServer {
                    child,
                    port,
                    messages,
                });
            }
            if let Ok(Some(_)) = child.try_wait() {
                return missing("aiosmtpd exited (pip install aiosmtpd)");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        missing("aiosmtpd did not start listening")
    }

    /// `host:port` to give as the relay.
    pub fn relay(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The messages received so far (headers and body), waiting a little
    /// for `count` of them.
    pub fn messages(&self, count: usize) -> Vec<String> {
        for _ in 0..100 {
            let messages = self.messages.lock().unwrap().clone();
            if messages.len() >= count {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.messages.lock().unwrap().clone()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn missing<T>(why: &str) -> Option<T> {
    if peers_required() {
        panic!("a peer is required (PBXD_REQUIRE_PEERS=1) but {why}");
    }
    eprintln!("skipping: {why}");
    None
}

/// A real HTTP server (Python's http.server, peers/http_echo.py) on
/// a free loopback port; stopped when dropped.
pub struct HttpServer {
    child: Child,
    pub port: u16,
}

impl HttpServer {
    /// Starts the echo server, or `None` (after saying why) when Python is
    /// missing and peers are not required.
    pub fn start() -> Option<HttpServer> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/http_echo.py");
        let spawned = Command::new("python3")
            .arg("-u")
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => return missing(&format!("python3: {error}")),
        };
        let mut line = String::new();
        let stdout = child.stdout.take()?;
        BufReader::new(stdout).read_line(&mut line).ok()?;
        match line.trim().parse() {
            Ok(port) => Some(HttpServer { child, port }),
            Err(_) => {
                let _ = child.kill();
                missing("the HTTP echo server did not start")
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `sipp` program (Debian's sip-tester), or `None` (after saying why)
/// when it is missing and peers are not required.
pub fn sipp() -> Option<std::path::PathBuf> {
    program("sipp", "sip-tester")
}

/// The `curl` program, a real HTTP client, or `None` (after saying why)
/// when it is missing and peers are not required.
pub fn curl() -> Option<std::path::PathBuf> {
    program("curl", "curl")
}

/// Headless Chromium (Debian's `chromium`) and the Python module the
/// console's driver needs (websocket-client), or `None` (after saying
/// why) when either is missing and peers are not required.
pub fn chromium() -> Option<std::path::PathBuf> {
    let chromium = program("chromium", "chromium")?;
    let module = Command::new("python3").args(["-c", "import websocket"]).output();
    if !module.is_ok_and(|output| output.status.success()) {
        return missing("python3's websocket-client is not installed (pip install websocket-client)");
    }
    Some(chromium)
}

/// `name` on the PATH, or `None` (after saying which Debian `package`
/// has it) when it is missing and peers are not required.
fn program(name: &str, package: &str) -> Option<std::path::PathBuf> {
    for dir in std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
    {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    missing(&format!("{name} is not installed (apt-get install {package})"))
}

/// A UDP port free right now on 127.0.0.1 (for programs that must be
/// told a port, like sipp's media port; an even one, as RTP likes).
pub fn free_udp_port() -> u16 {
    for _ in 0..50 {
        if let Ok(socket) = std::net::UdpSocket::bind("127.0.0.1:0") {
            if let Ok(address) = socket.local_addr() {
                let port = address.port();
                // sipp also takes the next ports for RTCP and video.
                let next_free =
                    (1..4).all(|offset| std::net::UdpSocket::bind(("127.0.0.1", port + offset)).is_ok());
                if port % 2 == 0 && port < 65000 && next_free {
                    return port;
                }
            }
        }
    }
    40000
}
