//! Stage two: names. Decides what every name in a section refers to (a
//! register, a file-wide variable, a section, a built-in) and reports the
//! errors a person can make with names: unknown functions, wrong argument
//! counts, functions used as statements, procedures used as values,
//! `exitif` outside a loop...
//!
//! The result is a side table keyed by the byte offset where each name
//! occurs; the code generator reads it and never looks a name up itself.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::builtins::{self, Kind};
use crate::diagnostic::{Diagnostic, ErrorKind};
use crate::source::{SourceFile, Span};
use crate::syntax::ast::*;

/// Where a variable lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarRef {
    /// A register of the running section.
    Local(u16),
    /// A file-wide variable of the task.
    Global(u16),
}

/// What a call calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallRef {
    /// A section of the program, by function index.
    User(u16),
    /// A built-in, by registry index.
    Builtin(u16),
}

/// A section that can be called, as the resolver sees it.
#[derive(Clone, Debug)]
pub struct Callee {
    pub function: u16,
    pub kind: SectionKind,
    pub params: usize,
    /// `procedure Foo` for messages.
    pub title: String,
    /// The name as defined, for suggestions.
    pub name: String,
    /// Where it is defined or declared: the file's number and the span.
    pub file: u16,
    pub span: Span,
}

/// What the names of one section resolved to.
#[derive(Debug, Default)]
pub struct SectionNames {
    /// Registers used by parameters and variables.
    pub locals: u16,
    /// Variable occurrences (by the offset of the name) to their places.
    pub vars: HashMap<u32, VarRef>,
    /// Call names (by the offset of the name) to what they call.
    pub calls: HashMap<u32, CallRef>,
    /// `spawn Name` (by the offset of the name) to the entry's function index.
    pub spawns: HashMap<u32, u16>,
}

/// The names one file can see.
pub struct Namespace<'a> {
    pub file: &'a Arc<SourceFile>,
    /// The file's number in the program.
    pub file_id: u16,
    /// Sections this file defines or declares, by folded name.
    pub sections: &'a HashMap<String, Callee>,
    /// Sections of modules, by folded `module::name`.
    pub qualified: &'a HashMap<String, Callee>,
    /// Entries of the main file, for `spawn`.
    pub entries: &'a HashMap<String, u16>,
    /// File-wide variables of this file, by folded name.
    pub globals: &'a HashMap<String, u16>,
    /// Spellings of all sections of the program, by folded name.
    pub spellings: &'a HashMap<String, String>,
}

/// Resolves the names of one section body (or, with `kind` = `None`, of a
/// file-wide variable's initial value).
pub fn resolve_section(
    namespace: &Namespace<'_>,
    kind: Option<SectionKind>,
    params: &[Ident],
    body: &Block,
    errors: &mut Vec<Diagnostic>,
) -> SectionNames {
    let mut resolver = Resolver::new(namespace, kind, errors);
    for param in params {
        if resolver.scopes[0].contains_key(&*param.folded) {
            let message = format!("parameter `{}` is listed twice", param.text);
            resolver.error(ErrorKind::Name, param.span, message);
            continue;
        }
        let slot = resolver.new_slot();
        resolver.scopes[0].insert(param.folded.to_string(), slot);
        resolver.names.vars.insert(param.span.start, VarRef::Local(slot));
        resolver.dictionary_only.insert(slot, false);
    }
    resolver.block(body);
    resolver.report_function_names_used_as_variables();
    resolver.report_ordinal_assignments();
    resolver.names
}

/// Resolves a file-wide variable's initial value.
pub fn resolve_initializer(
    namespace: &Namespace<'_>,
    value: &Expr,
    errors: &mut Vec<Diagnostic>,
) -> SectionNames {
    let mut resolver = Resolver::new(namespace, None, errors);
    resolver.expr(value);
    resolver.names
}

struct Resolver<'n, 'a, 'e> {
    namespace: &'n Namespace<'a>,
    /// The section being resolved; `None` for a file-wide initial value.
    kind: Option<SectionKind>,
    names: SectionNames,
    /// Block scopes of `var` declarations, outermost (parameters) first.
    scopes: Vec<HashMap<String, u16>>,
    /// Variables used without `var`: one register each for the section.
    implicit: HashMap<String, u16>,
    /// Implicit variables that share a name with a procedure or built-in,
    /// with where they were first read and whether they are ever assigned.
    shadowing: HashMap<String, (Ident, bool)>,
    /// Per register: whether every value assigned to it so far is a fresh
    /// dictionary (`NewDictionary()`, `Vars()`).
    dictionary_only: HashMap<u16, bool>,
    /// `x[i] = …` statements, by the register of `x`, with where they are.
    ordinal_assignments: Vec<(u16, Span, Rc<str>)>,
    loop_depth: u32,
    errors: &'e mut Vec<Diagnostic>,
}

