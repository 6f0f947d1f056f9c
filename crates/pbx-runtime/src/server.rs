//! One way to assemble pbxd (STYLE.md: mini-redis's `server::run`):
//! `pbxd serve` (over SIP), `pbxd run` (simulated calls) and the tests all
//! build the server here.
//!
//! A [`Server`] is: an I/O executor for SMTP and HTTP, the media engine
//! (`media.threads` workers, with the server's music on hold; none in
//! virtual time), the shards
//! (`runtime.threads` threads; in virtual time the calling thread), the
//! directory, admission control, the network (built by the caller from a
//! [`NetworkSetup`]: SIP or simulated), and the `Runtime` every task
//! shares. Each shard takes the calls its network hands it through its own
//! [`IncomingCalls`].

use std::sync::Arc;
use std::time::Duration;

use pbx_media::{MediaConfig, MediaEngine, Prompt};

use crate::admission::Admission;
use crate::call::{IncomingCalls, Network};
use crate::config::{Config, ConfigError};
use crate::directory::Directory;
use crate::env::Kind;
use crate::hotdesk::HotDesk;
use crate::observe::Observer;
use crate::runtime::Runtime;
use crate::shard::Shards;

/// How long running calls may go on after shutdown starts before their
/// tasks are asked to stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How a server runs.
pub struct ServerOptions {
    pub observer: Arc<dyn Observer>,
    pub mode: Mode,
}

/// Where calls run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// On `runtime.threads` shard threads, with `media.threads` media
    /// workers (`pbxd serve`).
    Threads,
    /// Simulated calls on one shard, the calling thread (driven by
    /// `block_on`), without media workers (`pbxd run`, tests); in virtual
    /// time on a paused clock, or in real time (`pbxd run` at a terminal).
    Simulated { virtual_time: bool },
}

/// What a network is built from.
pub struct NetworkSetup<'a> {
    pub config: &'a Config,
    pub directory: &'a Arc<Directory>,
    pub shards: &'a Shards,
    /// Each shard's handle for new calls, in shard order.
    pub incoming: Vec<IncomingCalls>,
    pub admission: &'a Arc<Admission>,
    /// The RTP engine (`None` for simulated calls).
    pub media: Option<MediaEngine>,
    /// Where blocking set-up (binding sockets) can run.
    pub io: &'a tokio::runtime::Handle,
    /// Virtual lines logged in on phones: whose settings a phone's call has.
    pub hotdesk: &'a Arc<HotDesk>,
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Network(String),
}

/// A running pbxd.
pub struct Server<N> {
    runtime: Runtime,
    network: Arc<N>,
    admission: Arc<Admission>,
    media: Option<MediaEngine>,
    shards: Shards,
    io: Option<tokio::runtime::Runtime>,
}

impl<N> std::fmt::Debug for Server<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("shards", &self.shards)
            .field("admission", &self.admission)
            .finish()
    }
}

impl<N: Network + 'static> Server<N> {
    /// Starts a server for `config` on the network `build` makes.
    pub fn start(
        config: Config,
        options: ServerOptions,
        build: impl FnOnce(NetworkSetup<'_>) -> Result<Arc<N>, String>,
    ) -> Result<Server<N>, ServerError> {
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pbxd-io")
            .enable_all()
            .build()?;
        let directory = Arc::new(Directory::from_config(&config)?);
        let virtual_time = options.mode == Mode::Simulated { virtual_time: true };
        let hotdesk_path = config.data_dir.join("hotdesk.redb");
        let hotdesk = if virtual_time {
            HotDesk::in_memory(config.hotdesk.clone())
        } else {
            HotDesk::open(&hotdesk_path, config.hotdesk.clone())
        }
        .map(Arc::new)
        .map_err(|error| {
            crate::config::store_error(&hotdesk_path, "the hot desk logins and lock-outs", error)
        })?;
        let shards = match options.mode {
            Mode::Simulated { virtual_time } => Shards::here(virtual_time)?,
            Mode::Threads => Shards::threads(config.runtime.shard_count())?,
        };
        let media = if matches!(options.mode, Mode::Simulated { .. }) {
            None
        } else {
            Some(MediaEngine::start_threads(MediaConfig {
                inactivity_timeout: Duration::from_secs(config.sip.rtp_timeout_seconds),
                workers: config.media.worker_count(),
                ..MediaConfig::default()
            })?)
        };
        let admission = Admission::new(config.limits.clone(), shards.load(), media.clone());
        let (incoming, receivers): (Vec<_>, Vec<_>) =
            (0..shards.count()).map(|_| IncomingCalls::channel()).unzip();
        let network = build(NetworkSetup {
            config: &config,
            directory: &directory,
            shards: &shards,
            incoming,
            admission: &admission,
            media: media.clone(),
            io: io.handle(),
            hotdesk: &hotdesk,
        })
        .map_err(ServerError::Network)?;
        // The server clock counts from now on the shards' clock (a
        // simulation's virtual one).
        let entered = shards.enter();
        let runtime = Runtime::new(
            config,
            directory,
            hotdesk,
            network.clone(),
            options.observer,
            io.handle().clone(),
            virtual_time,
        )?;
        drop(entered);
        for (index, calls) in receivers.into_iter().enumerate() {
            let runtime = runtime.clone();
            shards.run_on(index, move || {
                tokio::task::spawn_local(async move { runtime.take_calls(calls).await });
            });
        }
        if let Some(media) = &media {
            start_music_on_hold(&runtime, media);
        }
        shards.start_probes(runtime.registry.running());
        if !virtual_time {
            crate::hotdesk::start_expiry(&runtime);
        }
        Ok(Server {
            runtime,
            network,
            admission,
            media,
            shards,
            io: Some(io),
        })
    }
}

