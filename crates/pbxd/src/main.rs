//! `pbxd`: the PBX daemon and its tools. This binary only parses the
//! command line and hands over to the libraries.

mod check;
mod loader;
mod report;
mod run;
mod serve;
mod stock;
mod timeline;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc rather than the C library's allocator: a call makes many small
/// allocations on one thread and frees some on another, and glibc's
/// per-thread arenas keep more of that memory (measured: 37 against 32 KB
/// per concurrent call under W1 at 600 calls/s, BENCHMARKS.md).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// pbxd: a PBX whose call logic is written in a CG/PL-like script language.
#[derive(Parser, Debug)]
#[command(name = "pbxd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and compile programs (.sppr) and modules (.sppi); print every
    /// error. Folders are searched for such files.
    Check {
        /// Files or folders.
        #[arg(required_unless_present = "config")]
        paths: Vec<PathBuf>,
        /// Also check a configuration file, as `serve` would read it, and
        /// every program of its environments, each domain's as it sees
        /// them (before a restart).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides a configuration key, as for `serve`.
        #[arg(long = "set", value_name = "KEY=VALUE", requires = "config")]
        set: Vec<String>,
        /// Also print the compiled bytecode (for pbxd's developers).
        #[arg(long, hide = true)]
        bytecode: bool,
    },
    /// Serve: answer phones and trunks over SIP on `sip.listen`, run the
    /// programs calls are addressed to, until Ctrl-C.
    Serve {
        /// The configuration file (default: ./pbxd.toml if present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides a configuration key: --set sip.listen=0.0.0.0:5060.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Run a program on a simulated incoming call and print a timeline of
    /// what it plays, reads, sends and logs.
    Run {
        /// A program file (.sppr), or an address such as
        /// callback#ivanov@example.com or 200@example.com.
        target: String,
        /// The entry to start (for a file).
        #[arg(long, default_value = "Main")]
        entry: String,
        /// For a file: the account it runs for (default: the first domain's
        /// pbx account). For an address: who calls.
        #[arg(long = "as", value_name = "ACCOUNT@DOMAIN")]
        as_account: Option<String>,
        /// The caller's keys: DTMF symbols, `,` waits a second. Without it,
        /// on a terminal, keys typed (then Enter) are sent.
        #[arg(long)]
        dtmf: Option<String>,
        /// The configuration file (default: ./pbxd.toml if present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides a configuration key: --set smtp.relay=127.0.0.1:2525.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            paths,
            config,
            set,
            bytecode,
        } => {
            let configuration = match config {
                Some(config) => check::check_config(&config, &set),
                None => ExitCode::SUCCESS,
            };
            if paths.is_empty() {
                return configuration;
            }
            let files = check::check(&paths, bytecode);
            if configuration == ExitCode::SUCCESS {
                files
            } else {
                configuration
            }
        }
        Command::Serve { config, set } => serve::serve(serve::ServeArgs { config, set }),
        Command::Run {
            target,
            entry,
            as_account,
            dtmf,
            config,
            set,
        } => run::run(run::RunArgs {
            target,
            entry,
            as_account,
            dtmf,
            config,
            set,
        }),
    }
}
