//! Shards: the threads calls run on (ARCHITECTURE.md, "Every core").
//!
//! Script values are not `Send`, so a task stays on the thread that started
//! it. pbxd runs `runtime.threads` shards, each a thread with its own
//! current-thread executor and `LocalSet`; a call's SIP dialog, its
//! transactions, its legs and its task all live on one shard, and what
//! crosses shards (task inputs, leg commands and events, handshakes) goes
//! through channels. For simulated calls in virtual time the one shard is
//! the calling thread (`Shards::here`), driven by `block_on`.
//!
//! Each threaded shard also measures how long its tasks wait to run: a
//! probe that sleeps 10 ms and notes how late it wakes. The most over the
//! last second is its `task_delay`, which admission control reads.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::LocalSet;

/// Work handed to a shard: runs on its thread, inside its `LocalSet`, so it
/// may `spawn_local`.
type Job = Box<dyn FnOnce() + Send>;

/// How often a shard's probe checks how late it runs.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);

thread_local! {
    /// The shard this thread is, if it is one.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The shard the calling thread is, if it is one.
pub fn current() -> Option<usize> {
    CURRENT.with(Cell::get)
}

/// What a shard's probe last measured. Written by the shard's probe; read
/// by admission control from any thread.
#[derive(Debug, Default)]
pub struct ShardLoad {
    /// The longest a task waited to run in the last full second, in µs.
    task_delay_micros: AtomicU64,
}

impl ShardLoad {
    /// The longest a task waited to run in the last full second.
    pub fn task_delay(&self) -> Duration {
        Duration::from_micros(self.task_delay_micros.load(Ordering::Relaxed))
    }
}

enum Kind {
    Threads(Vec<std::thread::JoinHandle<()>>),
    Here {
        executor: tokio::runtime::Runtime,
        local: LocalSet,
    },
}

/// Hands work to shards, from any thread; cheap to clone. Work handed to a
/// stopped shard is dropped.
#[derive(Clone)]
pub struct ShardSpawner(Arc<[mpsc::UnboundedSender<Job>]>);

impl std::fmt::Debug for ShardSpawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSpawner")
            .field("shards", &self.0.len())
            .finish()
    }
}

impl ShardSpawner {
    /// Runs `job` on shard `index` (modulo the count), inside its
    /// `LocalSet`, so it may `spawn_local`.
    pub fn run_on(&self, index: usize, job: impl FnOnce() + Send + 'static) {
        if let Some(jobs) = self.0.get(index % self.0.len()) {
            let _ = jobs.send(Box::new(job));
        }
    }

    /// How many shards there are.
    pub fn count(&self) -> usize {
        self.0.len()
    }
}

/// The shards of a server.
pub struct Shards {
    kind: Kind,
    spawner: Option<ShardSpawner>,
    /// Set to stop the shard threads (spawners handed out may outlive them).
    stop: tokio::sync::watch::Sender<bool>,
    load: Arc<[ShardLoad]>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards").field("count", &self.count()).finish()
    }
}

impl Shards {
    /// `count` shard threads, named `pbxd-shard-N`.
    pub fn threads(count: usize) -> std::io::Result<Shards> {
        let count = count.max(1);
        let load: Arc<[ShardLoad]> = (0..count).map(|_| ShardLoad::default()).collect();
        let mut threads = Vec::with_capacity(count);
        let mut senders = Vec::with_capacity(count);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        for index in 0..count {
            let executor = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (jobs, receiver) = mpsc::unbounded_channel::<Job>();
            let stopped = stopped.clone();
            let thread = std::thread::Builder::new()
                .name(format!("pbxd-shard-{index}"))
                .spawn(move || run_shard(index, executor, receiver, stopped))?;
            threads.push(thread);
            senders.push(jobs);
        }
        Ok(Shards {
            kind: Kind::Threads(threads),
            spawner: Some(ShardSpawner(senders.into())),
            stop,
            load,
        })
    }

    /// One shard on the calling thread, run by `block_on`; with `paused`,
    /// its clock is tokio's paused one (virtual time: timers fire as soon
    /// as nothing else can run).
    pub fn here(paused: bool) -> std::io::Result<Shards> {
        let executor = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(paused)
            .build()?;
        let local = LocalSet::new();
        let (jobs, mut receiver) = mpsc::unbounded_channel::<Job>();
        local.spawn_local(async move {
            while let Some(job) = receiver.recv().await {
                job();
            }
        });
        Ok(Shards {
            kind: Kind::Here { executor, local },
            spawner: Some(ShardSpawner(Arc::from(vec![jobs]))),
            stop: tokio::sync::watch::Sender::new(false),
            load: Arc::from(vec![ShardLoad::default()]),
        })
    }

