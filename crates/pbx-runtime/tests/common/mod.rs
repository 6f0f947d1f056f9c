//! Shared by the runtime's tests: a world to run calls in (configuration,
//! environments in a scratch folder, the simulated network, virtual time),
//! and an observer that records events. The real peers (SMTP, HTTP) are
//! in `pbx-test-peers`.

#![allow(dead_code)]
// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pbx_runtime::observe::{Event, Observer};
use pbx_runtime::sim::{self, Keys, SimNetwork};
use pbx_runtime::{Config, Mode, Routed, Runtime, Server, ServerOptions};

/// Records every event.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<Event>>,
}

impl Observer for Recorder {
    fn event(&self, event: Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }
}

impl Recorder {
    /// Every `SysLog` line, in order.
    pub fn logs(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|event| match event {
                Event::Log { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// The files played, as found in their environments.
    pub fn played(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|event| match event {
                Event::Play { file, .. } => Some(file.clone()),
                _ => None,
            })
            .collect()
    }

    /// The tones played (`880 Hz`).
    pub fn tones(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|event| match event {
                Event::Tone { frequencies, .. } => Some(frequencies.clone()),
                _ => None,
            })
            .collect()
    }

    /// What happened to calls (`accepted`, `hung up`…).
    pub fn calls(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|event| match event {
                Event::Call { what, .. } => Some(what.clone()),
                _ => None,
            })
            .collect()
    }

    /// The notes of calls routed outside tasks (ringing, rules).
    pub fn routing(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|event| match event {
                Event::Routing { what } => Some(what.clone()),
                _ => None,
            })
            .collect()
    }

    /// The one-line form of every run-time error.
    pub fn errors(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|event| match event {
                Event::Error { diagnostic, .. } => Some(diagnostic.one_line()),
                Event::ProgramProblem { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A scratch folder, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let unique = format!(
            "pbx-runtime-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        )
        .replace(['(', ')'], "");
        let dir = std::env::temp_dir().join(unique);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `text` to `relative`, making folders.
    pub fn write(&self, relative: &str, text: impl AsRef<[u8]>) {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.0.join(relative)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A silent WAV of `millis` milliseconds, as a prompt.
pub fn prompt(millis: u32) -> Vec<u8> {
    pbx_media::wav::pcm16_mono(&vec![0; (millis * 8) as usize], 8000)
}

/// The configuration of a test world: environments under `scratch`
/// (stock, server, domains/example.com), domain example.com with accounts
/// ivanov (Russian), petrov and operator, then `extra` TOML.
pub fn config(scratch: &Scratch, extra: &str, overrides: &[String]) -> Config {
    let text = format!(
        r#"
[environments]
stock = "{stock}"
server = "{server}"
domains = "{domains}"

[server]
time_zone = "Europe/Moscow"

[domains."example.com"]
time_zone = "Europe/Moscow"

[domains."example.com".accounts.ivanov]
aliases = ["101"]
language = "russian"
working_hours = "Mon-Fri 09:00-18:00"
rules = [{{ when = "after hours", then = "divert #callback" }}]

[domains."example.com".accounts.petrov]
aliases = ["102"]

[domains."example.com".accounts.operator]
aliases = ["100"]
{extra}
"#,
        stock = scratch.path("stock").display(),
        server = scratch.path("server").display(),
        domains = scratch.path("domains").display(),
    );
    Config::parse(&text, "test.toml", overrides).unwrap_or_else(|error| panic!("{error}"))
}

/// How a test starts its call.
pub enum Call<'a> {
    /// An address (`callback#ivanov@example.com`), routed as a real call.
    To(&'a str),
    /// A program of the stock environment, run for an account.
    App(&'a str, &'a str),
}

/// Runs one simulated call to the end, in virtual time, and returns what
/// happened.
pub fn run(config: Config, call: Call<'_>, dtmf: &str) -> Arc<Recorder> {
    run_with(config, call, dtmf, |_| {})
}

/// Like `run`, with `before` called on the runtime first (to start other
/// tasks, say).
pub fn run_with(config: Config, call: Call<'_>, dtmf: &str, before: impl FnOnce(&Runtime)) -> Arc<Recorder> {
    let (recorder, routed) = route(config, call, dtmf, before);
    if let Err(error) = routed {
        panic!("the call did not start: {error}");
    }
    recorder
}

/// Routes one simulated call and runs whatever it started to the end; returns
/// what happened and how the call was routed.
pub fn route(
    config: Config,
    call: Call<'_>,
    dtmf: &str,
    before: impl FnOnce(&Runtime),
) -> (Arc<Recorder>, Result<Routed, String>) {
    let script = sim::parse_script(dtmf).unwrap();
    world(config, async move |runtime, network| {
        before(&runtime);
        let routed = match call {
            Call::To(target) => {
                let leg = network.incoming("caller@sim", target, Keys::Script(script));
                runtime.call_address(leg, target)
            }
            Call::App(app, account) => {
                let (user, domain) = account.split_once('@').unwrap();
                let account = runtime.directory.find(user, domain).unwrap();
                let leg = network.incoming("caller@sim", &account.address(), Keys::Script(script));
                runtime
                    .start_app(app, account, Some(leg), Vec::new())
                    .map(Routed::Task)
            }
        };
        let ended = tokio::time::timeout(Duration::from_secs(7200), runtime.registry.idle()).await;
        assert!(ended.is_ok(), "the tasks did not end");
        routed.map_err(|error| error.to_string())
    })
}

/// Runs `body` with a runtime for `config` on the simulated network (its
/// phones as configured), in virtual time, with SMTP and HTTP on a real
/// I/O executor; returns what was observed and what `body` returned. The
/// server is assembled as `pbxd run` assembles it.
pub fn world<T>(config: Config, body: impl AsyncFnOnce(Runtime, Arc<SimNetwork>) -> T) -> (Arc<Recorder>, T) {
    let recorder = Arc::new(Recorder::default());
    let phones = config
        .simulation
        .phones
        .iter()
        .map(|(name, behaviour)| (name.clone(), sim::Phone::parse(behaviour).unwrap()))
        .collect::<HashMap<_, _>>();
    let options = ServerOptions {
        observer: recorder.clone(),
        mode: Mode::Simulated { virtual_time: true },
    };
    let server = Server::start(config, options, |_| Ok(Arc::new(SimNetwork::with_phones(phones)))).unwrap();
    let runtime = server.runtime().clone();
    let network = server.network().clone();
    let result = server.block_on(body(runtime, network));
    server.shutdown(Duration::ZERO);
    (recorder, result)
}

/// The stock environment of the repository (callback.sppr and prompts).
pub fn repository_stock() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../stdlib-scripts")
}
