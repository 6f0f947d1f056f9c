//! The interpreter loop.
//!
//! Hot paths (numbers, registers, calls) are handled inline; everything
//! else goes through `value::ops`. Budget is charged at calls and backward
//! jumps, the only ways to run long.

use std::mem;
use std::sync::Arc;

use super::{Exit, Frame, Host, HostOutcome, State, Vm};
use crate::builtins::{self, Binding, Ctx, VmFn};
use crate::bytecode::{Constant, Function, Instr, Program};
use crate::diagnostic::ErrorKind;
use crate::syntax::ast::SectionKind;
use crate::value::{meter, ops, OpError, Value};

/// How a built-in call left the running frame.
enum BuiltinExit<Op> {
    /// It waits on an operation.
    Wait(Op),
    /// `FuncCall`/`ProcCall` entered a new frame.
    Entered,
}

#[inline(never)]
fn limit_error(message: String) -> OpError {
    OpError {
        kind: ErrorKind::Limit,
        message,
        help: None,
    }
}

#[inline(never)]
fn over_memory(max_bytes: usize) -> OpError {
    limit_error(format!(
        "the task's values hold more than {}",
        super::format_bytes(max_bytes)
    ))
    .with_help("a string or array that keeps growing?")
}

/// Stores `value` in `slot`, skipping the drop of what was there when that
/// needs none (numbers and null, the common case in loops).
#[inline(always)]
fn store(slot: &mut Value, value: Value) {
    if slot.is_scalar() {
        // SAFETY: the old value owns no heap data, so overwriting it
        // without running its destructor leaks nothing.
        unsafe { std::ptr::write(slot, value) }
    } else {
        *slot = value;
    }
}