/// The server's music on hold, for every call without music of its own:
/// `moh` as a lookup without a domain finds it (the server's environment,
/// then the stock one). Given to the media engine now, and again whenever
/// the environments' watch sees a prompt change (`pbxd serve` watches
/// them), by a task on the I/O executor that ends with it.
fn start_music_on_hold(runtime: &Runtime, media: &MediaEngine) {
    fn server_music(runtime: &Runtime) -> Option<Arc<Prompt>> {
        let found = runtime
            .environments
            .find("", None, "moh", Kind::Audio)
            .ok()
            .flatten()?;
        match runtime.prompts.get(&found.path) {
            Ok(prompt) => Some(prompt),
            Err(error) => {
                tracing::warn!(file = %found.path.display(), %error, "no music on hold");
                None
            }
        }
    }
    media.set_music(server_music(runtime));
    let mut changes = runtime.environments.audio_changes();
    let (runtime, media) = (runtime.clone(), media.clone());
    runtime.io.clone().spawn(async move {
        while changes.changed().await.is_ok() {
            media.set_music(server_music(&runtime));
        }
    });
}

impl<N: Network + 'static> Server<N> {
    /// What every task shares.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The network the server was built on.
    pub fn network(&self) -> &Arc<N> {
        &self.network
    }

    pub fn admission(&self) -> &Arc<Admission> {
        &self.admission
    }

    /// The RTP engine (`None` for simulated calls).
    pub fn media(&self) -> Option<&MediaEngine> {
        self.media.as_ref()
    }

    pub fn shards(&self) -> &Shards {
        &self.shards
    }

    /// Runs `work` on shard `index` (it may start tasks there).
    pub fn run_on(&self, index: usize, work: impl FnOnce(Runtime) + Send + 'static) {
        let runtime = self.runtime.clone();
        self.shards.run_on(index, move || work(runtime));
    }

    /// Runs `future` to completion on this thread: in virtual time, as the
    /// server's one shard (it may start tasks and place calls); otherwise
    /// outside the shards, to wait for something.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.shards.block_on(future)
    }

    /// Waits until no task runs and no call is routed, at most `limit`;
    /// true when that happened.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let registry = &self.runtime.registry;
        self.block_on(async { tokio::time::timeout(limit, registry.idle()).await.is_ok() })
    }

    /// Stops: new calls are refused; running calls may go on for `grace`,
    /// then their tasks are asked to stop; then everything ends.
    pub fn shutdown(mut self, grace: Duration) {
        self.admission.drain();
        if !self.wait_idle(grace) {
            self.runtime.registry.stop_all();
            self.wait_idle(Duration::from_secs(5));
        }
        self.network.close();
        self.shards.stop();
        // The records of the calls that ended meanwhile are on disk.
        self.runtime.records.flush();
        if let Some(io) = self.io.take() {
            io.shutdown_timeout(Duration::from_secs(1));
        }
    }
}
