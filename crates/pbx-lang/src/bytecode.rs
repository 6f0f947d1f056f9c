//! The compiled form of a program: functions of register-machine
//! instructions, shared (behind an `Arc`) by every task that runs them.
//!
//! Each function has a fixed number of registers: its parameters first, then
//! its variables, then temporaries. A call places the arguments in
//! consecutive registers of the caller; they become the callee's first
//! registers, so arguments are never copied. Jump targets are instruction
//! indices within the function (a function holds at most 65,535
//! instructions), which keeps an instruction at 8 bytes.

use std::collections::HashMap;
use std::sync::Arc;

use crate::source::{SourceFile, Span};
use crate::syntax::ast::SectionKind;
use crate::value::{Bytes, Value};

/// A register number, relative to the frame.
pub type Reg = u16;
/// An instruction index within a function.
pub type Target = u16;

/// One instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instr {
    LoadNull {
        dst: Reg,
    },
    LoadTrue {
        dst: Reg,
    },
    LoadInt {
        dst: Reg,
        value: i32,
    },
    LoadConst {
        dst: Reg,
        index: u16,
    },
    Move {
        dst: Reg,
        src: Reg,
    },
    LoadGlobal {
        dst: Reg,
        index: u16,
    },
    StoreGlobal {
        index: u16,
        src: Reg,
    },

    Add {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    AddInt {
        dst: Reg,
        a: Reg,
        value: i16,
    },
    Sub {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Mul {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Div {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Mod {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Neg {
        dst: Reg,
        src: Reg,
    },
    Plus {
        dst: Reg,
        src: Reg,
    },
    Not {
        dst: Reg,
        src: Reg,
    },
    /// `dst = a xor b` over truth values.
    Xor {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    /// `dst = src is true ? "YES" : null`.
    Truth {
        dst: Reg,
        src: Reg,
    },

    Eq {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Ne {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Lt {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Le {
        dst: Reg,
        a: Reg,
        b: Reg,
    },

    Jump {
        target: Target,
    },
    JumpIfFalse {
        cond: Reg,
        target: Target,
    },
    JumpIfTrue {
        cond: Reg,
        target: Target,
    },
    /// Jump when `!(a < b)`.
    JumpIfNotLt {
        a: Reg,
        b: Reg,
        target: Target,
    },
    /// Jump when `!(a <= b)`.
    JumpIfNotLe {
        a: Reg,
        b: Reg,
        target: Target,
    },
    /// Jump when `!(a == b)`.
    JumpIfNotEq {
        a: Reg,
        b: Reg,
        target: Target,
    },
    /// Jump when `a == b`.
    JumpIfEq {
        a: Reg,
        b: Reg,
        target: Target,
    },
    /// Jump when `!(a < value)`.
    JumpIfNotLtInt {
        a: Reg,
        value: i16,
        target: Target,
    },
    /// Jump when `!(a > value)`.
    JumpIfNotGtInt {
        a: Reg,
        value: i16,
        target: Target,
    },
    /// Jump when `a < b` (loops test their condition at the bottom with these).
    JumpIfLt {
        a: Reg,
        b: Reg,
        target: Target,
    },
    /// Jump when `a <= b`.
    JumpIfLe {
        a: Reg,
        b: Reg,
        target: Target,
    },
    /// Jump when `a < value`.
    JumpIfLtInt {
        a: Reg,
        value: i16,
        target: Target,
    },
    /// Jump when `a > value`.
    JumpIfGtInt {
        a: Reg,
        value: i16,
        target: Target,
    },

    GetIndex {
        dst: Reg,
        object: Reg,
        index: Reg,
    },
    SetIndex {
        object: Reg,
        index: Reg,
        src: Reg,
    },
    /// `dst = object.key` with the key a string constant.
    GetKey {
        dst: Reg,
        object: Reg,
        key: u16,
    },
    SetKey {
        object: Reg,
        key: u16,
        src: Reg,
    },
    /// `dst = object.(key)`.
    GetKeyDyn {
        dst: Reg,
        object: Reg,
        key: Reg,
    },
    SetKeyDyn {
        object: Reg,
        key: Reg,
        src: Reg,
    },

    /// Calls user function `function`; arguments in `base..`, result to `base`.
    Call {
        function: u16,
        base: Reg,
    },
    /// Calls built-in `builtin` with `argc` arguments at `base..`; result to `base`.
    CallBuiltin {
        builtin: u16,
        base: Reg,
        argc: u16,
    },
    /// Starts entry `entry` as a new task with `argc` arguments at `base..`;
    /// the handle goes to `base`.
    Spawn {
        entry: u16,
        base: Reg,
        argc: u16,
    },
    Return {
        src: Reg,
    },
    ReturnNull,
    Stop,
}

impl Instr {
    /// The jump target, if this is a jump.
    pub fn target(&self) -> Option<Target> {
        match *self {
            Instr::Jump { target }
            | Instr::JumpIfFalse { target, .. }
            | Instr::JumpIfTrue { target, .. }
            | Instr::JumpIfNotLt { target, .. }
            | Instr::JumpIfNotLe { target, .. }
            | Instr::JumpIfNotEq { target, .. }
            | Instr::JumpIfEq { target, .. }
            | Instr::JumpIfNotLtInt { target, .. }
            | Instr::JumpIfNotGtInt { target, .. }
            | Instr::JumpIfLt { target, .. }
            | Instr::JumpIfLe { target, .. }
            | Instr::JumpIfLtInt { target, .. }
            | Instr::JumpIfGtInt { target, .. } => Some(target),
            _ => None,
        }
    }

    /// The same instruction jumping to `to(target)`; others unchanged.
    pub fn retarget(self, to: impl FnOnce(Target) -> Target) -> Instr {
        let Some(old) = self.target() else { return self };
        let target = to(old);
        match self {
            Instr::Jump { .. } => Instr::Jump { target },
            Instr::JumpIfFalse { cond, .. } => Instr::JumpIfFalse { cond, target },
            Instr::JumpIfTrue { cond, .. } => Instr::JumpIfTrue { cond, target },
            Instr::JumpIfNotLt { a, b, .. } => Instr::JumpIfNotLt { a, b, target },
            Instr::JumpIfNotLe { a, b, .. } => Instr::JumpIfNotLe { a, b, target },
            Instr::JumpIfNotEq { a, b, .. } => Instr::JumpIfNotEq { a, b, target },
            Instr::JumpIfEq { a, b, .. } => Instr::JumpIfEq { a, b, target },
            Instr::JumpIfNotLtInt { a, value, .. } => Instr::JumpIfNotLtInt { a, value, target },
            Instr::JumpIfNotGtInt { a, value, .. } => Instr::JumpIfNotGtInt { a, value, target },
            Instr::JumpIfLt { a, b, .. } => Instr::JumpIfLt { a, b, target },
            Instr::JumpIfLe { a, b, .. } => Instr::JumpIfLe { a, b, target },
            Instr::JumpIfLtInt { a, value, .. } => Instr::JumpIfLtInt { a, value, target },
            Instr::JumpIfGtInt { a, value, .. } => Instr::JumpIfGtInt { a, value, target },
            other => other,
        }
    }
}

/// A constant of a function.
#[derive(Clone, Debug)]
pub enum Constant {
    Str(Bytes),
    Num(i64),
}

impl Constant {
    /// The constant as a value.
    #[inline]
    pub fn to_value(&self) -> Value {
        match self {
            Constant::Str(bytes) => Value::Str(bytes.clone()),
            Constant::Num(number) => Value::Num(*number),
        }
    }
}

/// A compiled entry, procedure or function.
///
/// Outside this crate a `Function` can only be read (through a
/// [`Program`]), never built or changed, so its code, registers and
/// constants are the ones [`Program`]'s verifier checked.
///
/// ```compile_fail,E0451
/// // Proves that safe code outside the crate cannot build a function whose
/// // instructions name registers it does not have: the fields are private.
/// use pbx_lang::bytecode::{Function, Instr};
/// use pbx_lang::syntax::ast::SectionKind;
///
/// let _ = Function {
///     title: String::from("entry Main"),
///     key: String::from("main"),
///     kind: SectionKind::Entry,
///     file: 0,
///     params: 0,
///     registers: 0,
///     code: vec![Instr::Return { src: 1000 }],
///     spans: vec![pbx_lang::Span::default()],
///     constants: Vec::new(),
/// };
/// ```
#[derive(Debug)]
pub struct Function {
    /// `entry Main`, `procedure Helper`, `function m::F`, for stacks.
    pub(crate) title: String,
    /// The name, folded, with its module: `m::f` or `f`.
    pub(crate) key: String,
    pub(crate) kind: SectionKind,
    /// Index into [`Program::files`].
    pub(crate) file: u16,
    pub(crate) params: u16,
    /// Registers needed: parameters, variables and temporaries.
    pub(crate) registers: u16,
    pub(crate) code: Vec<Instr>,
    /// The source span of each instruction, for error messages.
    pub(crate) spans: Vec<Span>,
    pub(crate) constants: Vec<Constant>,
}

impl Function {
    /// `entry Main`, `procedure Helper`, `function m::F`, for stacks.
    #[inline]
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The name, folded, with its module: `m::f` or `f` (empty for the
    /// function that sets a file's file-wide variables).
    #[inline]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Entry, procedure or function.
    #[inline]
    pub fn kind(&self) -> SectionKind {
        self.kind
    }

    /// The file it comes from: an index into [`Program::files`].
    #[inline]
    pub fn file(&self) -> u16 {
        self.file
    }

    /// How many parameters it takes (its first registers).
    #[inline]
    pub fn params(&self) -> u16 {
        self.params
    }

    /// Registers needed: parameters, variables and temporaries.
    #[inline]
    pub fn registers(&self) -> u16 {
        self.registers
    }

    /// Its instructions.
    #[inline]
    pub fn code(&self) -> &[Instr] {
        &self.code
    }

    /// The source span of each instruction, for error messages.
    #[inline]
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// The constants its instructions name.
    #[inline]
    pub fn constants(&self) -> &[Constant] {
        &self.constants
    }
}

/// A program as the compiler emits it, before [`verify`] has checked it.
/// Only `verify` turns it into a [`Program`].
#[derive(Debug)]
pub(crate) struct Unverified {
    /// The main file first, then modules.
    pub(crate) files: Vec<Arc<SourceFile>>,
    pub(crate) functions: Vec<Function>,
    /// Entries of the main file by folded name.
    pub(crate) entries: HashMap<String, u16>,
    /// Every procedure and function by folded key.
    pub(crate) callable: HashMap<String, u16>,
    /// Number of file-wide variables, all files.
    pub(crate) globals: u16,
}

/// A compiled program: its main file, the modules it uses, and their code.
///
/// *Invariant:* every `Program` passed `bytecode::verify`, which is its only
/// constructor (the compiler calls it), and nothing can change one
/// afterwards: its fields are private to this module and it lends its
/// functions out only as `&Function`. The interpreter relies on this to
/// read registers, constants and jump targets without checking them.
///
/// ```compile_fail,E0451
/// // Proves that safe code outside the crate cannot build a program that
/// // skips the verifier: the fields are private, so there is no literal.
/// use std::collections::HashMap;
/// use pbx_lang::bytecode::Program;
///
/// let _ = Program {
///     files: Vec::new(),
///     functions: Vec::new(),
///     entries: HashMap::new(),
///     callable: HashMap::new(),
///     globals: 0,
/// };
/// ```
///
/// ```compile_fail,E0616
/// // Proves that a compiled (verified) program cannot be changed from
/// // outside the crate, even by its only owner: its functions are
/// // reachable only as `&Function`, so a verified function cannot lose
/// // the registers its code names.
/// use std::sync::Arc;
/// use pbx_lang::compile::NoModules;
/// use pbx_lang::SourceFile;
///
/// let file = SourceFile::new("a.sppr", "entry Main is x = 1; end;");
/// let compiled = pbx_lang::compile(Arc::new(file), &NoModules).expect("compiles");
/// let mut program = Arc::try_unwrap(compiled).expect("one owner");
/// program.functions[0].registers = 0;
/// ```
#[derive(Debug)]
pub struct Program {
    /// The main file first, then modules.
    files: Vec<Arc<SourceFile>>,
    functions: Vec<Function>,
    /// Entries of the main file by folded name.
    entries: HashMap<String, u16>,
    /// Every procedure and function by folded key (`f` for the main file,
    /// `m::f` for module `m`), for `ProcCall` and `FuncCall`.
    callable: HashMap<String, u16>,
    /// Number of file-wide (`var` outside sections) variables, all files.
    globals: u16,
}

impl Program {
    /// The index of entry `name` (case-insensitive).
    pub fn entry(&self, name: &str) -> Option<u16> {
        self.entries.get(&name.to_ascii_lowercase()).copied()
    }

    /// The main file.
    #[inline]
    pub fn main_file(&self) -> &Arc<SourceFile> {
        &self.files[0]
    }

    /// The main file first, then modules; [`Function::file`] indexes it.
    #[inline]
    pub fn files(&self) -> &[Arc<SourceFile>] {
        &self.files
    }

    /// Every function; `Instr::Call`, entries and frames index it.
    #[inline]
    pub fn functions(&self) -> &[Function] {
        &self.functions
    }

    /// Entries of the main file by folded name.
    #[inline]
    pub fn entries(&self) -> &HashMap<String, u16> {
        &self.entries
    }

    /// Every procedure and function by folded key (`f` for the main file,
    /// `m::f` for module `m`), for `ProcCall` and `FuncCall`.
    #[inline]
    pub fn callable(&self) -> &HashMap<String, u16> {
        &self.callable
    }

    /// Number of file-wide (`var` outside sections) variables, all files.
    #[inline]
    pub fn globals(&self) -> u16 {
        self.globals
    }
}

impl Program {
    /// A readable listing of every function, for developers.
    pub fn disassemble(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for (index, function) in self.functions.iter().enumerate() {
            let _ = writeln!(
                out,
                "#{index} {} (params {}, registers {})",
                function.title, function.params, function.registers
            );
            for (pc, instr) in function.code.iter().enumerate() {
                let _ = writeln!(out, "  {pc:4}  {instr:?}");
            }
            for (number, constant) in function.constants.iter().enumerate() {
                let _ = writeln!(out, "  k{number} = {constant:?}");
            }
        }
        out
    }
}

/// Checks what the interpreter relies on without checking it again at run
/// time: every register an instruction names is within its function's
/// registers, every jump lands inside the function, every constant,
/// function, file and built-in exists, arguments fit in the caller's
/// registers, and no function can run past its last instruction. This is
/// the only way to make a [`Program`]: on success it returns `program`,
/// now trusted.
pub(crate) fn verify(program: Unverified) -> Result<Program, String> {
    check(&program)?;
    let Unverified {
        files,
        functions,
        entries,
        callable,
        globals,
    } = program;
    Ok(Program {
        files,
        functions,
        entries,
        callable,
        globals,
    })
}

fn check(program: &Unverified) -> Result<(), String> {
    let builtin_count = crate::builtins::all().count();
    for (index, function) in program.functions.iter().enumerate() {
        let fail = |pc: usize, what: &str| {
            Err(format!(
                "function #{index} ({}), instruction {pc}: {what}",
                function.title
            ))
        };
        let registers = usize::from(function.registers);
        let length = function.code.len();
        if function.spans.len() != length {
            return fail(0, "spans do not match the code");
        }
        if usize::from(function.params) > registers {
            return fail(0, "more parameters than registers");
        }
        if usize::from(function.file) >= program.files.len() {
            return fail(0, "its file does not exist");
        }
        match function.code.last() {
            Some(Instr::Return { .. } | Instr::ReturnNull | Instr::Stop | Instr::Jump { .. }) => {}
            _ => return fail(length, "the code can run past its end"),
        }
        for (pc, instr) in function.code.iter().enumerate() {
            let reg_ok = |r: &Reg| usize::from(*r) < registers;
            let target_ok = |t: &Target| usize::from(*t) < length;
            let constant_ok = |k: &u16| usize::from(*k) < function.constants.len();
            let span_ok = |base: &Reg, count: usize| usize::from(*base) + count.max(1) <= registers;
            let ok = match instr {
                Instr::LoadNull { dst } | Instr::LoadTrue { dst } | Instr::LoadInt { dst, .. } => reg_ok(dst),
                Instr::LoadConst { dst, index } => reg_ok(dst) && constant_ok(index),
                Instr::Move { dst, src }
                | Instr::Neg { dst, src }
                | Instr::Plus { dst, src }
                | Instr::Not { dst, src }
                | Instr::Truth { dst, src } => reg_ok(dst) && reg_ok(src),
                Instr::LoadGlobal { dst, index } => reg_ok(dst) && *index < program.globals,
                Instr::StoreGlobal { index, src } => reg_ok(src) && *index < program.globals,
                Instr::Add { dst, a, b }
                | Instr::Sub { dst, a, b }
                | Instr::Mul { dst, a, b }
                | Instr::Div { dst, a, b }
                | Instr::Mod { dst, a, b }
                | Instr::Xor { dst, a, b }
                | Instr::Eq { dst, a, b }
                | Instr::Ne { dst, a, b }
                | Instr::Lt { dst, a, b }
                | Instr::Le { dst, a, b } => reg_ok(dst) && reg_ok(a) && reg_ok(b),
                Instr::AddInt { dst, a, .. } => reg_ok(dst) && reg_ok(a),
                Instr::Jump { target } => target_ok(target),
                Instr::JumpIfFalse { cond, target } | Instr::JumpIfTrue { cond, target } => {
                    reg_ok(cond) && target_ok(target)
                }
                Instr::JumpIfNotLt { a, b, target }
                | Instr::JumpIfNotLe { a, b, target }
                | Instr::JumpIfNotEq { a, b, target }
                | Instr::JumpIfEq { a, b, target } => reg_ok(a) && reg_ok(b) && target_ok(target),
                Instr::JumpIfLt { a, b, target } | Instr::JumpIfLe { a, b, target } => {
                    reg_ok(a) && reg_ok(b) && target_ok(target)
                }
                Instr::JumpIfNotLtInt { a, target, .. }
                | Instr::JumpIfNotGtInt { a, target, .. }
                | Instr::JumpIfLtInt { a, target, .. }
                | Instr::JumpIfGtInt { a, target, .. } => reg_ok(a) && target_ok(target),
                Instr::GetIndex { dst, object, index } => reg_ok(dst) && reg_ok(object) && reg_ok(index),
                Instr::SetIndex { object, index, src } => reg_ok(object) && reg_ok(index) && reg_ok(src),
                Instr::GetKey { dst, object, key } => reg_ok(dst) && reg_ok(object) && constant_ok(key),
                Instr::SetKey { object, key, src } => reg_ok(object) && reg_ok(src) && constant_ok(key),
                Instr::GetKeyDyn { dst, object, key } => reg_ok(dst) && reg_ok(object) && reg_ok(key),
                Instr::SetKeyDyn { object, key, src } => reg_ok(object) && reg_ok(key) && reg_ok(src),
                Instr::Call {
                    function: callee,
                    base,
                } => program
                    .functions
                    .get(usize::from(*callee))
                    .is_some_and(|callee| span_ok(base, usize::from(callee.params))),
                Instr::CallBuiltin { builtin, base, argc } => {
                    usize::from(*builtin) < builtin_count && span_ok(base, usize::from(*argc))
                }
                Instr::Spawn { entry, base, argc } => {
                    usize::from(*entry) < program.functions.len() && span_ok(base, usize::from(*argc))
                }
                Instr::Return { src } => reg_ok(src),
                Instr::ReturnNull | Instr::Stop => true,
            };
            if !ok {
                return fail(pc, &format!("{instr:?} is out of bounds"));
            }
        }
    }
    for &entry in program.entries.values().chain(program.callable.values()) {
        if usize::from(entry) >= program.functions.len() {
            return Err(format!("entry or callable #{entry} does not exist"));
        }
    }
    if program.files.is_empty() {
        return Err("the program has no main file".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_are_eight_bytes() {
        assert_eq!(std::mem::size_of::<Instr>(), 8);
    }

    /// A one-function program returning register `returned` of `registers`.
    fn returning(returned: Reg, registers: u16) -> Unverified {
        let function = Function {
            title: String::from("entry Main"),
            key: String::from("main"),
            kind: SectionKind::Entry,
            file: 0,
            params: 0,
            registers,
            code: vec![Instr::Return { src: returned }],
            spans: vec![Span::default()],
            constants: Vec::new(),
        };
        Unverified {
            files: vec![Arc::new(SourceFile::new("a.sppr", ""))],
            functions: vec![function],
            entries: HashMap::from([(String::from("main"), 0)]),
            callable: HashMap::new(),
            globals: 0,
        }
    }

    #[test]
    fn verify_makes_a_program_only_of_code_in_bounds() {
        assert!(verify(returning(0, 1)).is_ok());
        let error = verify(returning(1, 1)).unwrap_err();
        assert!(error.contains("Return { src: 1 } is out of bounds"), "{error}");
    }
}
