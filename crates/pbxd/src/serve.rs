//! `pbxd serve`: the PBX itself. SIP and RTP on `sip.listen`, programs run
//! for every call, hot reload of the environments, until Ctrl-C.
//!
//! The server is assembled by `pbx_sip::start` (shards for SIP and the
//! script tasks, media workers for RTP, an executor for SMTP and HTTP);
//! this only reports where it listens and drains it on Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;

use pbx_runtime::observe::{Counting, LogObserver};
use pbx_runtime::server::SHUTDOWN_GRACE;
use pbx_runtime::Runtime;

use crate::run::load_config;

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
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        pbx_runtime::config::LogFormat::Json => log.json().try_init(),
        pbx_runtime::config::LogFormat::Text => log
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    let observer = Counting::new(LogObserver);
    let events = observer.counts.clone();
    let server = match pbx_sip::start(config, Arc::new(observer)) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _watch = match server.runtime().environments.watch() {
        Ok(watch) => Some(watch),
        Err(error) => {
            tracing::warn!(%error, "environments are not watched; changes are seen at the next call");
            None
        }
    };
    let Some(spawner) = server.shards().spawner() else {
        eprintln!("error: pbxd serve runs its shards on threads");
        return ExitCode::FAILURE;
    };
    let sources = pbx_http::Sources {
        runtime: server.runtime().clone(),
        admission: server.admission().clone(),
        sip: server.network().clone(),
        media: server.media().cloned(),
        events,
        spawner,
        next: std::sync::atomic::AtomicUsize::new(0),
        sessions: Default::default(),
    };
    let listen = server.runtime().config.http.listen;
    let http = match pbx_http::start(listen, sources) {
        Ok(http) => http,
        Err(error) => {
            eprintln!("error: http.listen {listen}: {error}");
            server.shutdown(std::time::Duration::ZERO);
            return ExitCode::FAILURE;
        }
    };
    // Tests and scripts read the first line for the port the OS chose.
    let address = server.network().local_addr();
    let shards = server.shards().count();
    let media = server.media().map_or(0, pbx_media::MediaEngine::workers);
    say(&format!("pbxd: SIP on udp and tcp {address}"));
    say(&format!("pbxd: HTTP on {}", http.url()));
    say(&format!("pbxd: {shards} call threads, {media} media threads"));
    print_how_to_call(server.runtime(), address);
    let interrupted = server.block_on(async { tokio::signal::ctrl_c().await.is_ok() });
    if interrupted {
        // Stop taking calls, let the running ones end (for a while), then
        // ask what is left to stop.
        eprintln!("pbxd: stopping: new calls are refused; waiting for running calls to end");
    }
    server.shutdown(SHUTDOWN_GRACE);
    http.stop();
    ExitCode::SUCCESS
}
