//! The VM stops at built-ins that wait and resumes later (DESIGN.md §1):
//! a task is data, so many can wait at once, and each continues where it
//! stopped with the operation's result as the built-in's value.

use std::sync::Arc;

use pbx_lang::builtins::{Ctx, HostFn};
use pbx_lang::bytecode::Program;
use pbx_lang::compile::NoModules;
use pbx_lang::value::text::log_text;
use pbx_lang::value::OpError;
use pbx_lang::{compile, Host, HostOutcome, SourceFile, Step, TaskOptions, Value, Vm};

/// What a task asked for when it stopped.
#[derive(Debug, PartialEq)]
enum Op {
    ReadInput(i64),
    PlayFile(String),
}

/// A host whose ReadInput and PlayFile wait; SysLog collects lines.
#[derive(Default)]
struct WaitingHost {
    log: Vec<String>,
}

impl Host for WaitingHost {
    type Op = Op;

    fn call(&mut self, function: HostFn, args: &[Value], _: &mut Ctx<'_>) -> HostOutcome<Op> {
        match function {
            HostFn::ReadInput => HostOutcome::Wait(Op::ReadInput(args[0].as_num().unwrap_or(0))),
            HostFn::PlayFile => HostOutcome::Wait(Op::PlayFile(log_text(&args[0]).unwrap_or_default())),
            HostFn::SysLog => {
                self.log.push(log_text(&args[0]).unwrap_or_default());
                HostOutcome::Done(Value::Null)
            }
            other => HostOutcome::Fail(OpError::call(format!(
                "{} is not part of this test",
                other.name()
            ))),
        }
    }

    fn spawn(&mut self, _: &Arc<Program>, _: u16, _: Vec<Value>) -> Result<Value, OpError> {
        Err(OpError::call("no spawn here"))
    }
}

const COLLECTOR: &str = r##"
// Collects digits until "#", the way callback.sppr does, deep in a call.
function Collect(prompt) is
  PlayFile(prompt);
  number = "";
  loop
    input = ReadInput(20);
    exitif not IsString(input) or input == "#";
    number = number + input;
  end loop;
  return number;
end;

entry Main is
  SysLog("got " + Collect("CallbackNumber"));
end;
"##;

fn program() -> Arc<Program> {
    compile(Arc::new(SourceFile::new("collector.sppr", COLLECTOR)), &NoModules).expect("compiles")
}

/// Runs until the task waits or finishes.
fn run_until_wait(vm: &mut Vm, host: &mut WaitingHost) -> Option<Op> {
    loop {
        match vm.run(host, 1000) {
            Step::Yield => continue,
            Step::Wait(op) => return Some(op),
            Step::Finished => return None,
            Step::Failed(diagnostic) => panic!("{}", diagnostic.one_line()),
        }
    }
}

#[test]
fn a_task_waits_and_resumes_with_the_result() {
    let mut host = WaitingHost::default();
    let mut vm = Vm::start(program(), "Main", Vec::new(), TaskOptions::default()).expect("entry");
    assert_eq!(
        run_until_wait(&mut vm, &mut host),
        Some(Op::PlayFile("CallbackNumber".into()))
    );
    assert!(vm.is_waiting());
    vm.resume(Value::Null);
    for digit in ["5", "5", "1"] {
        assert_eq!(run_until_wait(&mut vm, &mut host), Some(Op::ReadInput(20)));
        vm.resume(Value::str(digit));
    }
    assert_eq!(run_until_wait(&mut vm, &mut host), Some(Op::ReadInput(20)));
    vm.resume(Value::str("#"));
    assert_eq!(run_until_wait(&mut vm, &mut host), None);
    assert!(vm.is_finished());
    assert_eq!(host.log, vec!["got 551".to_string()]);
}

#[test]
fn running_a_waiting_task_without_its_result_is_refused() {
    let mut host = WaitingHost::default();
    let mut vm = Vm::start(program(), "Main", Vec::new(), TaskOptions::default()).expect("entry");
    assert!(run_until_wait(&mut vm, &mut host).is_some());
    assert!(matches!(vm.run(&mut host, 1000), Step::Failed(_)));
}

#[test]
fn ten_thousand_tasks_wait_at_once_and_each_gets_its_own_input() {
    let program = program();
    let mut host = WaitingHost::default();
    let mut tasks: Vec<Vm> = (0..10_000)
        .map(|_| Vm::start(program.clone(), "Main", Vec::new(), TaskOptions::default()).expect("entry"))
        .collect();
    for vm in &mut tasks {
        assert!(run_until_wait(vm, &mut host).is_some());
        vm.resume(Value::Null);
        assert_eq!(run_until_wait(vm, &mut host), Some(Op::ReadInput(20)));
    }
    // Every task is waiting in ReadInput now; feed each its own digit.
    for (index, vm) in tasks.iter_mut().enumerate() {
        vm.resume(Value::from((index % 10).to_string()));
        assert_eq!(run_until_wait(vm, &mut host), Some(Op::ReadInput(20)));
        vm.resume(Value::str("#"));
        assert_eq!(run_until_wait(vm, &mut host), None);
    }
    assert_eq!(host.log.len(), 10_000);
    assert_eq!(host.log[7], "got 7");
    assert_eq!(host.log[9_999], "got 9");
}

#[test]
fn a_disconnect_event_ends_the_loop() {
    // ReadInput returns events as dictionaries; the program leaves on one.
    let mut host = WaitingHost::default();
    let mut vm = Vm::start(program(), "Main", Vec::new(), TaskOptions::default()).expect("entry");
    run_until_wait(&mut vm, &mut host);
    vm.resume(Value::Null);
    run_until_wait(&mut vm, &mut host);
    vm.resume(Value::str("4"));
    run_until_wait(&mut vm, &mut host);
    let event = pbx_lang::value::Dict::new();
    event
        .set(
            pbx_lang::value::Bytes::from("what"),
            Value::str(pbx_lang::builtins::events::DISCONNECT),
        )
        .expect("set");
    vm.resume(Value::Dict(event));
    assert_eq!(run_until_wait(&mut vm, &mut host), None);
    assert_eq!(host.log, vec!["got 4".to_string()]);
}
