//! `pbxd`: the PBX daemon and its tools. This binary only parses the
//! command line and hands over to the libraries.

mod check;
mod loader;
mod report;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also print the compiled bytecode (for pbxd's developers).
        #[arg(long, hide = true)]
        bytecode: bool,
    },
    /// Run a program and print each SysLog line.
    Run {
        /// The program (.sppr).
        file: PathBuf,
        /// The entry to start.
        #[arg(long, default_value = "Main")]
        entry: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { paths, bytecode } => check::check(&paths, bytecode),
        Command::Run { file, entry } => run::run(&file, &entry),
    }
}
