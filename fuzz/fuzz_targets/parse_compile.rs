//! Any text given to the parser and compiler yields a program or
//! diagnostics, never a panic, a hang or a stack overflow. When it compiles,
//! a short run (with small limits) must not panic either.

#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pbx_lang::builtins::{Ctx, HostFn};
use pbx_lang::bytecode::Program;
use pbx_lang::compile::NoModules;
use pbx_lang::value::time::FrozenClock;
use pbx_lang::value::OpError;
use pbx_lang::{compile, Host, HostOutcome, Limits, SourceFile, Step, TaskOptions, Value, Vm};

struct QuietHost;

impl Host for QuietHost {
    type Op = ();

    fn call(&mut self, _: HostFn, _: &[Value], _: &mut Ctx<'_>) -> HostOutcome<()> {
        HostOutcome::Done(Value::Null)
    }

    fn spawn(&mut self, _: &Arc<Program>, _: u16, _: Vec<Value>) -> Result<Value, OpError> {
        Ok(Value::Null)
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let file = Arc::new(SourceFile::new("fuzz.sppr", text.as_ref()));
    let Ok(program) = compile(file, &NoModules) else { return };
    let options = TaskOptions {
        limits: Limits {
            max_compute: Duration::from_millis(20),
            max_depth: 100,
            max_bytes: 1 << 20,
            max_instructions: Some(100_000),
        },
        clock: Arc::new(FrozenClock(0)),
        zone: jiff_utc(),
    };
    let Some(mut vm) = Vm::start(program, "Main", Vec::new(), options) else { return };
    for _ in 0..1000 {
        match vm.run(&mut QuietHost, 1000) {
            Step::Yield => continue,
            Step::Wait(()) => vm.resume(Value::Null),
            Step::Finished | Step::Failed(_) => break,
        }
    }
});

fn jiff_utc() -> pbx_lang::value::time::TimeZone {
    pbx_lang::value::time::TimeZone::UTC
}