impl Vm {
    pub(super) fn execute<H: Host>(&mut self, host: &mut H, mut budget: i64) -> Exit<H::Op> {
        let initial_budget = budget;
        let program = self.program.clone();
        let functions: &[Function] = program.functions();

        // The running frame, kept in locals; written back to `self.frames`
        // only when leaving it.
        let mut function: &Function;
        let mut code_start: *const Instr;
        let mut ip: *const Instr;
        let mut base: usize;
        let mut regs: *mut Value;
        // SAFETY (`r!`, `w!`): `bytecode::verify` (the only way to make a
        // `Program`, which nothing changes afterwards) checked that every
        // register operand is below `function.registers`, and `enter` (or
        // `Vm::new`) made `registers.len() >= base + function.registers`
        // before the frame started. `regs` points at the frame's first
        // register and is derived again after anything that touches
        // `self.registers` by other means (calls, built-ins, returns).
        macro_rules! r {
            ($r:expr) => {
                unsafe { &*regs.add(usize::from($r)) }
            };
        }
        macro_rules! w {
            ($r:expr) => {
                unsafe { &mut *regs.add(usize::from($r)) }
            };
        }
        macro_rules! rederive {
            () => {
                // SAFETY: `base` is within `registers` (see above).
                regs = unsafe { self.registers.as_mut_ptr().add(base) };
            };
        }
        macro_rules! pc {
            () => {
                // SAFETY: `ip` points into the running function's code.
                unsafe { ip.offset_from(code_start) as usize }
            };
        }

        let exit = 'run: {
            macro_rules! load_frame {
                () => {{
                    let Some(frame) = self.frames.last() else {
                        break 'run Exit::Finished;
                    };
                    // SAFETY: frames only name verified functions.
                    function = unsafe { functions.get_unchecked(usize::from(frame.function)) };
                    code_start = function.code.as_ptr();
                    // SAFETY: a saved pc is within the function's code.
                    ip = unsafe { code_start.add(frame.pc as usize) };
                    base = frame.base as usize;
                    rederive!();
                }};
            }
            load_frame!();
            macro_rules! fail {
                ($error:expr) => {{
                    self.save_pc(pc!());
                    break 'run Exit::Error($error);
                }};
            }
            macro_rules! check {
                ($result:expr) => {
                    match $result {
                        Ok(value) => value,
                        Err(error) => fail!(error),
                    }
                };
            }
            macro_rules! check_memory {
                () => {
                    if meter::over_allowance() {
                        fail!(over_memory(self.limits.max_bytes));
                    }
                };
            }
            macro_rules! jump {
                ($target:expr) => {{
                    // SAFETY: verified: jump targets are within the code.
                    let target = unsafe { code_start.add(usize::from($target)) };
                    if target < ip {
                        // SAFETY: both point into the same code.
                        budget -= unsafe { ip.offset_from(target) } as i64;
                        if budget <= 0 {
                            self.yielded_at = pc!() as u32;
                            self.save_pc(usize::from($target));
                            break 'run Exit::Yield;
                        }
                    }
                    ip = target;
                }};
            }
            macro_rules! give_back {
                ($value:expr) => {{
                    let value = $value;
                    let Some(finished) = self.frames.pop() else {
                        break 'run Exit::Finished;
                    };
                    if self.frames.is_empty() {
                        break 'run Exit::Finished;
                    }
                    store(&mut self.registers[finished.ret as usize], value);
                    load_frame!();
                }};
            }

            loop {
                // SAFETY: verified code ends with an instruction that
                // leaves or jumps, and every jump target is in range.
                let instr = unsafe { *ip };
                // SAFETY: the instruction just read is not the last one
                // unless it leaves the frame, so `ip` stays in the code.
                ip = unsafe { ip.add(1) };
                match instr {
                    Instr::LoadNull { dst } => store(w!(dst), Value::Null),
                    Instr::LoadTrue { dst } => store(w!(dst), Value::yes()),
                    Instr::LoadInt { dst, value } => store(w!(dst), Value::Num(i64::from(value))),
                    Instr::LoadConst { dst, index } => {
                        // SAFETY: verified: the constant exists.
                        let value =
                            unsafe { function.constants.get_unchecked(usize::from(index)) }.to_value();
                        store(w!(dst), value);
                    }
                    Instr::Move { dst, src } => {
                        let value = r!(src).clone();
                        store(w!(dst), value);
                    }
                    Instr::LoadGlobal { dst, index } => {
                        let value = self.globals[usize::from(index)].clone();
                        store(w!(dst), value);
                    }
                    Instr::StoreGlobal { index, src } => {
                        let value = r!(src).clone();
                        self.globals[usize::from(index)] = value;
                    }

                    Instr::Add { dst, a, b } => {
                        if let (Value::Num(x), Value::Num(y)) = (r!(a), r!(b)) {
                            match x.checked_add(*y) {
                                Some(sum) => store(w!(dst), Value::Num(sum)),
                                None => fail!(check_overflow("+")),
                            }
                        } else {
                            // When the result replaces the left operand (`s = s + x`),
                            // take it out so a string held only here grows in place.
                            let left = if dst == a && a != b {
                                mem::take(w!(a))
                            } else {
                                r!(a).clone()
                            };
                            let sum = check!(ops::add(left, r!(b)));
                            *w!(dst) = sum;
                            check_memory!();
                        }
                    }
                    Instr::AddInt { dst, a, value } => {
                        if let Value::Num(x) = r!(a) {
                            match x.checked_add(i64::from(value)) {
                                Some(sum) => store(w!(dst), Value::Num(sum)),
                                None => fail!(OpError::arithmetic("number overflow")
                                    .with_help("numbers are 64-bit signed integers")),
                            }
                        } else {
                            let sum = check!(ops::add(r!(a).clone(), &Value::Num(i64::from(value))));
                            *w!(dst) = sum;
                        }
                    }
                    Instr::Sub { dst, a, b } => {
                        let result = match (r!(a), r!(b)) {
                            (Value::Num(x), Value::Num(y)) => match x.checked_sub(*y) {
                                Some(difference) => Value::Num(difference),
                                None => fail!(check_overflow("-")),
                            },
                            (x, y) => check!(ops::sub(x, y)),
                        };
                        store(w!(dst), result);
                    }
                    Instr::Mul { dst, a, b } => {
                        let result = match (r!(a), r!(b)) {
                            (Value::Num(x), Value::Num(y)) => match x.checked_mul(*y) {
                                Some(product) => Value::Num(product),
                                None => fail!(check_overflow("*")),
                            },
                            (x, y) => check!(ops::arithmetic('*', x, y)),
                        };
                        store(w!(dst), result);
                    }
                    Instr::Div { dst, a, b } => {
                        let result = match (r!(a), r!(b)) {
                            (Value::Num(x), Value::Num(y)) if *y != 0 && *y != -1 => Value::Num(x / y),
                            (x, y) => check!(ops::arithmetic('/', x, y)),
                        };
                        store(w!(dst), result);
                    }
                    Instr::Mod { dst, a, b } => {
                        let result = match (r!(a), r!(b)) {
                            (Value::Num(x), Value::Num(y)) if *y != 0 => Value::Num(x.wrapping_rem(*y)),
                            (x, y) => check!(ops::arithmetic('%', x, y)),
                        };
                        store(w!(dst), result);
                    }
                    Instr::Neg { dst, src } => {
                        let result = check!(ops::negate(r!(src)));
                        store(w!(dst), result);
                    }
                    Instr::Plus { dst, src } => {
                        let result = check!(ops::plus(r!(src)));
                        *w!(dst) = result;
                    }
                    Instr::Not { dst, src } => {
                        let result = Value::from_bool(r!(src).is_null());
                        *w!(dst) = result;
                    }
                    Instr::Xor { dst, a, b } => {
                        let result = Value::from_bool(r!(a).is_true() != r!(b).is_true());
                        *w!(dst) = result;
                    }
                    Instr::Truth { dst, src } => {
                        let result = Value::from_bool(r!(src).is_true());
                        *w!(dst) = result;
                    }

                    Instr::Eq { dst, a, b } => {
                        let equal = check!(equal(r!(a), r!(b)));
                        *w!(dst) = Value::from_bool(equal);
                    }
                    Instr::Ne { dst, a, b } => {
                        let equal = check!(equal(r!(a), r!(b)));
                        *w!(dst) = Value::from_bool(!equal);
                    }
                    Instr::Lt { dst, a, b } => {
                        let less = check!(less(r!(a), r!(b), false));
                        *w!(dst) = Value::from_bool(less);
                    }
                    Instr::Le { dst, a, b } => {
                        let less = check!(less(r!(a), r!(b), true));
                        *w!(dst) = Value::from_bool(less);
                    }

                    Instr::Jump { target } => jump!(target),
                    Instr::JumpIfFalse { cond, target } => {
                        if r!(cond).is_null() {
                            jump!(target);
                        }
                    }
                    Instr::JumpIfTrue { cond, target } => {
                        if r!(cond).is_true() {
                            jump!(target);
                        }
                    }
                    Instr::JumpIfNotLt { a, b, target } => {
                        if !check!(less(r!(a), r!(b), false)) {
                            jump!(target);
                        }
                    }
                    Instr::JumpIfNotLe { a, b, target } => {
                        if !check!(less(r!(a), r!(b), true)) {
                            jump!(target);
                        }
                    }
                    Instr::JumpIfNotEq { a, b, target } => {
                        if !check!(equal(r!(a), r!(b))) {
                            jump!(target);
                        }
                    }
                    Instr::JumpIfEq { a, b, target } => {
                        if check!(equal(r!(a), r!(b))) {
                            jump!(target);
                        }
                    }
                    Instr::JumpIfNotLtInt { a, value, target } => {
                        let less = match r!(a) {
                            Value::Num(x) => *x < i64::from(value),
                            other => check!(less(other, &Value::Num(i64::from(value)), false)),
                        };
                        if !less {
                            jump!(target);
                        }
                    }
                    Instr::JumpIfNotGtInt { a, value, target } => {
                        let greater = match r!(a) {
                            Value::Num(x) => *x > i64::from(value),
                            other => check!(less(&Value::Num(i64::from(value)), other, false)),
                        };
                        if !greater {
                            jump!(target);
                        }
                    }

                    Instr::JumpIfLt { a, b, target } => {
                        if check!(less(r!(a), r!(b), false)) {
                            jump!(target);
                        }
                    }
                    Instr::JumpIfLe { a, b, target } => {
                        if check!(less(r!(a), r!(b), true)) {
                            jump!(target);
                        }
                    }
                    Instr::JumpIfLtInt { a, value, target } => {
                        let less = match r!(a) {
                            Value::Num(x) => *x < i64::from(value),
                            other => check!(less(other, &Value::Num(i64::from(value)), false)),
                        };
                        if less {
                            jump!(target);
                        }
                    }
                    Instr::JumpIfGtInt { a, value, target } => {
                        let greater = match r!(a) {
                            Value::Num(x) => *x > i64::from(value),
                            other => check!(less(&Value::Num(i64::from(value)), other, false)),
                        };
                        if greater {
                            jump!(target);
                        }
                    }

                    Instr::GetIndex { dst, object, index } => {
                        let value = match (r!(object), r!(index)) {
                            (Value::Array(array), Value::Num(index)) => array.get(*index),
                            (object, index) => check!(get_index(object, index)),
                        };
                        store(w!(dst), value);
                    }
                    Instr::SetIndex { object, index, src } => {
                        let value = r!(src).clone();
                        if let (Value::Array(array), Value::Num(index)) = (r!(object), r!(index)) {
                            if let Err(error) = array.set(*index, value) {
                                fail!(error.into());
                            }
                        } else {
                            check!(set_index(r!(object), r!(index), value));
                        }
                        check_memory!();
                    }
                    Instr::GetKey { dst, object, key } => {
                        let key = check!(key_constant(function, key));
                        let value = check!(get_key(r!(object), key.as_slice()));
                        *w!(dst) = value;
                    }
                    Instr::SetKey { object, key, src } => {
                        let key = check!(key_constant(function, key)).clone();
                        let value = r!(src).clone();
                        check!(set_key(r!(object), key, value));
                        check_memory!();
                    }
                    Instr::GetKeyDyn { dst, object, key } => {
                        let value = check!(get_key(r!(object), check!(key_bytes(r!(key)))));
                        *w!(dst) = value;
                    }
                    Instr::SetKeyDyn { object, key, src } => {
                        let key = match r!(key) {
                            Value::Str(bytes) => bytes.clone(),
                            other => fail!(key_type_error(other)),
                        };
                        let value = r!(src).clone();
                        check!(set_key(r!(object), key, value));
                        check_memory!();
                    }

                    Instr::Call {
                        function: callee,
                        base: args,
                    } => {
                        // SAFETY: verified: the callee exists.
                        let callee_function = unsafe { functions.get_unchecked(usize::from(callee)) };
                        if self.frames.len() >= self.limits.max_depth {
                            fail!(depth_error(self.limits.max_depth));
                        }
                        self.save_pc(pc!());
                        let new_base = base + usize::from(args);
                        self.enter(callee_function, callee, new_base, new_base);
                        budget -= 1;
                        if budget <= 0 {
                            break 'run Exit::Yield;
                        }
                        function = callee_function;
                        code_start = function.code.as_ptr();
                        ip = code_start;
                        base = new_base;
                        rederive!();
                    }
                    Instr::CallBuiltin {
                        builtin,
                        base: args,
                        argc,
                    } => {
                        let first = base + usize::from(args);
                        match self.call_builtin(host, functions, builtin, first, usize::from(argc), pc!()) {
                            Ok(None) => {
                                rederive!();
                            }
                            Ok(Some(BuiltinExit::Wait(op))) => break 'run Exit::Wait(op),
                            Ok(Some(BuiltinExit::Entered)) => {
                                budget -= 1;
                                load_frame!();
                            }
                            Err(error) => fail!(error),
                        }
                    }
                    Instr::Spawn {
                        entry,
                        base: args,
                        argc,
                    } => {
                        let first = base + usize::from(args);
                        check!(self.spawn(host, &program, entry, first, usize::from(argc)));
                        rederive!();
                    }
                    Instr::Return { src } => give_back!(mem::take(w!(src))),
                    Instr::ReturnNull => give_back!(Value::Null),
                    Instr::Stop => break 'run Exit::Finished,
                }
            }
        };
        let used = (initial_budget - budget).max(0) as u64;
        self.instructions = self.instructions.saturating_add(used);
        exit
    }

    /// Calls a built-in whose arguments are in `first..first + argc`.
    #[inline(never)]
    fn call_builtin<H: Host>(
        &mut self,
        host: &mut H,
        functions: &[Function],
        builtin: u16,
        first: usize,
        argc: usize,
        pc: usize,
    ) -> Result<Option<BuiltinExit<H::Op>>, OpError> {
        let end = first + argc;
        let entry = builtins::get(builtin);
        let mut ctx = Ctx {
            clock: &*self.clock,
            zone: &mut self.zone,
            vars: &self.vars,
        };
        match entry.binding {
            Binding::Pure(run) => {
                let value = run(&mut ctx, &self.registers[first..end])?;
                self.clear_arguments(first, end, value);
            }
            Binding::Host(host_fn) => match host.call(host_fn, &self.registers[first..end], &mut ctx) {
                HostOutcome::Done(value) => self.clear_arguments(first, end, value),
                HostOutcome::Wait(op) => {
                    self.clear_arguments(first, end, Value::Null);
                    self.save_pc(pc);
                    self.state = State::Waiting(first as u32);
                    return Ok(Some(BuiltinExit::Wait(op)));
                }
                HostOutcome::Fail(error) => return Err(error),
            },
            Binding::Vm(call) => {
                self.dynamic_call(functions, call, first, end, pc)?;
                return Ok(Some(BuiltinExit::Entered));
            }
        }
        if meter::over_allowance() {
            return Err(over_memory(self.limits.max_bytes));
        }
        Ok(None)
    }

    /// `spawn Entry(args)` with the arguments in `first..first + argc`.
    #[inline(never)]
    fn spawn<H: Host>(
        &mut self,
        host: &mut H,
        program: &Arc<Program>,
        entry: u16,
        first: usize,
        argc: usize,
    ) -> Result<(), OpError> {
        let end = first + argc;
        let arguments: Vec<Value> = self.registers[first..end].to_vec();
        let handle = host.spawn(program, entry, arguments)?;
        self.clear_arguments(first, end, handle);
        Ok(())
    }

    #[inline(always)]
    fn save_pc(&mut self, pc: usize) {
        if let Some(frame) = self.frames.last_mut() {
            frame.pc = pc as u32;
        }
    }

    /// Puts a built-in's result in its first argument's register and clears
    /// the others, so that no temporary keeps a string shared (which would
    /// stop `s = s + x` from growing `s` in place).
    fn clear_arguments(&mut self, first: usize, end: usize, result: Value) {
        for slot in &mut self.registers[first + 1..end.max(first + 1)] {
            *slot = Value::Null;
        }
        self.registers[first] = result;
    }

    /// Starts a frame for `function` (number `index`) with its registers
    /// from `new_base`; the arguments are already in place.
    #[inline(always)]
    fn enter(&mut self, function: &Function, index: u16, new_base: usize, ret: usize) {
        let end = new_base + usize::from(function.registers);
        if self.registers.len() < end {
            self.registers.resize(end, Value::Null);
        }
        // Variables start as null.
        for slot in &mut self.registers[new_base + usize::from(function.params)..end] {
            store(slot, Value::Null);
        }
        self.frames.push(Frame {
            function: index,
            pc: 0,
            base: new_base as u32,
            ret: ret as u32,
        });
    }

    /// `FuncCall(name, args…)` / `ProcCall(name, args…)`.
    fn dynamic_call(
        &mut self,
        functions: &[Function],
        call: VmFn,
        first: usize,
        end: usize,
        pc: usize,
    ) -> Result<(), OpError> {
        let builtin = match call {
            VmFn::FuncCall => "FuncCall",
            VmFn::ProcCall => "ProcCall",
        };
        let Some(name) = self.registers[first].as_str_bytes() else {
            return Err(OpError::call(format!(
                "{builtin}: the name must be a string, not {}",
                self.registers[first].type_name()
            )));
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let key = name.to_ascii_lowercase();
        let Some(&index) = self.program.callable().get(&key) else {
            let help = match key.split_once("::") {
                Some((module, _)) if self.program.callable().keys().any(|known| known.starts_with(&format!("{module}::"))) => {
                    format!("module `{module}` has no such procedure or function")
                }
                Some((module, _)) => format!(
                    "module `{module}` is not part of this program: name it in the program (`procedure {module}::name() external;` or a call `{module}::name(…)`)"
                ),
                None => "name a procedure or function of this program, or `module::name` for a module's".to_string(),
            };
            return Err(OpError::call(format!("{builtin}: this program has no `{name}`")).with_help(help));
        };
        let function = &functions[usize::from(index)];
        let wanted = match call {
            VmFn::FuncCall => SectionKind::Function,
            VmFn::ProcCall => SectionKind::Procedure,
        };
        if function.kind != wanted {
            return Err(OpError::call(format!(
                "{builtin}: `{name}` is a {}, not a {}",
                function.kind.keyword(),
                wanted.keyword()
            )));
        }
        let argc = end - first - 1;
        if argc != usize::from(function.params) {
            return Err(OpError::call(format!(
                "{builtin}: `{name}` takes {} argument{}, but {argc} {} given",
                function.params,
                if function.params == 1 { "" } else { "s" },
                if argc == 1 { "was" } else { "were" }
            )));
        }
        if self.frames.len() >= self.limits.max_depth {
            return Err(depth_error(self.limits.max_depth));
        }
        self.save_pc(pc);
        self.enter(function, index, first + 1, first);
        Ok(())
    }
}

