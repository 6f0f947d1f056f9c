//! Real peers for pbxd's tests, started on free loopback ports and stopped
//! when dropped: an SMTP server (aiosmtpd) and an HTTP server (Python's
//! http.server). When a peer program is missing, a test says why and skips,
//! unless `PBXD_REQUIRE_PEERS=1` (CI), when it fails.

// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
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
        SmtpServer::start_with(&[])
    }

    /// As `start`, requiring STARTTLS with this certificate chain and key.
    pub fn start_tls(certificates: &TestCertificates) -> Option<SmtpServer> {
        let (cert, key) = (
            certificates.cert.display().to_string(),
            certificates.key.display().to_string(),
        );
        SmtpServer::start_with(&["--tlscert", &cert, "--tlskey", &key])
    }

    /// As `start`, on `port` (a relay pbxd was told of before it listened).
    pub fn start_on(port: u16) -> Option<SmtpServer> {
        SmtpServer::start_at(port, &[])
    }

    fn start_with(extra: &[&str]) -> Option<SmtpServer> {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        SmtpServer::start_at(port, extra)
    }

    fn start_at(port: u16, extra: &[&str]) -> Option<SmtpServer> {
        let spawned = Command::new("python3")
            .args(["-u", "-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(extra)
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

/// A certificate authority made for a test, and a server certificate it
/// signed for `127.0.0.1` and `localhost` (openssl), PEM files.
#[derive(Debug)]
pub struct TestCertificates {
    /// The authority's certificate: what a client must trust.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCertificates {
    /// Makes them in `folder`, or `None` (after saying why) when openssl
    /// is missing or fails and peers are not required.
    pub fn make(folder: &Path) -> Option<TestCertificates> {
        std::fs::create_dir_all(folder).ok()?;
        let path = |name: &str| folder.join(name);
        let extensions = path("server.ext");
        std::fs::write(
            &extensions,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .ok()?;
        let run = |arguments: &[&str]| {
            Command::new("openssl")
                .args(arguments)
                .current_dir(folder)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        let made = run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=pbxd test authority",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]) && run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ]) && run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "cert.pem",
        ]);
        if !made {
            return missing("openssl could not make the test certificates");
        }
        Some(TestCertificates {
            ca: path("ca.pem"),
            cert: path("cert.pem"),
            key: path("key.pem"),
        })
    }
}

pub fn missing<T>(why: &str) -> Option<T> {
    if peers_required() {
        panic!("a peer is required (PBXD_REQUIRE_PEERS=1) but {why}");
    }
    eprintln!("skipping: {why}");
    None
}

/// Starts `peers/SCRIPT` with `arguments`, a Python server that prints the
/// port it listens on first: the process and the port, or `None` (after
/// saying why) when Python is missing and peers are not required.
fn python_server(script: &str, arguments: &[&Path], what: &str) -> Option<(Child, u16)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers").join(script);
    let spawned = Command::new("python3")
        .arg("-u")
        .arg(&script)
        .args(arguments)
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
        Ok(port) => Some((child, port)),
        Err(_) => {
            let _ = child.kill();
            missing(&format!("{what} did not start"))
        }
    }
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
        let (child, port) = python_server("http_echo.py", &[], "the HTTP echo server")?;
        Some(HttpServer { child, port })
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

/// A customer's web server for "ask web URL" (peers/web_router.py): it
/// routes calls by what its URLs say and keeps every request; stopped when
/// dropped.
pub struct WebRouter {
    child: Child,
    pub port: u16,
    scheme: &'static str,
}

/// One request the web router got.
#[derive(Clone, Debug)]
pub struct Received {
    /// When it came, in milliseconds since the epoch.
    pub at_ms: u64,
    /// `POST /route?...`
    pub request: String,
    /// The form's fields, decoded, in the order sent.
    pub fields: Vec<(String, String)>,
    /// The body as sent (line ends and tabs made spaces).
    pub body: String,
}

impl Received {
    /// A field's value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// `application/x-www-form-urlencoded`, decoded.
pub fn form_decode(body: &str) -> Vec<(String, String)> {
    let decode = |text: &str| {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut index = 0;
        while index < bytes.len() {
            let escaped = (bytes[index] == b'%')
                .then(|| bytes.get(index + 1..index + 3))
                .flatten()
                .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
            match (escaped, bytes[index]) {
                (Some(byte), _) => {
                    out.push(byte);
                    index += 3;
                }
                (None, b'+') => {
                    out.push(b' ');
                    index += 1;
                }
                (None, byte) => {
                    out.push(byte);
                    index += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

impl WebRouter {
    /// Starts it (over HTTPS with `tls`, a certificate chain and its key,
    /// PEM files), or `None` (after saying why) when Python is missing and
    /// peers are not required.
    pub fn start(tls: Option<&TestCertificates>) -> Option<WebRouter> {
        let files = tls.map(|certificates| [certificates.cert.as_path(), certificates.key.as_path()]);
        let (child, port) = python_server(
            "web_router.py",
            files.as_ref().map_or(&[][..], |files| &files[..]),
            "the web router",
        )?;
        Some(WebRouter {
            child,
            port,
            scheme: if tls.is_some() { "https" } else { "http" },
        })
    }

    /// A URL of it (`/route?dtype=phone&dnumber=202`).
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }

    /// Every request it got so far, in order.
    pub fn received(&self) -> Vec<Received> {
        use std::io::{Read, Write};
        if self.scheme == "https" {
            // Read through Python's own client, which speaks TLS.
            return self.received_over_tls();
        }
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return Vec::new();
        };
        let _ = write!(stream, "GET /received HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        parse_received(text.split_once("\r\n\r\n").map_or("", |(_, body)| body))
    }

    fn received_over_tls(&self) -> Vec<Received> {
        let output = Command::new("python3")
            .args([
                "-c",
                "import ssl,sys,urllib.request;c=ssl._create_unverified_context();\
                 sys.stdout.write(urllib.request.urlopen(sys.argv[1],context=c).read().decode())",
                &format!("https://127.0.0.1:{}/received", self.port),
            ])
            .output();
        output
            .map(|output| parse_received(&String::from_utf8_lossy(&output.stdout)))
            .unwrap_or_default()
    }
}

fn parse_received(text: &str) -> Vec<Received> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            let at_ms = parts.next()?.parse().ok()?;
            let request = parts.next()?.to_string();
            let body = parts.next().unwrap_or("").to_string();
            let fields = form_decode(&body);
            Some(Received {
                at_ms,
                request,
                fields,
                body,
            })
        })
        .collect()
}

impl Drop for WebRouter {
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

/// A TCP port nothing listens on right now on 127.0.0.1 (a server that
/// refuses connections).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or(9)
}

/// A real SOAP client (Python's zeep, peers/parlay_client.py) that read
/// pbxd's WSDL and authenticates with HTTP Digest; each `call` is one
/// operation, answered as JSON: `{"result": …}`, or `{"fault": {message,
/// code, messageId, text, variables}}`.
pub struct SoapClient {
    child: Child,
    input: std::process::ChildStdin,
    output: BufReader<std::process::ChildStdout>,
}

impl SoapClient {
    /// Starts the client on `wsdl` as `user`, or `None` (after saying why)
    /// when zeep is missing and peers are not required.
    pub fn start(wsdl: &str, user: &str, password: &str) -> Option<SoapClient> {
        let module = Command::new("python3").args(["-c", "import zeep"]).output();
        if !module.is_ok_and(|output| output.status.success()) {
            return missing("python3's zeep is not installed (pip install zeep)");
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/parlay_client.py");
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(&script)
            .args([wsdl, user, password])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let input = child.stdin.take().expect("a piped stdin");
        let output = BufReader::new(child.stdout.take().expect("a piped stdout"));
        let mut client = SoapClient { child, input, output };
        let mut line = String::new();
        let _ = client.output.read_line(&mut line);
        assert_eq!(line.trim(), "ready", "zeep did not read the WSDL at {wsdl}");
        Some(client)
    }

    /// Calls `operation` with `arguments` (a JSON object of its parts).
    pub fn call(&mut self, operation: &str, arguments: serde_json::Value) -> serde_json::Value {
        use std::io::Write as _;
        let request = serde_json::json!({ "op": operation, "args": arguments });
        writeln!(self.input, "{request}").expect("the SOAP client takes requests");
        let mut line = String::new();
        self.output.read_line(&mut line).expect("the SOAP client answers");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON from the SOAP client: {line}"))
    }
}

impl Drop for SoapClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
