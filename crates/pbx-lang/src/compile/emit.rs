//! Code generation: one section's AST, with its resolved names, to a
//! [`Function`].
//!
//! Registers: parameters and variables first (as the resolver numbered
//! them), then temporaries, allocated like a stack and released after each
//! statement. An expression is compiled "into" a register when the caller
//! has one in mind (`x = a + b` adds straight into `x`), otherwise into a
//! fresh temporary, or not at all when it is a variable already in a
//! register. Only the last instruction of an expression writes its target,
//! after reading its operands, so `s = s + x` reads `s` before replacing it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::bytecode::{Constant, Function, Instr, Reg, Target};
use crate::diagnostic::{Diagnostic, ErrorKind};
use crate::resolve::{CallRef, SectionNames, VarRef};
use crate::source::{SourceFile, Span};
use crate::syntax::ast::*;
use crate::value::Bytes;

/// What the emitter needs besides the AST.
pub(super) struct Context<'a> {
    pub file: &'a Arc<SourceFile>,
    pub file_id: u16,
    pub names: &'a SectionNames,
}

/// Where pending jumps out of a loop wait for their target.
struct LoopExits {
    jumps: Vec<usize>,
}

pub(super) struct Emitter<'a> {
    context: Context<'a>,
    code: Vec<Instr>,
    spans: Vec<Span>,
    constants: Vec<Constant>,
    string_constants: HashMap<Vec<u8>, u16>,
    number_constants: HashMap<i64, u16>,
    next_register: u32,
    max_registers: u32,
    loops: Vec<LoopExits>,
    span: Span,
    too_big: bool,
}