#[inline(never)]
fn depth_error(max_depth: usize) -> OpError {
    limit_error(format!("calls nested more than {max_depth} deep")).with_help("a recursion that never stops?")
}

#[inline(never)]
fn check_overflow(op: &str) -> OpError {
    OpError::arithmetic(format!("number overflow in `{op}`")).with_help("numbers are 64-bit signed integers")
}

#[inline]
fn equal(a: &Value, b: &Value) -> Result<bool, OpError> {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => Ok(x == y),
        _ => ops::equals(a, b),
    }
}

#[inline]
fn less(a: &Value, b: &Value, or_equal: bool) -> Result<bool, OpError> {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => Ok(if or_equal { x <= y } else { x < y }),
        _ => {
            let ordering = ops::compare(a, b)?;
            Ok(if or_equal {
                ordering.is_le()
            } else {
                ordering.is_lt()
            })
        }
    }
}

#[inline(never)]
fn index_number(index: &Value) -> Result<i64, OpError> {
    match index {
        Value::Num(number) => Ok(*number),
        other => Err(
            OpError::type_error(format!("an index must be a number, not {}", other.type_name()))
                .with_help("for a dictionary key write `d.name` or `d.(expression)`"),
        ),
    }
}

#[inline(never)]
fn get_index(object: &Value, index: &Value) -> Result<Value, OpError> {
    match object {
        Value::Array(array) => Ok(array.get(index_number(index)?)),
        Value::Dict(dict) => Ok(dict.key_at(index_number(index)?)),
        Value::Null => Ok(Value::Null),
        other => Err(
            OpError::type_error(format!("cannot index {}", other.type_name())).with_help(match other {
                Value::Str(_) => "for part of a string use Substring(s, from, length)",
                _ => "only arrays (and dictionaries, for their keys) can be indexed",
            }),
        ),
    }
}

