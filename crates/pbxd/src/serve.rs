//! `pbxd serve`: the PBX itself. SIP and RTP on `sip.listen`, programs run
//! for every call, hot reload of the environments, until Ctrl-C.
//!
//! Two executors: the script tasks, the SIP stack and the call legs run on
//! this thread's `LocalSet` (script values are not `Send`); the media
//! engine, SMTP and HTTP run on a second, multi-threaded one, so RTP pacing
//! never waits for a script.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use pbx_media::engine::{MediaConfig, MediaEngine};
use pbx_runtime::observe::LogObserver;
use pbx_runtime::Runtime;
use pbx_sip::network::SipNetwork;
use pbx_sip::server::SipServer;

use crate::run::load_config;

/// How long running calls may go on after Ctrl-C before they are stopped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A line on stdout; whoever reads it may have gone (a closed pipe is no
/// reason to stop serving).
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Says where to point a phone and what to call.
fn print_how_to_call(runtime: &Runtime, address: std::net::SocketAddr) {
    let Some(domain) = runtime.directory.first_domain() else {
        say("pbxd: no domain is configured: add one to pbxd.toml to take calls");
        return;
    };
    let accounts: Vec<&str> = domain.accounts().map(|account| account.name.as_str()).collect();
    say(&format!(
        "pbxd: domain {} with accounts {}",
        domain.name,
        accounts.join(", ")
    ));
    say(&format!(
        "pbxd: register a phone at {address} as one of them, then call 200 (the auto-attendant, \
         sip:200@{}) or conference",
        domain.name
    ));
}

/// What `pbxd serve` was asked.
pub struct ServeArgs {
    pub config: Option<std::path::PathBuf>,
    pub set: Vec<String>,
}

pub fn serve(args: ServeArgs) -> ExitCode {
    let config = match load_config(args.config.as_deref(), &args.set) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // rsipstack logs every packet at `info`, authorization headers included:
    // keep it to warnings unless RUST_LOG asks.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rsipstack=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let io = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("pbxd-media")
        .enable_all()
        .build()
    {
        Ok(io) => io,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let main = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(main) => main,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let media_config = MediaConfig {
        inactivity_timeout: Duration::from_secs(config.sip.rtp_timeout_seconds),
        ..MediaConfig::default()
    };
    let media = io.block_on(async { MediaEngine::start(media_config) });
    let handle = io.handle().clone();
    let local = tokio::task::LocalSet::new();
    let code = local.block_on(&main, async move {
        let server = match SipServer::bind(config.clone(), media).await {
            Ok(server) => server,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        let network = Arc::new(SipNetwork::new(server.shared()));
        let runtime = match Runtime::new(config, network, Arc::new(LogObserver), handle, false) {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        let _watch = match runtime.environments.watch() {
            Ok(watch) => Some(watch),
            Err(error) => {
                tracing::warn!(%error, "environments are not watched; changes are seen at the next call");
                None
            }
        };
        let shared = server.shared();
        // Tests and scripts read the first line for the port the OS chose.
        let address = server.local_addr();
        let mut serving = tokio::task::spawn_local(server.serve(runtime.clone()));
        // The TCP listener starts with the server: say where pbxd is only
        // once it takes connections there too.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        say(&format!("pbxd: SIP on udp and tcp {address}"));
        print_how_to_call(&runtime, address);
        tokio::select! {
            _ = &mut serving => {}
            _ = tokio::signal::ctrl_c() => {
                // Stop taking calls, let the running ones end (for a while),
                // then ask what is left to stop.
                eprintln!("pbxd: stopping: new calls are refused; waiting for running calls to end");
                shared.draining.store(true, std::sync::atomic::Ordering::Relaxed);
                let drained = tokio::time::timeout(SHUTDOWN_GRACE, runtime.registry.idle()).await;
                if drained.is_err() {
                    runtime.registry.stop_all();
                    let _ = tokio::time::timeout(Duration::from_secs(5), runtime.registry.idle()).await;
                }
            }
        }
        serving.abort();
        shared.shutdown();
        ExitCode::SUCCESS
    });
    io.shutdown_timeout(Duration::from_secs(1));
    code
}