impl<'a> Emitter<'a> {
    pub fn new(context: Context<'a>) -> Emitter<'a> {
        let locals = u32::from(context.names.locals);
        Emitter {
            context,
            code: Vec::new(),
            spans: Vec::new(),
            constants: Vec::new(),
            string_constants: HashMap::new(),
            number_constants: HashMap::new(),
            next_register: locals,
            max_registers: locals,
            loops: Vec::new(),
            span: Span::default(),
            too_big: false,
        }
    }

    /// Finishes the function.
    pub fn finish(
        mut self,
        title: String,
        key: String,
        kind: SectionKind,
        params: u16,
        errors: &mut Vec<Diagnostic>,
    ) -> Function {
        self.emit(Instr::ReturnNull);
        if self.too_big || self.code.len() > usize::from(u16::MAX) || self.max_registers > u32::from(u16::MAX)
        {
            errors.push(
                Diagnostic::new(
                    ErrorKind::Limit,
                    self.context.file,
                    self.span,
                    format!("{title} is too long to compile"),
                )
                .with_help("split it into several procedures"),
            );
        }
        Function {
            title,
            key,
            kind,
            file: self.context.file_id,
            params,
            registers: self.max_registers.min(u32::from(u16::MAX)) as u16,
            code: self.code,
            spans: self.spans,
            constants: self.constants,
        }
    }

    fn emit(&mut self, instr: Instr) -> usize {
        self.code.push(instr);
        self.spans.push(self.span);
        self.code.len() - 1
    }

    fn here(&self) -> Target {
        u16::try_from(self.code.len()).unwrap_or(u16::MAX)
    }

    fn temp(&mut self) -> Reg {
        let register = self.next_register;
        self.next_register += 1;
        self.max_registers = self.max_registers.max(self.next_register);
        if register > u32::from(u16::MAX) {
            self.too_big = true;
            return 0;
        }
        register as Reg
    }

    fn release_to(&mut self, mark: u32) {
        self.next_register = mark;
    }

    fn constant_string(&mut self, bytes: &[u8]) -> u16 {
        if let Some(&index) = self.string_constants.get(bytes) {
            return index;
        }
        let index = self.push_constant(Constant::Str(Bytes::copy_from(bytes)));
        self.string_constants.insert(bytes.to_vec(), index);
        index
    }

    fn constant_number(&mut self, number: i64) -> u16 {
        if let Some(&index) = self.number_constants.get(&number) {
            return index;
        }
        let index = self.push_constant(Constant::Num(number));
        self.number_constants.insert(number, index);
        index
    }

    fn push_constant(&mut self, constant: Constant) -> u16 {
        if self.constants.len() >= usize::from(u16::MAX) {
            self.too_big = true;
            return 0;
        }
        self.constants.push(constant);
        (self.constants.len() - 1) as u16
    }

    /// Points the jump at `at` to `target`.
    fn patch(&mut self, at: usize, target: Target) {
        self.code[at] = self.code[at].retarget(|_| target);
    }

    fn patch_here(&mut self, jumps: &[usize]) {
        let here = self.here();
        for &jump in jumps {
            self.patch(jump, here);
        }
    }

    // ------------------------------------------------------------ statements

    /// Emits a block.
    pub fn block(&mut self, block: &Block) {
        for statement in &block.statements {
            self.statement(statement);
        }
    }

    /// Emits `StoreGlobal` of a file-wide variable's initial value.
    pub fn initializer(&mut self, global: u16, value: &Expr) {
        let mark = self.next_register;
        let register = self.expr(value, None);
        self.span = value.span;
        self.emit(Instr::StoreGlobal {
            index: global,
            src: register,
        });
        self.release_to(mark);
    }

    fn statement(&mut self, statement: &Stmt) {
        self.span = statement.span;
        let mark = self.next_register;
        match &statement.kind {
            StmtKind::Empty => {}
            StmtKind::Var(decl) => {
                for (name, value) in &decl.items {
                    let Some(VarRef::Local(slot)) = self.var_ref(name) else {
                        continue;
                    };
                    match value {
                        Some(value) => {
                            self.expr(value, Some(slot));
                        }
                        None => {
                            self.emit(Instr::LoadNull { dst: slot });
                        }
                    }
                }
            }
            StmtKind::Assign { place, op, value } => self.assign(place, *op, value),
            StmtKind::Call(call) => {
                self.expr(call, None);
            }
            StmtKind::If { branches, otherwise } => {
                let mut ends = Vec::new();
                for (index, (condition, block)) in branches.iter().enumerate() {
                    let mut next = Vec::new();
                    self.jump_if(condition, false, &mut next);
                    self.block(block);
                    // No jump over what follows when nothing follows, or
                    // when the branch cannot fall through.
                    let last = index + 1 == branches.len() && otherwise.is_none();
                    if !last && !ends_flow(block) {
                        ends.push(self.emit(Instr::Jump { target: 0 }));
                    }
                    self.patch_here(&next);
                }
                if let Some(block) = otherwise {
                    self.block(block);
                }
                self.patch_here(&ends);
            }
            StmtKind::Loop(looping) => self.loop_statement(looping, statement.span),
            StmtKind::ExitIf(condition) => {
                let mut exits = Vec::new();
                self.jump_if(condition, true, &mut exits);
                if let Some(innermost) = self.loops.last_mut() {
                    innermost.jumps.extend(exits);
                }
            }
            StmtKind::Return(value) => match value {
                Some(value) => {
                    let register = self.expr(value, None);
                    self.span = statement.span;
                    self.emit(Instr::Return { src: register });
                }
                None => {
                    self.emit(Instr::ReturnNull);
                }
            },
            StmtKind::Stop => {
                self.emit(Instr::Stop);
            }
            StmtKind::Block(block) => self.block(block),
        }
        self.release_to(mark);
    }

    /// `init; while cond { body; step }`, with the condition tested before
    /// the first pass and then at the bottom, so that each further pass
    /// costs one jump rather than two.
    fn loop_statement(&mut self, looping: &Loop, span: Span) {
        if let Some((name, _, start)) = &looping.init {
            let place = Place::Var(name.clone());
            self.assign(&place, AssignOp::Set, start);
        }
        self.loops.push(LoopExits { jumps: Vec::new() });
        if let Some(condition) = &looping.condition {
            let mut exits = Vec::new();
            self.jump_if(condition, false, &mut exits);
            if let Some(innermost) = self.loops.last_mut() {
                innermost.jumps.extend(exits);
            }
        }
        let top = self.here();
        self.block(&looping.body);
        if let Some((place, op, value, step_span)) = &looping.step {
            self.span = *step_span;
            let mark = self.next_register;
            self.assign(place, *op, value);
            self.release_to(mark);
        }
        // Limits are noticed at the jump back; errors then point at the loop.
        self.span = span;
        match &looping.condition {
            Some(condition) => {
                let mut again = Vec::new();
                self.jump_if(condition, true, &mut again);
                for jump in again {
                    self.patch(jump, top);
                }
            }
            None => {
                self.emit(Instr::Jump { target: top });
            }
        }
        if let Some(exits) = self.loops.pop() {
            self.patch_here(&exits.jumps);
        }
    }

    fn var_ref(&self, name: &Ident) -> Option<VarRef> {
        self.context.names.vars.get(&name.span.start).copied()
    }

    fn assign(&mut self, place: &Place, op: AssignOp, value: &Expr) {
        // Errors in storing point at the whole assignment, not at its value.
        let statement_span = self.span;
        match place {
            Place::Var(name) => match (self.var_ref(name), op.binary()) {
                (Some(VarRef::Local(slot)), None) => {
                    self.expr(value, Some(slot));
                }
                (Some(VarRef::Local(slot)), Some(binary)) => {
                    self.binary_into(binary, slot, value, slot);
                }
                (Some(VarRef::Global(index)), binary) => {
                    let register = match binary {
                        None => self.expr(value, None),
                        Some(binary) => {
                            let current = self.temp();
                            self.emit(Instr::LoadGlobal { dst: current, index });
                            self.binary_into(binary, current, value, current);
                            current
                        }
                    };
                    self.emit(Instr::StoreGlobal { index, src: register });
                }
                (None, _) => {}
            },
            Place::Index { object, index } => {
                let object = self.expr(object, None);
                let index = self.expr(index, None);
                let source = self.updated_value(op, value, |emitter, dst| {
                    emitter.emit(Instr::GetIndex { dst, object, index });
                });
                self.span = statement_span;
                self.emit(Instr::SetIndex {
                    object,
                    index,
                    src: source,
                });
            }
            Place::Key { object, key } => {
                let object = self.expr(object, None);
                let key = self.constant_string(key.as_bytes());
                let source = self.updated_value(op, value, |emitter, dst| {
                    emitter.emit(Instr::GetKey { dst, object, key });
                });
                self.span = statement_span;
                self.emit(Instr::SetKey {
                    object,
                    key,
                    src: source,
                });
            }
            Place::ComputedKey { object, key } => {
                let object = self.expr(object, None);
                let key = self.expr(key, None);
                let source = self.updated_value(op, value, |emitter, dst| {
                    emitter.emit(Instr::GetKeyDyn { dst, object, key });
                });
                self.span = statement_span;
                self.emit(Instr::SetKeyDyn {
                    object,
                    key,
                    src: source,
                });
            }
        }
    }

    /// The value to store into an element: `value` itself, or for `op=`
    /// the current element (read by `read`) combined with it.
    fn updated_value(&mut self, op: AssignOp, value: &Expr, read: impl FnOnce(&mut Self, Reg)) -> Reg {
        match op.binary() {
            None => self.expr(value, None),
            Some(binary) => {
                let current = self.temp();
                read(self, current);
                self.binary_into(binary, current, value, current);
                current
            }
        }
    }

    // ------------------------------------------------------------ conditions

    /// Emits jumps (collected in `jumps`, to be patched) taken when the
    /// truth of `condition` equals `when`.
    fn jump_if(&mut self, condition: &Expr, when: bool, jumps: &mut Vec<usize>) {
        self.span = condition.span;
        let mark = self.next_register;
        match &condition.kind {
            ExprKind::Unary(UnaryOp::Not, operand) => self.jump_if(operand, !when, jumps),
            ExprKind::Binary(BinaryOp::And, left, right) => {
                if when {
                    let mut skip = Vec::new();
                    self.jump_if(left, false, &mut skip);
                    self.jump_if(right, true, jumps);
                    self.patch_here(&skip);
                } else {
                    self.jump_if(left, false, jumps);
                    self.jump_if(right, false, jumps);
                }
            }
            ExprKind::Binary(BinaryOp::Or, left, right) => {
                if when {
                    self.jump_if(left, true, jumps);
                    self.jump_if(right, true, jumps);
                } else {
                    let mut skip = Vec::new();
                    self.jump_if(left, true, &mut skip);
                    self.jump_if(right, false, jumps);
                    self.patch_here(&skip);
                }
            }
            ExprKind::Binary(
                op
                @ (BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Eq | BinaryOp::Ne),
                left,
                right,
            ) => self.compare_jump(*op, left, right, when, jumps),
            ExprKind::Null | ExprKind::False => {
                if !when {
                    jumps.push(self.emit(Instr::Jump { target: 0 }));
                }
            }
            _ => {
                let register = self.expr(condition, None);
                self.span = condition.span;
                jumps.push(if when {
                    self.emit(Instr::JumpIfTrue {
                        cond: register,
                        target: 0,
                    })
                } else {
                    self.emit(Instr::JumpIfFalse {
                        cond: register,
                        target: 0,
                    })
                });
            }
        }
        self.release_to(mark);
    }

    /// Emits a jump taken when `left op right` holds (`when`) or does not.
    fn compare_jump(&mut self, op: BinaryOp, left: &Expr, right: &Expr, when: bool, jumps: &mut Vec<usize>) {
        let span = self.span;
        if let Some(value) = small_number(right) {
            let a = self.expr(left, None);
            self.span = span;
            let shifted = |delta: i64| i16::try_from(i64::from(value) + delta).ok();
            // `a <= k` is `a < k + 1` and `a >= k` is `a > k - 1`.
            let (less, limit) = match op {
                BinaryOp::Lt => (Some(true), Some(value)),
                BinaryOp::Gt => (Some(false), Some(value)),
                BinaryOp::Le => (Some(true), shifted(1)),
                BinaryOp::Ge => (Some(false), shifted(-1)),
                _ => (None, None),
            };
            if let (Some(less), Some(value)) = (less, limit) {
                let instr = match (less, when) {
                    (true, true) => Instr::JumpIfLtInt { a, value, target: 0 },
                    (true, false) => Instr::JumpIfNotLtInt { a, value, target: 0 },
                    (false, true) => Instr::JumpIfGtInt { a, value, target: 0 },
                    (false, false) => Instr::JumpIfNotGtInt { a, value, target: 0 },
                };
                jumps.push(self.emit(instr));
                return;
            }
            let b = self.expr(right, None);
            self.span = span;
            jumps.push(self.emit(compare_jump_instr(op, a, b, when)));
            return;
        }
        let a = self.expr(left, None);
        let b = self.expr(right, None);
        self.span = span;
        jumps.push(self.emit(compare_jump_instr(op, a, b, when)));
    }

    // ------------------------------------------------------------ expressions

    fn target(&mut self, dst: Option<Reg>) -> Reg {
        match dst {
            Some(register) => register,
            None => self.temp(),
        }
    }

    /// Emits `expr`; returns the register holding its value (`dst` if given).
    fn expr(&mut self, expr: &Expr, dst: Option<Reg>) -> Reg {
        self.span = expr.span;
        match &expr.kind {
            ExprKind::Null | ExprKind::False => {
                let register = self.target(dst);
                self.emit(Instr::LoadNull { dst: register });
                register
            }
            ExprKind::True => {
                let register = self.target(dst);
                self.emit(Instr::LoadTrue { dst: register });
                register
            }
            ExprKind::Number(number) => {
                let register = self.target(dst);
                self.load_number(register, *number);
                register
            }
            ExprKind::String(bytes) => {
                let register = self.target(dst);
                let index = self.constant_string(bytes);
                self.emit(Instr::LoadConst { dst: register, index });
                register
            }
            ExprKind::Var(name) => match self.var_ref(name) {
                Some(VarRef::Local(slot)) => match dst {
                    Some(register) if register != slot => {
                        self.emit(Instr::Move {
                            dst: register,
                            src: slot,
                        });
                        register
                    }
                    _ => slot,
                },
                Some(VarRef::Global(index)) => {
                    let register = self.target(dst);
                    self.emit(Instr::LoadGlobal { dst: register, index });
                    register
                }
                None => self.target(dst),
            },
            ExprKind::Unary(op, operand) => {
                if let (UnaryOp::Neg, ExprKind::Number(number)) = (op, &operand.kind) {
                    let register = self.target(dst);
                    self.load_number(register, number.wrapping_neg());
                    return register;
                }
                let mark = self.next_register;
                let source = self.expr(operand, None);
                self.release_to(mark);
                let register = self.target(dst);
                self.span = expr.span;
                self.emit(match op {
                    UnaryOp::Neg => Instr::Neg {
                        dst: register,
                        src: source,
                    },
                    UnaryOp::Plus => Instr::Plus {
                        dst: register,
                        src: source,
                    },
                    UnaryOp::Not => Instr::Not {
                        dst: register,
                        src: source,
                    },
                });
                register
            }
            ExprKind::Binary(op @ (BinaryOp::And | BinaryOp::Or), _, _) => {
                let register = self.target(dst);
                let mut false_jumps = Vec::new();
                // `a and b` is true when the whole is; `a or b` likewise.
                let _ = op;
                self.jump_if(expr, false, &mut false_jumps);
                self.span = expr.span;
                self.emit(Instr::LoadTrue { dst: register });
                let end = self.emit(Instr::Jump { target: 0 });
                self.patch_here(&false_jumps);
                self.emit(Instr::LoadNull { dst: register });
                self.patch_here(&[end]);
                register
            }
            ExprKind::Binary(op, left, right) => {
                let mark = self.next_register;
                let a = self.expr(left, None);
                self.binary_from(*op, a, right, dst, mark, expr.span)
            }
            ExprKind::Ternary(condition, then, otherwise) => {
                let register = self.target(dst);
                let mut else_jumps = Vec::new();
                self.jump_if(condition, false, &mut else_jumps);
                self.expr(then, Some(register));
                let end = self.emit(Instr::Jump { target: 0 });
                self.patch_here(&else_jumps);
                self.expr(otherwise, Some(register));
                self.patch_here(&[end]);
                register
            }
            ExprKind::Call { name, args, .. } => {
                let call = self.context.names.calls.get(&name.name.span.start).copied();
                let base = self.arguments(args);
                self.span = expr.span;
                match call {
                    Some(CallRef::User(function)) => {
                        self.emit(Instr::Call { function, base });
                    }
                    Some(CallRef::Builtin(builtin)) => {
                        let argc = args.len() as u16;
                        self.emit(Instr::CallBuiltin { builtin, base, argc });
                    }
                    None => {}
                }
                self.result(base, dst)
            }
            ExprKind::Spawn { entry, args } => {
                let target = self.context.names.spawns.get(&entry.span.start).copied();
                let base = self.arguments(args);
                self.span = expr.span;
                if let Some(entry) = target {
                    let argc = args.len() as u16;
                    self.emit(Instr::Spawn { entry, base, argc });
                }
                self.result(base, dst)
            }
            ExprKind::Index(object, index) => {
                let mark = self.next_register;
                let object = self.expr(object, None);
                let index = self.expr(index, None);
                self.release_to(mark);
                let register = self.target(dst);
                self.span = expr.span;
                self.emit(Instr::GetIndex {
                    dst: register,
                    object,
                    index,
                });
                register
            }
            ExprKind::Key(object, key) => {
                let mark = self.next_register;
                let object = self.expr(object, None);
                self.release_to(mark);
                let register = self.target(dst);
                let key = self.constant_string(key.as_bytes());
                self.span = expr.span;
                self.emit(Instr::GetKey {
                    dst: register,
                    object,
                    key,
                });
                register
            }
            ExprKind::ComputedKey(object, key) => {
                let mark = self.next_register;
                let object = self.expr(object, None);
                let key = self.expr(key, None);
                self.release_to(mark);
                let register = self.target(dst);
                self.span = expr.span;
                self.emit(Instr::GetKeyDyn {
                    dst: register,
                    object,
                    key,
                });
                register
            }
        }
    }

    fn load_number(&mut self, register: Reg, number: i64) {
        match i32::try_from(number) {
            Ok(value) => {
                self.emit(Instr::LoadInt { dst: register, value });
            }
            Err(_) => {
                let index = self.constant_number(number);
                self.emit(Instr::LoadConst { dst: register, index });
            }
        }
    }

    /// Places arguments in consecutive fresh registers; returns the first.
    fn arguments(&mut self, args: &[Expr]) -> Reg {
        let base = self.temp();
        for _ in 1..args.len() {
            self.temp();
        }
        for (index, arg) in args.iter().enumerate() {
            let slot = (u32::from(base) + index as u32).min(u32::from(u16::MAX)) as Reg;
            self.expr(arg, Some(slot));
        }
        self.release_to(u32::from(base) + 1);
        base
    }

    /// A call's result is in `base`; move it to `dst` if one was asked for.
    fn result(&mut self, base: Reg, dst: Option<Reg>) -> Reg {
        match dst {
            Some(register) if register != base => {
                self.emit(Instr::Move {
                    dst: register,
                    src: base,
                });
                self.release_to(u32::from(base));
                register
            }
            _ => base,
        }
    }

    /// `dst = a op right`, with `a` already in a register.
    fn binary_into(&mut self, op: BinaryOp, a: Reg, right: &Expr, dst: Reg) {
        let mark = self.next_register;
        let span = self.span;
        match op {
            BinaryOp::And | BinaryOp::Or => {
                // Compound assignment has no logical operators; unreachable
                // from the grammar, kept total for safety.
                let b = self.expr(right, None);
                self.span = span;
                self.emit(Instr::Truth { dst, src: b });
                let _ = a;
            }
            _ => {
                self.binary_from(op, a, right, Some(dst), mark, span);
            }
        }
        self.release_to(mark);
    }

    /// Emits `a op right` where `a` is already in a register.
    fn binary_from(
        &mut self,
        op: BinaryOp,
        a: Reg,
        right: &Expr,
        dst: Option<Reg>,
        mark: u32,
        span: Span,
    ) -> Reg {
        if let (BinaryOp::Add | BinaryOp::Sub, Some(value)) = (op, small_number(right)) {
            let value = if op == BinaryOp::Sub {
                value.checked_neg()
            } else {
                Some(value)
            };
            if let Some(value) = value {
                self.release_to(mark.max(u32::from(a) + 1).min(self.next_register));
                let register = self.target(dst);
                self.span = span;
                self.emit(Instr::AddInt {
                    dst: register,
                    a,
                    value,
                });
                return register;
            }
        }
        let b = self.expr(right, None);
        // The operands are read before the result is written, so their
        // temporaries can hold the result.
        self.release_to(mark);
        let register = self.target(dst);
        self.span = span;
        self.emit(match op {
            BinaryOp::Add => Instr::Add { dst: register, a, b },
            BinaryOp::Sub => Instr::Sub { dst: register, a, b },
            BinaryOp::Mul => Instr::Mul { dst: register, a, b },
            BinaryOp::Div => Instr::Div { dst: register, a, b },
            BinaryOp::Mod => Instr::Mod { dst: register, a, b },
            BinaryOp::Lt => Instr::Lt { dst: register, a, b },
            BinaryOp::Le => Instr::Le { dst: register, a, b },
            BinaryOp::Gt => Instr::Lt {
                dst: register,
                a: b,
                b: a,
            },
            BinaryOp::Ge => Instr::Le {
                dst: register,
                a: b,
                b: a,
            },
            BinaryOp::Eq => Instr::Eq { dst: register, a, b },
            BinaryOp::Ne => Instr::Ne { dst: register, a, b },
            BinaryOp::Xor => Instr::Xor { dst: register, a, b },
            BinaryOp::And | BinaryOp::Or => Instr::Truth {
                dst: register,
                src: b,
            },
        });
        register
    }
}

/// Whether a block always leaves (so code after it is not reached from it).
fn ends_flow(block: &Block) -> bool {
    matches!(
        block.statements.last().map(|statement| &statement.kind),
        Some(StmtKind::Return(_) | StmtKind::Stop)
    )
}

/// A literal number that fits an instruction's immediate operand.
fn small_number(expr: &Expr) -> Option<i16> {
    match &expr.kind {
        ExprKind::Number(number) => i16::try_from(*number).ok(),
        ExprKind::Unary(UnaryOp::Neg, operand) => match operand.kind {
            ExprKind::Number(number) => i16::try_from(-number).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// The jump taken when `a op b` holds (`when`) or does not.
fn compare_jump_instr(op: BinaryOp, a: Reg, b: Reg, when: bool) -> Instr {
    let target = 0;
    match (op, when) {
        (BinaryOp::Lt, true) => Instr::JumpIfLt { a, b, target },
        (BinaryOp::Le, true) => Instr::JumpIfLe { a, b, target },
        (BinaryOp::Gt, true) => Instr::JumpIfLt { a: b, b: a, target },
        (BinaryOp::Ge, true) => Instr::JumpIfLe { a: b, b: a, target },
        (BinaryOp::Eq, true) | (BinaryOp::Ne, false) => Instr::JumpIfEq { a, b, target },
        (BinaryOp::Lt, false) => Instr::JumpIfNotLt { a, b, target },
        (BinaryOp::Le, false) => Instr::JumpIfNotLe { a, b, target },
        (BinaryOp::Gt, false) => Instr::JumpIfNotLt { a: b, b: a, target },
        (BinaryOp::Ge, false) => Instr::JumpIfNotLe { a: b, b: a, target },
        _ => Instr::JumpIfNotEq { a, b, target },
    }
}