    /// How many shards there are.
    pub fn count(&self) -> usize {
        self.load.len()
    }

    /// What each shard's probe measured.
    pub fn load(&self) -> Arc<[ShardLoad]> {
        self.load.clone()
    }

    /// Runs `job` on shard `index` (modulo the count), inside its
    /// `LocalSet`. On a shard made by `here`, it runs during `block_on`.
    pub fn run_on(&self, index: usize, job: impl FnOnce() + Send + 'static) {
        if let Some(spawner) = &self.spawner {
            spawner.run_on(index, job);
        }
    }

    /// A handle that hands work to the shards from anywhere, later.
    pub fn spawner(&self) -> Option<ShardSpawner> {
        self.spawner.clone()
    }

    /// On a shard made by `here`, makes its clock the one `tokio::time`
    /// reads until the guard drops (to set up what counts time from now).
    pub fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        match &self.kind {
            Kind::Here { executor, .. } => Some(executor.enter()),
            Kind::Threads(_) => None,
        }
    }

    /// Whether the shards are threads of their own (not the caller's).
    pub fn threaded(&self) -> bool {
        matches!(self.kind, Kind::Threads(_))
    }

    /// Runs `future` to completion on this thread. On a shard made by
    /// `here`, this thread is the shard: the future and every task it
    /// starts run on its `LocalSet`. Otherwise it runs outside the shards,
    /// on an executor of its own, and may only wait.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.kind {
            Kind::Here { executor, local } => {
                let previous = CURRENT.with(|current| current.replace(Some(0)));
                let output = local.block_on(executor, future);
                CURRENT.with(|current| current.set(previous));
                output
            }
            Kind::Threads(_) => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(executor) => executor.block_on(future),
                Err(error) => panic!("no executor to wait on: {error}"),
            },
        }
    }

    /// Starts each threaded shard's probe of how long its tasks wait to run.
    /// A probe runs only while `busy` says something runs (an idle pbxd
    /// does not wake).
    pub fn start_probes(&self, busy: &tokio::sync::watch::Sender<usize>) {
        if self.threaded() {
            for index in 0..self.count() {
                let load = self.load.clone();
                let busy = busy.subscribe();
                self.run_on(index, move || {
                    tokio::task::spawn_local(probe(load, index, busy));
                });
            }
        }
    }

    /// Stops every shard: what still runs there is dropped.
    pub fn stop(&mut self) {
        self.spawner = None;
        self.stop.send_replace(true);
        if let Kind::Threads(threads) = &mut self.kind {
            for thread in threads.drain(..) {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A shard thread: takes jobs until the server stops.
fn run_shard(
    index: usize,
    executor: tokio::runtime::Runtime,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    CURRENT.with(|current| current.set(Some(index)));
    let local = LocalSet::new();
    local.block_on(&executor, async move {
        loop {
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => job(),
                    None => break,
                },
                _ = stopped.wait_for(|stop| *stop) => break,
            }
        }
    });
    // Whatever still runs (tasks of calls that did not end) is dropped with
    // the LocalSet; its legs hang up as their handles go.
    drop(local);
    executor.shutdown_timeout(Duration::from_secs(1));
}

/// Measures how late this shard runs a task that asked to wake, while
/// anything runs.
async fn probe(load: Arc<[ShardLoad]>, index: usize, mut busy: tokio::sync::watch::Receiver<usize>) {
    let mut window_start = tokio::time::Instant::now();
    let mut worst = Duration::ZERO;
    loop {
        if *busy.borrow_and_update() == 0 {
            if let Some(shard) = load.get(index) {
                shard.task_delay_micros.store(0, Ordering::Relaxed);
            }
            if busy.wait_for(|running| *running > 0).await.is_err() {
                return;
            }
            window_start = tokio::time::Instant::now();
            worst = Duration::ZERO;
        }
        let asked = tokio::time::Instant::now() + PROBE_INTERVAL;
        tokio::time::sleep_until(asked).await;
        let now = tokio::time::Instant::now();
        worst = worst.max(now.saturating_duration_since(asked));
        if now.saturating_duration_since(window_start) >= Duration::from_secs(1) {
            if let Some(shard) = load.get(index) {
                let micros = u64::try_from(worst.as_micros()).unwrap_or(u64::MAX);
                shard.task_delay_micros.store(micros, Ordering::Relaxed);
            }
            worst = Duration::ZERO;
            window_start = now;
        }
    }
}
