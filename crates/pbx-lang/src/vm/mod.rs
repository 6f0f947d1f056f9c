//! Stage four: running bytecode.
//!
//! A [`Vm`] is one task's state: registers, frames, file-wide variables and
//! `Vars()`. Nothing of it lives on the Rust stack between instructions, so
//! script recursion never recurses in Rust and a task can stop at any
//! built-in that waits and be resumed later:
//!
//! * [`Vm::run`] executes up to a budget and returns a [`Step`]: finished,
//!   out of budget (call `run` again, after letting others run), failed, or
//!   waiting on an operation that a [`Host`] built-in described;
//! * the runtime performs the operation and calls [`Vm::resume`] with its
//!   result, which becomes the built-in's return value.
//!
//! Values use `Rc`, so a `Vm` is not `Send`: the runtime keeps each task on
//! the thread that started it and moves only plain data between tasks.

mod exec;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::builtins::{Ctx, HostFn, TaskZone};
use crate::bytecode::Program;
use crate::diagnostic::{Diagnostic, ErrorKind, StackEntry};
use crate::value::time::{system_clock, Clock};
use crate::value::{meter, Array, Bytes, Dict, OpError, Value};

/// Per-task limits (CGPL.md §0.19).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest a task may compute without waiting (wall time).
    pub max_compute: Duration,
    /// Deepest nesting of calls.
    pub max_depth: usize,
    /// Most bytes the task's values may hold.
    pub max_bytes: usize,
    /// Most instructions over the task's life, if limited. Counted at
    /// calls and loop iterations, so approximate.
    pub max_instructions: Option<u64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_compute: Duration::from_secs(2),
            max_depth: 1000,
            max_bytes: 64 << 20,
            max_instructions: None,
        }
    }
}

/// How a task is set up.
#[derive(Clone, Debug)]
pub struct TaskOptions {
    pub limits: Limits,
    pub clock: Arc<dyn Clock>,
    /// The server's time zone, which `LocalTime()` uses until the task
    /// calls `SetTimeZone`.
    pub zone: jiff::tz::TimeZone,
}

impl Default for TaskOptions {
    fn default() -> TaskOptions {
        TaskOptions {
            limits: Limits::default(),
            clock: system_clock(),
            zone: jiff::tz::TimeZone::system(),
        }
    }
}

/// What a host built-in did.
pub enum HostOutcome<Op> {
    /// Finished at once with this value.
    Done(Value),
    /// Must wait: the runtime performs `Op`, then calls [`Vm::resume`].
    Wait(Op),
    /// Refused; the task ends with this error.
    Fail(OpError),
}

/// What the VM needs from the server: the built-ins bound to calls, media,
/// mail and tasks. The language crate declares them (`HostFn`); the
/// runtime implements them.
pub trait Host {
    /// The description of an operation to wait on.
    type Op;

    /// Carries out built-in `function` with `args`.
    fn call(&mut self, function: HostFn, args: &[Value], task: &mut Ctx<'_>) -> HostOutcome<Self::Op>;

    /// Starts entry `entry` of `program` as a new task with `args` as its
    /// start parameters; returns the new task's handle (or null).
    fn spawn(&mut self, program: &Arc<Program>, entry: u16, args: Vec<Value>) -> Result<Value, OpError>;
}

/// The result of [`Vm::run`].
#[derive(Debug)]
pub enum Step<Op> {
    /// The entry returned or `stop` was executed.
    Finished,
    /// The budget ran out; call `run` again.
    Yield,
    /// Waiting on `Op`; call `resume` with its result, then `run`.
    Wait(Op),
    /// A run-time error ended the task.
    Failed(Box<Diagnostic>),
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    function: u16,
    /// The next instruction.
    pc: u32,
    /// Absolute index of register 0.
    base: u32,
    /// Absolute index of the register that receives the return value.
    ret: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ready,
    /// Waiting for `resume`; the result goes to this absolute register.
    Waiting(u32),
    Finished,
}

/// One task's execution state.
pub struct Vm {
    program: Arc<Program>,
    registers: Vec<Value>,
    frames: Vec<Frame>,
    globals: Vec<Value>,
    vars: Dict,
    zone: TaskZone,
    clock: Arc<dyn Clock>,
    limits: Limits,
    state: State,
    /// Computing time since the task last waited.
    compute: Duration,
    /// Instructions executed (approximately) over the task's life.
    instructions: u64,
    /// Bytes held by the task's values, as measured by the meter.
    bytes: i64,
    /// Where the last slice ran out of budget: one past the loop's jump.
    /// A limit noticed then is reported there rather than at the loop's top.
    yielded_at: u32,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("frames", &self.frames.len())
            .field("state", &self.state)
            .finish()
    }
}

/// What the interpreter loop stopped for.
enum Exit<Op> {
    Finished,
    Yield,
    Wait(Op),
    Error(OpError),
}

impl Vm {
    /// A task that will run entry `entry` of `program`. A non-null
    /// `start_parameter` is stored as `Vars().startParameter`.
    pub fn new(program: Arc<Program>, entry: u16, start_parameter: Value, options: TaskOptions) -> Vm {
        let vars = Dict::new();
        if !start_parameter.is_null() {
            // A fresh dictionary cannot be inside the parameter.
            let _ = vars.set(Bytes::from("startParameter"), start_parameter);
        }
        let registers = usize::from(program.functions()[usize::from(entry)].registers);
        let globals = vec![Value::Null; usize::from(program.globals())];
        Vm {
            registers: vec![Value::Null; registers.max(1)],
            frames: vec![Frame {
                function: entry,
                pc: 0,
                base: 0,
                ret: 0,
            }],
            globals,
            vars,
            zone: TaskZone::server(options.zone),
            clock: options.clock,
            limits: options.limits,
            state: State::Ready,
            compute: Duration::ZERO,
            instructions: 0,
            bytes: 0,
            yielded_at: 0,
            program,
        }
    }

