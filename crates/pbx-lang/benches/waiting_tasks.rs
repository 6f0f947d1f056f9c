//! How much memory a task costs while it waits (DESIGN.md §1: "a few
//! kilobytes"): starts 100,000 tasks of the callback program's shape, runs
//! each until it waits in ReadInput, and prints the process's resident
//! memory per waiting task, then the time to resume them all.
//!
//! `cargo bench -p pbx-lang --bench waiting_tasks`

use std::sync::Arc;
use std::time::Instant;

use pbx_lang::builtins::{Ctx, HostFn};
use pbx_lang::bytecode::Program;
use pbx_lang::compile::NoModules;
use pbx_lang::value::OpError;
use pbx_lang::{compile, Host, HostOutcome, SourceFile, Step, TaskOptions, Value, Vm};

const TASKS: usize = 100_000;

const PROGRAM: &str = r##"
entry Main is
  accumulator = "";
  loop
    input = ReadInput(20);
    exitif not IsString(input) or input == "#";
    accumulator = accumulator + input;
  end loop;
  SysLog("Call back: " + accumulator);
end;
"##;

struct Waits;

impl Host for Waits {
    type Op = ();

    fn call(&mut self, function: HostFn, _: &[Value], _: &mut Ctx<'_>) -> HostOutcome<()> {
        match function {
            HostFn::ReadInput => HostOutcome::Wait(()),
            _ => HostOutcome::Done(Value::Null),
        }
    }

    fn spawn(&mut self, _: &Arc<Program>, _: u16, _: Vec<Value>) -> Result<Value, OpError> {
        Ok(Value::Null)
    }
}

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn until_wait(vm: &mut Vm) -> bool {
    loop {
        match vm.run(&mut Waits, 10_000) {
            Step::Yield => continue,
            Step::Wait(()) => return true,
            Step::Finished => return false,
            Step::Failed(diagnostic) => panic!("{}", diagnostic.one_line()),
        }
    }
}

fn main() {
    let program = compile(
        Arc::new(SourceFile::new("callback-shape.sppr", PROGRAM)),
        &NoModules,
    )
    .expect("the program compiles");
    let options = TaskOptions::default();
    let before = resident_bytes();
    let started = Instant::now();
    let mut tasks: Vec<Vm> = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        let mut vm = Vm::start(program.clone(), "Main", Vec::new(), options.clone()).expect("entry");
        assert!(until_wait(&mut vm));
        tasks.push(vm);
    }
    let start_time = started.elapsed();
    let after = resident_bytes();
    let started = Instant::now();
    for vm in &mut tasks {
        for digit in ["5", "5", "5", "1", "2", "3", "4"] {
            vm.resume(Value::str(digit));
            assert!(until_wait(vm));
        }
        vm.resume(Value::str("#"));
        assert!(!until_wait(vm));
    }
    let resume_time = started.elapsed();
    println!(
        "{TASKS} waiting tasks: {} bytes resident each; started in {:.0} ns each; \
         8 digits resumed in {:.0} ns per task",
        (after.saturating_sub(before)) / TASKS,
        start_time.as_nanos() as f64 / TASKS as f64,
        resume_time.as_nanos() as f64 / TASKS as f64
    );
}
