//! `pbxd run FILE|app#account@domain`: runs a program on a simulated
//! incoming call and prints a timeline of what happens.
//!
//! With `--dtmf`, the caller dials that script and the run takes virtual
//! time (a call of minutes finishes at once); without it, on a terminal,
//! the keys typed (then Enter) are the caller's DTMF, in real time.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use pbx_lang::compile::{compile_as, FileKind};
use pbx_lang::SourceFile;
use pbx_runtime::sim::{self, Keys, SimNetwork};
use pbx_runtime::{Config, Mode, Routed, Runtime, Server, ServerOptions};
use tokio::io::AsyncBufReadExt;

use crate::loader::FolderModules;
use crate::report;
use crate::timeline::Timeline;

/// How long a run may last (in its own time) before its tasks are stopped.
const LONGEST_RUN: Duration = Duration::from_secs(2 * 3600);

/// What `pbxd run` was asked.
pub struct RunArgs {
    pub target: String,
    pub entry: String,
    /// For a file: the account it runs for. For an address: the caller.
    pub as_account: Option<String>,
    pub dtmf: Option<String>,
    pub config: Option<PathBuf>,
    pub set: Vec<String>,
}

/// Reads the configuration: `--config`, else `./pbxd.toml` if there is one,
/// else the built-in defaults; then the `--set` overrides. Without a stock
/// folder, the stock environment built into pbxd serves (`stock`).
pub fn load_config(path: Option<&Path>, set: &[String]) -> Result<Config, String> {
    let default = Path::new("pbxd.toml");
    let mut config = match path {
        Some(path) => Config::load(path, set),
        None if default.exists() => Config::load(default, set),
        None => Config::parse("", "built-in defaults", set),
    }
    .map_err(|error| error.to_string())?;
    if let Some(note) = crate::stock::provide(&mut config)? {
        eprintln!("note: {note}");
    }
    Ok(config)
}

pub fn run(args: RunArgs) -> ExitCode {
    let config = match load_config(args.config.as_deref(), &args.set) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let script = match args.dtmf.as_deref().map(sim::parse_script).transpose() {
        Ok(script) => script,
        Err(error) => {
            eprintln!("error: --dtmf: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Scripted keys (or no terminal to type on) run in virtual time.
    let live = script.is_none() && std::io::stdin().is_terminal();
    let phones = match config
        .simulation
        .phones
        .iter()
        .map(|(name, behaviour)| sim::Phone::parse(behaviour).map(|phone| (name.clone(), phone)))
        .collect::<Result<_, _>>()
    {
        Ok(phones) => phones,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let timeline = Arc::new(Timeline::new());
    let options = ServerOptions {
        observer: timeline.clone(),
        mode: Mode::Simulated { virtual_time: !live },
    };
    let server = match Server::start(config, options, |_| Ok(Arc::new(SimNetwork::with_phones(phones)))) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = server.block_on(session(
        &args,
        server.runtime(),
        server.network(),
        script,
        live,
        &timeline,
    ));
    server.shutdown(std::time::Duration::ZERO);
    code
}

async fn session(
    args: &RunArgs,
    runtime: &Runtime,
    network: &SimNetwork,
    script: Option<Vec<sim::Key>>,
    live: bool,
    timeline: &Timeline,
) -> ExitCode {
    timeline.begin();
    let keys = match script {
        Some(script) => Keys::Script(script),
        None if live => {
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            tokio::task::spawn_local(read_keys(sender));
            eprintln!("type DTMF keys (0-9 * # A-D) and Enter; end of input hangs up");
            Keys::Live(receiver)
        }
        None => Keys::Script(Vec::new()),
    };
    let path = Path::new(&args.target);
    let is_file = path.exists() || args.target.ends_with(".sppr");
    let started = if is_file {
        start_file(runtime, network, args, keys)
    } else {
        let caller = args.as_account.clone().unwrap_or_else(|| "caller@sim".into());
        let leg = network.incoming(&caller, &args.target, keys);
        runtime
            .call_address(leg, &args.target)
            .map_err(|error| error.to_string())
    };
    match started {
        Ok(Routed::Task(_) | Routed::Ringing) => {}
        Ok(Routed::Rejected(code)) => {
            println!("{:8.3}  call rejected with {code}", 0.0);
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    }
    if tokio::time::timeout(LONGEST_RUN, runtime.registry.idle())
        .await
        .is_err()
    {
        runtime.registry.stop_all();
        runtime.registry.idle().await;
    }
    let errors = timeline.take_errors();
    report::print_all(&errors);
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Compiles a program file and starts it on a simulated call.
fn start_file(runtime: &Runtime, network: &SimNetwork, args: &RunArgs, keys: Keys) -> Result<Routed, String> {
    let path = Path::new(&args.target);
    let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let file = Arc::new(SourceFile::new(path.display().to_string(), text));
    let program =
        compile_as(file, FileKind::Program, &FolderModules::beside(path)).map_err(|diagnostics| {
            report::print_all(&diagnostics);
            format!("{} does not compile", path.display())
        })?;
    let account = match &args.as_account {
        Some(address) => {
            let (user, domain) = address
                .split_once('@')
                .ok_or_else(|| format!("--as {address}: expected account@domain"))?;
            runtime
                .directory
                .find(user, domain)
                .ok_or_else(|| format!("--as {address}: no such account in the configuration"))?
        }
        None => runtime
            .directory
            .first_domain()
            .and_then(|domain| domain.find(pbx_runtime::directory::PBX_ACCOUNT))
            .ok_or("no account to run for: configure a domain or pass --as account@domain")?,
    };
    let shown = path
        .file_name()
        .map_or_else(|| args.target.clone(), |name| name.to_string_lossy().into_owned());
    let leg = network.incoming("caller@sim", &account.address(), keys);
    runtime
        .start_program(program, shown, &args.entry, account, Some(leg), Vec::new())
        .map(Routed::Task)
        .map_err(|error| error.to_string())
}

/// Reads lines from the terminal; each DTMF symbol typed is a key.
async fn read_keys(sender: tokio::sync::mpsc::UnboundedSender<Option<char>>) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        for symbol in line
            .chars()
            .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D' | 'a'..='d'))
        {
            let _ = sender.send(Some(symbol.to_ascii_uppercase()));
        }
    }
    let _ = sender.send(None);
}