    /// A task running entry `name` (e.g. `Main`) with start parameters.
    pub fn start(
        program: Arc<Program>,
        name: &str,
        start_parameters: Vec<Value>,
        options: TaskOptions,
    ) -> Option<Vm> {
        let entry = program.entry(name)?;
        let parameter = if start_parameters.is_empty() {
            Value::Null
        } else {
            Value::Array(Array::from_vec(start_parameters))
        };
        Some(Vm::new(program, entry, parameter, options))
    }

    /// The program this task runs.
    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// The task's `Vars()` dictionary.
    pub fn vars(&self) -> &Dict {
        &self.vars
    }

    /// Whether the task has finished (or failed).
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// Whether the task waits for [`Vm::resume`].
    pub fn is_waiting(&self) -> bool {
        matches!(self.state, State::Waiting(_))
    }

    /// Runs until finished, out of `budget`, failed or waiting.
    pub fn run<H: Host>(&mut self, host: &mut H, budget: u32) -> Step<H::Op> {
        match self.state {
            State::Finished => return Step::Finished,
            State::Waiting(_) => {
                return Step::Failed(Box::new(Diagnostic::without_place(
                    ErrorKind::Internal,
                    "the task was run while it waits for an operation",
                )))
            }
            State::Ready => {}
        }
        let started = Instant::now();
        self.yielded_at = 0;
        let live_at_start = meter::live();
        let allowance = self.limits.max_bytes as i64 - self.bytes;
        let previous_allowance = meter::set_allowance(live_at_start.saturating_add(allowance));
        let exit = self.execute(host, i64::from(budget));
        self.bytes += meter::live() - live_at_start;
        meter::set_allowance(previous_allowance);
        self.compute += started.elapsed();
        match exit {
            Exit::Finished => {
                self.finish();
                Step::Finished
            }
            Exit::Wait(op) => Step::Wait(op),
            Exit::Error(error) => Step::Failed(Box::new(self.fail(error))),
            Exit::Yield => {
                let over_time = self.compute > self.limits.max_compute;
                let over_count = self
                    .limits
                    .max_instructions
                    .is_some_and(|max| self.instructions > max);
                if over_time || over_count {
                    if let Some(frame) = self.frames.last_mut() {
                        if self.yielded_at > 0 {
                            frame.pc = self.yielded_at;
                        }
                    }
                }
                if over_time {
                    let error = OpError {
                        kind: ErrorKind::Limit,
                        message: format!(
                            "the task computed for more than {} without waiting",
                            format_duration(self.limits.max_compute)
                        ),
                        help: Some("a loop that never ends? Loops that wait (ReadInput, PlayFile…) may run for as long as the call lasts".into()),
                    };
                    return Step::Failed(Box::new(self.fail(error)));
                }
                if let (true, Some(max)) = (over_count, self.limits.max_instructions) {
                    {
                        let error = OpError {
                            kind: ErrorKind::Limit,
                            message: format!("the task ran more than {max} instructions"),
                            help: None,
                        };
                        return Step::Failed(Box::new(self.fail(error)));
                    }
                }
                Step::Yield
            }
        }
    }

    /// Gives the waited-for operation's result to the task; it becomes the
    /// return value of the built-in that waited.
    pub fn resume(&mut self, value: Value) {
        if let State::Waiting(register) = self.state {
            if let Some(slot) = self.registers.get_mut(register as usize) {
                *slot = value;
            }
            self.state = State::Ready;
            self.compute = Duration::ZERO;
        }
    }

    /// Ends the task with an error while it waits (e.g. the operation
    /// itself failed in a way the script cannot handle).
    pub fn fail_waiting(&mut self, error: OpError) -> Diagnostic {
        self.fail(error)
    }

    fn finish(&mut self) {
        self.state = State::Finished;
        self.frames.clear();
        self.registers.clear();
        self.globals.clear();
    }

    /// Builds the diagnostic for a run-time error at the current position.
    fn fail(&mut self, error: OpError) -> Diagnostic {
        let stack = self.stack();
        let place = self.frames.last().map(|frame| self.position(frame));
        let mut diagnostic = match place {
            Some((file, span)) => {
                let program = &self.program;
                Diagnostic::new(
                    error.kind,
                    &program.files()[usize::from(file)],
                    span,
                    error.message,
                )
            }
            None => Diagnostic::without_place(error.kind, error.message),
        };
        diagnostic.label = String::from("here");
        diagnostic.help = error.help;
        diagnostic.stack = stack;
        self.finish();
        diagnostic
    }

    /// File and span of the instruction a frame is executing.
    fn position(&self, frame: &Frame) -> (u16, crate::source::Span) {
        let function = &self.program.functions()[usize::from(frame.function)];
        let index = (frame.pc as usize)
            .saturating_sub(1)
            .min(function.spans.len().saturating_sub(1));
        (
            function.file,
            function.spans.get(index).copied().unwrap_or_default(),
        )
    }

    /// The running sections, innermost first.
    fn stack(&self) -> Vec<StackEntry> {
        self.frames
            .iter()
            .rev()
            .map(|frame| {
                let (file, span) = self.position(frame);
                let function = &self.program.functions()[usize::from(frame.function)];
                StackEntry {
                    section: function.title.clone(),
                    location: self.program.files()[usize::from(file)].location(span.start),
                }
            })
            .collect()
    }
}

/// `64 MB`, `1000000 bytes`.
pub(crate) fn format_bytes(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}