impl<'n, 'a, 'e> Resolver<'n, 'a, 'e> {
    fn new(
        namespace: &'n Namespace<'a>,
        kind: Option<SectionKind>,
        errors: &'e mut Vec<Diagnostic>,
    ) -> Resolver<'n, 'a, 'e> {
        Resolver {
            namespace,
            kind,
            names: SectionNames::default(),
            scopes: vec![HashMap::new()],
            implicit: HashMap::new(),
            shadowing: HashMap::new(),
            dictionary_only: HashMap::new(),
            ordinal_assignments: Vec::new(),
            loop_depth: 0,
            errors,
        }
    }

    fn error(&mut self, kind: ErrorKind, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.errors
            .push(Diagnostic::new(kind, self.namespace.file, span, message));
        let last = self.errors.len() - 1;
        &mut self.errors[last]
    }

    fn new_slot(&mut self) -> u16 {
        let slot = self.names.locals;
        self.names.locals = self.names.locals.saturating_add(1);
        slot
    }

    fn block(&mut self, block: &Block) {
        self.scopes.push(HashMap::new());
        for statement in &block.statements {
            self.statement(statement);
        }
        self.scopes.pop();
    }

    /// A variable named like a procedure or built-in is allowed (`number =
    /// "5551234";`), but one that is only ever read is almost surely a
    /// function called without its parentheses: `x = Length;`.
    fn report_function_names_used_as_variables(&mut self) {
        let mut unassigned: Vec<Ident> = self
            .shadowing
            .values()
            .filter(|(_, assigned)| !assigned)
            .map(|(first_read, _)| first_read.clone())
            .collect();
        unassigned.sort_by_key(|name| name.span.start);
        for name in unassigned {
            let what = match builtins::lookup(&name.folded) {
                Some((_, builtin)) if builtin.kind == Kind::Function => {
                    format!("built-in function `{}`", builtin.name)
                }
                Some((_, builtin)) => format!("built-in procedure `{}`", builtin.name),
                None => format!("`{}`", name.text),
            };
            let message = format!(
                "`{}` is used as a variable, but it names the {what} and is never assigned",
                name.text
            );
            self.error(ErrorKind::Name, name.span, message).help =
                Some(format!("to call it, write `{}(…)`", name.text));
        }
    }

    /// Reads (`write` false) or assigns a variable.
    fn variable(&mut self, name: &Ident) {
        self.variable_use(name, false);
    }

    fn assigned(&mut self, name: &Ident) {
        self.variable_use(name, true);
    }

    /// A name read or assigned: a `var` in scope, else a file-wide variable,
    /// else the section's own variable of that name.
    fn variable_use(&mut self, name: &Ident, write: bool) {
        let found = self
            .scopes
            .iter()
            .rev()
            .find_map(|scope| scope.get(&*name.folded).copied());
        let place = match found {
            Some(slot) => VarRef::Local(slot),
            None => match self.namespace.globals.get(&*name.folded) {
                Some(&index) => VarRef::Global(index),
                None if self.kind.is_none() => {
                    let message = format!("unknown variable `{}` in a file-wide variable's value", name.text);
                    self.error(ErrorKind::Name, name.span, message).help =
                        Some("only file-wide variables declared with `var` can be used here".into());
                    return;
                }
                None => {
                    let names_a_section = builtins::lookup(&name.folded).is_some()
                        || self.namespace.sections.contains_key(&*name.folded);
                    if names_a_section {
                        let entry = self
                            .shadowing
                            .entry(name.folded.to_string())
                            .or_insert_with(|| (name.clone(), false));
                        entry.1 |= write;
                    }
                    match self.implicit.get(&*name.folded) {
                        Some(&slot) => VarRef::Local(slot),
                        None => {
                            let slot = self.new_slot();
                            self.implicit.insert(name.folded.to_string(), slot);
                            VarRef::Local(slot)
                        }
                    }
                }
            },
        };
        self.names.vars.insert(name.span.start, place);
    }

    fn declare(&mut self, name: &Ident) {
        if self.scopes.len() > 1
            && self
                .scopes
                .last()
                .is_some_and(|scope| scope.contains_key(&*name.folded))
        {
            let message = format!("`{}` is already declared in this block", name.text);
            self.error(ErrorKind::Name, name.span, message).help =
                Some("assign to it instead, or declare it in an inner block to shadow it".into());
        }
        let slot = self.new_slot();
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.folded.to_string(), slot);
        }
        self.names.vars.insert(name.span.start, VarRef::Local(slot));
    }

    fn statement(&mut self, statement: &Stmt) {
        match &statement.kind {
            StmtKind::Empty => {}
            StmtKind::Var(decl) => self.var_decl(decl),
            StmtKind::Assign { place, op, value } => {
                // The value is evaluated before the place is assigned, and a
                // `var` in scope is what both see.
                self.expr(value);
                self.place(place);
                self.track_dictionaries(place, (*op == AssignOp::Set).then_some(value), statement.span);
            }
            StmtKind::Call(call) => self.call_statement(call),
            StmtKind::If { branches, otherwise } => {
                for (condition, block) in branches {
                    self.expr(condition);
                    self.block(block);
                }
                if let Some(block) = otherwise {
                    self.block(block);
                }
            }
            StmtKind::Loop(looping) => self.loop_statement(looping),
            StmtKind::ExitIf(condition) => {
                if self.loop_depth == 0 {
                    self.error(ErrorKind::Usage, statement.span, "`exitif` outside a loop")
                        .help = Some("`exitif` leaves the innermost `loop`, `while` or `for`; use `return` or `stop` to leave a section".into());
                }
                self.expr(condition);
            }
            StmtKind::Return(value) => match (value, self.kind) {
                (Some(value), Some(SectionKind::Function)) => self.expr(value),
                (Some(value), Some(kind)) => {
                    self.expr(value);
                    let message = format!(
                        "{} {} cannot return a value",
                        crate::diagnostic::article(kind.keyword()),
                        kind.keyword()
                    );
                    self.error(ErrorKind::Usage, value.span, message).help =
                        Some("declare it as a `function`, or write `return;`".into());
                }
                _ => {}
            },
            StmtKind::Stop => {}
            StmtKind::Block(block) => self.block(block),
        }
    }

    fn var_decl(&mut self, decl: &VarDecl) {
        for (name, value) in &decl.items {
            if let Some(value) = value {
                self.expr(value);
            }
            self.declare(name);
            if let (Some(value), Some(VarRef::Local(slot))) = (value, self.names.vars.get(&name.span.start)) {
                let slot = *slot;
                self.note_assignment(slot, Some(value));
            }
        }
    }

    /// Records what an assignment tells about dictionaries: which variables
    /// only ever hold one, and which statements assign through `x[i]`.
    fn track_dictionaries(&mut self, place: &Place, value: Option<&Expr>, span: Span) {
        match place {
            Place::Var(name) => {
                if let Some(VarRef::Local(slot)) = self.names.vars.get(&name.span.start).copied() {
                    self.note_assignment(slot, value);
                }
            }
            Place::Index { object, .. } => match &object.kind {
                ExprKind::Var(name) => {
                    if let Some(VarRef::Local(slot)) = self.names.vars.get(&name.span.start).copied() {
                        self.ordinal_assignments.push((slot, span, name.text.clone()));
                    }
                }
                _ if makes_dictionary(object) => {
                    self.ordinal_error(span, "this is a dictionary");
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn note_assignment(&mut self, slot: u16, value: Option<&Expr>) {
        let dictionary = value.is_some_and(makes_dictionary);
        let entry = self.dictionary_only.entry(slot).or_insert(true);
        *entry &= dictionary;
    }

    fn ordinal_error(&mut self, span: Span, label: &str) {
        let diagnostic = self.error(
            ErrorKind::Usage,
            span,
            "cannot assign through a dictionary ordinal",
        );
        diagnostic.label = label.into();
        diagnostic.help = Some(
            "`d[i]` reads the i-th key of a dictionary; assign by key: `d.name = x;` or `d.(key) = x;`"
                .into(),
        );
    }

    /// `d[i] = x` where `d` only ever holds a dictionary is an error found
    /// before the program runs (others are found when it runs).
    fn report_ordinal_assignments(&mut self) {
        let found: Vec<(Span, Rc<str>)> = self
            .ordinal_assignments
            .iter()
            .filter(|(slot, _, _)| self.dictionary_only.get(slot) == Some(&true))
            .map(|(_, span, name)| (*span, name.clone()))
            .collect();
        for (span, name) in found {
            self.ordinal_error(span, &format!("`{name}` is a dictionary"));
        }
    }

    fn loop_statement(&mut self, looping: &Loop) {
        self.scopes.push(HashMap::new());
        if let Some((name, local, start)) = &looping.init {
            self.expr(start);
            if *local {
                self.declare(name);
            } else {
                self.assigned(name);
            }
            if let Some(VarRef::Local(slot)) = self.names.vars.get(&name.span.start).copied() {
                self.note_assignment(slot, Some(start));
            }
        }
        if let Some(condition) = &looping.condition {
            self.expr(condition);
        }
        self.loop_depth += 1;
        self.block(&looping.body);
        self.loop_depth -= 1;
        if let Some((place, op, value, span)) = &looping.step {
            self.expr(value);
            self.place(place);
            self.track_dictionaries(place, (*op == AssignOp::Set).then_some(value), *span);
        }
        self.scopes.pop();
    }

    fn place(&mut self, place: &Place) {
        match place {
            Place::Var(name) => self.assigned(name),
            Place::Index { object, index } => {
                self.expr(object);
                self.expr(index);
            }
            Place::Key { object, .. } => self.expr(object),
            Place::ComputedKey { object, key } => {
                self.expr(object);
                self.expr(key);
            }
        }
    }

    fn call_statement(&mut self, call: &Expr) {
        match &call.kind {
            ExprKind::Call { name, args, method } => {
                self.call(call.span, name, args, *method, true);
            }
            ExprKind::Spawn { entry, args } => self.spawn(entry, args),
            _ => self.expr(call),
        }
    }

    fn expr(&mut self, expr: &Expr) {
        match &expr.kind {
            ExprKind::Null | ExprKind::True | ExprKind::False | ExprKind::Number(_) | ExprKind::String(_) => {
            }
            ExprKind::Var(name) => self.variable(name),
            ExprKind::Unary(_, operand) => self.expr(operand),
            ExprKind::Binary(_, left, right) => {
                self.expr(left);
                self.expr(right);
            }
            ExprKind::Ternary(condition, then, otherwise) => {
                self.expr(condition);
                self.expr(then);
                self.expr(otherwise);
            }
            ExprKind::Call { name, args, method } => {
                self.call(expr.span, name, args, *method, false);
            }
            ExprKind::Index(object, index) | ExprKind::ComputedKey(object, index) => {
                self.expr(object);
                self.expr(index);
            }
            ExprKind::Key(object, _) => self.expr(object),
            ExprKind::Spawn { entry, args } => self.spawn(entry, args),
        }
    }

    fn spawn(&mut self, entry: &Ident, args: &[Expr]) {
        for arg in args {
            self.expr(arg);
        }
        match self.namespace.entries.get(&*entry.folded) {
            Some(&function) => {
                self.names.spawns.insert(entry.span.start, function);
            }
            None => {
                if let Some(section) = self.namespace.sections.get(&*entry.folded) {
                    let message = format!(
                        "`{}` is a {}; only entries can be spawned",
                        entry.text,
                        section.kind.keyword()
                    );
                    self.error(ErrorKind::Usage, entry.span, message).help =
                        Some("`spawn` starts an `entry` of the same program as a new task".into());
                    return;
                }
                let message = format!("no entry `{}` in this program to spawn", entry.text);
                let candidates = self
                    .namespace
                    .entries
                    .keys()
                    .filter_map(|key| self.namespace.spellings.get(key));
                let help = match builtins::closest(&entry.folded, candidates.map(String::as_str)) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => "`spawn` starts an `entry` of the same program as a new task".into(),
                };
                self.error(ErrorKind::Name, entry.span, message).help = Some(help);
            }
        }
    }

    fn call(&mut self, span: Span, name: &QualifiedName, args: &[Expr], method: bool, statement: bool) {
        for arg in args {
            self.expr(arg);
        }
        let key = match &name.module {
            Some(module) => format!("{}::{}", module.folded, name.name.folded),
            None => name.name.folded.to_string(),
        };
        let user = match &name.module {
            Some(_) => self.namespace.qualified.get(&key),
            None => self.namespace.sections.get(&key),
        };
        let shown = name.display();
        if let Some(callee) = user {
            let callee = callee.clone();
            if callee.kind == SectionKind::Entry {
                let message = format!("`{shown}` is an entry, which cannot be called");
                self.error(ErrorKind::Usage, name.span, message).help =
                    Some(format!("start it as a task with `spawn {shown}(…)`"));
                return;
            }
            if args.len() != callee.params {
                let message = if method {
                    format!(
                        "{} takes {} argument{}, but {} {} given (with `x.{}(…)`, `x` is the first)",
                        callee.title,
                        callee.params,
                        plural(callee.params),
                        args.len(),
                        if args.len() == 1 { "was" } else { "were" },
                        callee.name
                    )
                } else {
                    format!(
                        "{} takes {} argument{}, but {} {} given",
                        callee.title,
                        callee.params,
                        plural(callee.params),
                        args.len(),
                        if args.len() == 1 { "was" } else { "were" }
                    )
                };
                let same_file = callee.file == self.namespace.file_id;
                let span_of_definition = callee.span;
                let diagnostic = self.error(ErrorKind::Arity, span, message);
                if same_file {
                    diagnostic.notes.push((span_of_definition, "defined here".into()));
                }
            }
            self.check_usage(name, &shown, callee.kind == SectionKind::Function, statement);
            self.names
                .calls
                .insert(name.name.span.start, CallRef::User(callee.function));
            return;
        }
        if name.module.is_some() {
            let message = format!("unknown procedure or function `{shown}`");
            let module = name.module.as_ref().map_or("", |module| &*module.text);
            self.error(ErrorKind::Name, name.span, message).help = Some(format!(
                "module `{module}` has no procedure or function `{}`",
                name.name.text
            ));
            return;
        }
        let Some((id, builtin)) = builtins::lookup(&name.name.folded) else {
            let own = self
                .namespace
                .sections
                .values()
                .filter(|callee| callee.kind != SectionKind::Entry)
                .map(|callee| callee.name.as_str());
            let candidates = builtins::all().map(|builtin| builtin.name).chain(own);
            let help = builtins::advice_for(&name.name.folded)
                .map(str::to_string)
                .or_else(|| {
                    builtins::closest(&name.name.folded, candidates)
                        .map(|close| format!("did you mean `{close}`?"))
                });
            let message = if builtins::is_unsupported(&name.name.folded) {
                format!("unknown function `{shown}`: not supported by pbxd")
            } else {
                format!("unknown procedure or function `{shown}`")
            };
            let diagnostic = self.error(ErrorKind::Name, name.span, message);
            diagnostic.label = "not defined".into();
            diagnostic.help = help;
            return;
        };
        let (min, max) = (usize::from(builtin.min_args), builtin.max_args());
        if args.len() < min || args.len() > max {
            let expected = match (builtin.min_args, builtin.max_args) {
                (min, max) if min == max => format!("{min}"),
                (min, builtins::VARIADIC) => format!("at least {min}"),
                (min, max) => format!("{min} to {max}"),
            };
            let message = format!(
                "`{}` takes {expected} argument{}, but {} {} given",
                builtin.name,
                plural(builtin.max_args()),
                args.len(),
                if args.len() == 1 { "was" } else { "were" }
            );
            let mut help = format!("{}({})", builtin.name, builtin.signature);
            if method {
                help = format!(
                    "{help}; with method style `x.{}(…)`, `x` is the first argument",
                    builtin.name
                );
            }
            self.error(ErrorKind::Arity, span, message).help = Some(help);
        }
        self.check_usage(name, builtin.name, builtin.kind == Kind::Function, statement);
        self.names
            .calls
            .insert(name.name.span.start, CallRef::Builtin(id));
    }

    fn check_usage(&mut self, name: &QualifiedName, shown: &str, is_function: bool, statement: bool) {
        if is_function && statement {
            let message = format!("function `{shown}` used as a statement; its value would be lost");
            let diagnostic = self.error(ErrorKind::Usage, name.span, message);
            diagnostic.label = "returns a value".into();
            diagnostic.help = Some(format!(
                "to call it for its effect only, write `Void({shown}(…));`"
            ));
        } else if !is_function && !statement {
            let message = format!("procedure `{shown}` used as a value; procedures return nothing");
            let diagnostic = self.error(ErrorKind::Usage, name.span, message);
            diagnostic.label = "returns nothing".into();
            diagnostic.help = Some(format!("call it as a statement: `{shown}(…);`"));
        }
    }
}

/// Whether `expr` makes a fresh dictionary: `NewDictionary()` or `Vars()`.
fn makes_dictionary(expr: &Expr) -> bool {
    matches!(&expr.kind, ExprKind::Call { name, .. }
        if name.module.is_none() && matches!(&*name.name.folded, "newdictionary" | "vars"))
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}
