//! baresip, a real softphone (tests/baresip.rs, tests/encryption.rs):
//! where it is installed, and a phone with a generated configuration in
//! a folder of its own, where it also records what it hears, driven
//! through its ctrl_tcp module. Stopped when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{collect, wait_until};

/// The modules every phone here loads.
const MODULES: [&str; 5] = ["g711.so", "ausine.so", "aubridge.so", "sndfile.so", "ctrl_tcp.so"];

/// The baresip program and its modules folder (with `MODULES` and
/// `extra`), or `None` (after saying why) when baresip is missing and
/// peers are not required.
pub fn installation(extra: &[&str]) -> Option<(PathBuf, PathBuf)> {
    let program = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("baresip"))
        .find(|candidate| candidate.is_file());
    let Some(program) = program else {
        return pbx_test_peers::missing("baresip is not installed (apt-get install baresip-core)");
    };
    let needed: Vec<&str> = MODULES.iter().chain(extra).copied().collect();
    let modules = ["/usr/lib/baresip/modules", "/usr/local/lib/baresip/modules"]
        .iter()
        .map(PathBuf::from)
        .find(|dir| needed.iter().all(|module| dir.join(module).is_file()));
    let Some(modules) = modules else {
        return pbx_test_peers::missing(&format!("baresip's modules ({}) are missing", needed.join(", ")));
    };
    Some((program, modules))
}

/// A port free right now on 127.0.0.1 for baresip's SIP: UDP and TCP on
/// it, and TCP on the next one (baresip's TLS).
fn free_sip_port() -> u16 {
    for _ in 0..50 {
        let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(address) = socket.local_addr() else {
            continue;
        };
        let port = address.port();
        if port < 65000
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 1)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port for baresip");
}

/// A running baresip.
pub struct Phone {
    child: Child,
    dir: PathBuf,
    output: Arc<Mutex<String>>,
    control: TcpStream,
    /// What ctrl_tcp said (responses and events), one JSON object a line.
    said: Arc<Mutex<String>>,
}

impl Phone {
    /// Starts baresip in a new folder named after `name`: SIP on a free
    /// port, a 440 Hz tone as its microphone, what it hears recorded,
    /// `settings` (configuration lines) and `modules` beyond the usual
    /// ones, and `account` as its accounts file.
    pub fn start(
        installation: &(PathBuf, PathBuf),
        name: &str,
        settings: &str,
        modules: &[&str],
        account: &str,
    ) -> Phone {
        let (program, module_path) = installation;
        let dir = std::env::temp_dir().join(format!("pbxd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sip_port = free_sip_port();
        let control_port = pbx_test_peers::free_tcp_port();
        let loaded: String = MODULES
            .iter()
            .filter(|module| **module != "ctrl_tcp.so")
            .chain(modules)
            .map(|module| format!("module {module}\n"))
            .collect();
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{sip_port}\n\
             net_interface 127.0.0.1\n\
             {settings}\
             audio_source ausine,440\n\
             ausrc_srate 48000\n\
             ausrc_channels 2\n\
             audio_player aubridge,heard\n\
             audio_alert aubridge,alert\n\
             snd_path {dir}\n\
             module_path {module_path}\n\
             {loaded}\
             module_app account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{control_port}\n",
            dir = dir.display(),
            module_path = module_path.display(),
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(dir.join("accounts"), account).unwrap();
        let mut child = Command::new(program)
            .arg("-f")
            .arg(&dir)
            // A last resort if the test dies without dropping it.
            .args(["-t", "60"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("baresip starts");
        let output = collect(child.stdout.take().expect("stdout"));
        let errors = collect(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let control = loop {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", control_port)) {
                break stream;
            }
            if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                panic!(
                    "baresip's ctrl_tcp did not listen on {control_port}:\n{}{}",
                    output.lock().unwrap(),
                    errors.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let said = Arc::new(Mutex::new(String::new()));
        let reader = control.try_clone().unwrap();
        let collected = said.clone();
        std::thread::spawn(move || {
            // Netstrings: "LENGTH:JSON,".
            let mut reader = BufReader::new(reader);
            loop {
                let mut length = Vec::new();
                if reader.read_until(b':', &mut length).unwrap_or(0) == 0 {
                    return;
                }
                let Ok(length) = String::from_utf8_lossy(&length)
                    .trim_end_matches(':')
                    .parse::<usize>()
                else {
                    return;
                };
                let mut message = vec![0; length + 1];
                if reader.read_exact(&mut message).is_err() {
                    return;
                }
                let mut said = collected.lock().unwrap();
                said.push_str(&String::from_utf8_lossy(&message[..length]));
                said.push('\n');
            }
        });
        Phone {
            child,
            dir,
            output,
            control,
            said,
        }
    }

    /// Sends a command (a long menu command name) through ctrl_tcp.
    pub fn command(&mut self, command: &str, params: &str) {
        let body = format!(r#"{{"command":"{command}","params":"{params}","token":"{command}"}}"#);
        let message = format!("{}:{body},", body.len());
        self.control.write_all(message.as_bytes()).unwrap();
    }

    /// Waits (up to `seconds`) for an event of `kind` from ctrl_tcp.
    pub fn wait_for_event(&self, seconds: u64, kind: &str) -> bool {
        let needle = format!(r#""type":"{kind}""#);
        wait_until(&self.said, seconds, |said| said.contains(&needle)).contains(&needle)
    }

    /// What baresip printed and said, for failure messages.
    pub fn transcript(&self) -> String {
        format!(
            "--- baresip ---\n{}\n--- ctrl_tcp ---\n{}",
            self.output.lock().unwrap().replace('\r', "\n"),
            self.said.lock().unwrap()
        )
    }

    /// Quits baresip (so its recordings are complete) and waits for it.
    pub fn quit(&mut self) {
        self.command("quit", "");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }

    /// The recording of what baresip heard (sndfile's dump-<time>-dec.wav).
    pub fn heard(&self) -> Option<PathBuf> {
        std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .find(|path| path.to_string_lossy().ends_with("-dec.wav"))
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
