//! `pbxd run FILE`: runs a program; each SysLog line goes to stdout.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use pbx_lang::builtins::{Ctx, HostFn};
use pbx_lang::bytecode::Program;
use pbx_lang::value::text::log_text;
use pbx_lang::value::OpError;
use pbx_lang::{compile, Host, HostOutcome, SourceFile, Step, TaskOptions, Value, Vm};

use crate::loader::FolderModules;
use crate::report;

/// How many instructions a slice runs before the limits are checked.
const SLICE: u32 = 20_000;

/// Runs entry `entry` of the program in `path`.
pub fn run(path: &Path, entry: &str) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("error: {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let file = Arc::new(SourceFile::new(path.display().to_string(), text));
    let program = match compile(file, &FolderModules::beside(path)) {
        Ok(program) => program,
        Err(diagnostics) => {
            report::print_all(&diagnostics);
            return ExitCode::FAILURE;
        }
    };
    let Some(mut vm) = Vm::start(program.clone(), entry, Vec::new(), TaskOptions::default()) else {
        eprintln!("error: {} has no entry `{entry}`", path.display());
        return ExitCode::FAILURE;
    };
    let mut host = TerminalHost {
        out: std::io::stdout().lock(),
    };
    loop {
        match vm.run(&mut host, SLICE) {
            Step::Yield => continue,
            Step::Finished => break,
            Step::Wait(never) => match never {},
            Step::Failed(diagnostic) => {
                let _ = host.out.flush();
                report::print_all(&[*diagnostic]);
                return ExitCode::FAILURE;
            }
        }
    }
    let _ = host.out.flush();
    ExitCode::SUCCESS
}

/// The host of a program run from the terminal without a call: SysLog
/// prints; built-ins that need a call or the server are errors.
struct TerminalHost<W: Write> {
    out: W,
}

/// An operation that cannot happen: nothing here waits.
enum Never {}

impl<W: Write> Host for TerminalHost<W> {
    type Op = Never;

    fn call(&mut self, function: HostFn, args: &[Value], _: &mut Ctx<'_>) -> HostOutcome<Never> {
        match function {
            HostFn::SysLog => {
                let line = match log_text(args.first().unwrap_or(&Value::Null)) {
                    Ok(line) => line,
                    Err(error) => return HostOutcome::Fail(error),
                };
                let _ = writeln!(self.out, "{line}");
                HostOutcome::Done(Value::Null)
            }
            other => HostOutcome::Fail(
                OpError::call(format!("`{}` needs a call or the server", other.name())).with_help(
                    "`pbxd run` runs programs without a call; `pbxd serve` runs them for real calls",
                ),
            ),
        }
    }

    fn spawn(&mut self, _: &Arc<Program>, _: u16, _: Vec<Value>) -> Result<Value, OpError> {
        Err(OpError::call("`spawn` needs the task runtime")
            .with_help("`pbxd run` runs a single task; `pbxd serve` runs many"))
    }
}