#[inline(never)]
fn set_index(object: &Value, index: &Value, value: Value) -> Result<(), OpError> {
    match object {
        Value::Array(array) => Ok(array.set(index_number(index)?, value)?),
        Value::Dict(_) => Err(
            OpError::type_error("cannot assign through a dictionary ordinal").with_help(
                "`d[i]` reads the i-th key of a dictionary; assign by key: `d.name = x;` or `d.(key) = x;`",
            ),
        ),
        other => Err(
            OpError::type_error(format!("cannot assign an element of {}", other.type_name()))
                .with_help("create the array first: `a = NewArray();`"),
        ),
    }
}

fn key_type_error(key: &Value) -> OpError {
    OpError::type_error(format!(
        "a dictionary key must be a string, not {}",
        key.type_name()
    ))
}

fn key_bytes(key: &Value) -> Result<&[u8], OpError> {
    key.as_str_bytes().ok_or_else(|| key_type_error(key))
}

/// The string constant a `GetKey`/`SetKey` names.
fn key_constant(function: &Function, index: u16) -> Result<&crate::value::Bytes, OpError> {
    match function.constants.get(usize::from(index)) {
        Some(Constant::Str(bytes)) => Ok(bytes),
        _ => Err(OpError {
            kind: ErrorKind::Internal,
            message: "a key instruction names no string constant".into(),
            help: None,
        }),
    }
}

#[inline(never)]
fn get_key(object: &Value, key: &[u8]) -> Result<Value, OpError> {
    match object {
        Value::Dict(dict) => Ok(dict.get(key)),
        Value::Null => Ok(Value::Null),
        other => Err(OpError::type_error(format!(
            "cannot read key `{}` of {}: only dictionaries have keys",
            String::from_utf8_lossy(key),
            other.type_name()
        ))),
    }
}

#[inline(never)]
fn set_key(object: &Value, key: crate::value::Bytes, value: Value) -> Result<(), OpError> {
    match object {
        Value::Dict(dict) => Ok(dict.set(key, value)?),
        other => Err(OpError::type_error(format!(
            "cannot assign a key of {}: only dictionaries have keys",
            other.type_name()
        ))
        .with_help("create the dictionary first: `d = NewDictionary();`")),
    }
}
