//! Stage three: from source files to a [`Program`].
//!
//! A program is its main file plus the modules it uses (`m::f(…)`,
//! `procedure m::p(x) external;`, `ProcCall("m::p", …)` with a literal
//! name), loaded through a [`ModuleLoader`] so this crate never touches the
//! file system. Each file is parsed, its sections numbered, every body's
//! names resolved (`resolve`), and each section compiled (`emit`).
//! Independent errors are all reported.

mod emit;

use std::collections::HashMap;
use std::sync::Arc;

use crate::bytecode::{Function, Program, Unverified};
use crate::diagnostic::{Diagnostic, ErrorKind};
use crate::resolve::{self, Callee, Namespace};
use crate::source::{SourceFile, Span};
use crate::syntax::ast::{self, Expr, ExprKind, Item, SectionBody, SectionKind, Stmt, StmtKind};
use crate::syntax::parse_file;

use emit::{Context, Emitter};

/// Most modules one program may pull in.
const MAX_MODULES: usize = 64;

/// Finds module files (`name.sppi`) for the compiler.
pub trait ModuleLoader {
    /// The source of module `name` (as written; match it ignoring case),
    /// or a short reason why it cannot be had.
    fn load(&self, name: &str) -> Result<Arc<SourceFile>, String>;
}

/// A loader for programs that use no modules.
#[derive(Debug, Default)]
pub struct NoModules;

impl ModuleLoader for NoModules {
    fn load(&self, name: &str) -> Result<Arc<SourceFile>, String> {
        Err(format!("no modules are available here (looked for `{name}`)"))
    }
}

/// Modules held in memory, for tests and tools.
#[derive(Debug, Default)]
pub struct MemoryModules {
    modules: HashMap<String, Arc<SourceFile>>,
}

impl MemoryModules {
    /// Adds module `name` with `text`.
    pub fn add(&mut self, name: &str, text: &str) {
        let file = SourceFile::new(format!("{name}.sppi"), text);
        self.modules.insert(name.to_ascii_lowercase(), Arc::new(file));
    }
}

impl ModuleLoader for MemoryModules {
    fn load(&self, name: &str) -> Result<Arc<SourceFile>, String> {
        self.modules
            .get(&name.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| format!("there is no module `{name}`"))
    }
}

/// What kind of file is being compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A program (`.sppr`): it must have `entry Main`.
    Program,
    /// A module (`.sppi`): procedures and functions for other files.
    Module,
}

/// Compiles `main` and the modules it uses.
pub fn compile(main: Arc<SourceFile>, loader: &dyn ModuleLoader) -> Result<Arc<Program>, Vec<Diagnostic>> {
    compile_as(main, FileKind::Program, loader)
}

/// Compiles `main` as a program or a module.
pub fn compile_as(
    main: Arc<SourceFile>,
    kind: FileKind,
    loader: &dyn ModuleLoader,
) -> Result<Arc<Program>, Vec<Diagnostic>> {
    let mut linker = Linker::default();
    let ast = parse_file(&main)?;
    linker.units.push(Unit::new(main, 0, ast, None));
    linker.load_modules(loader);
    if !linker.errors.is_empty() {
        return Err(linker.errors);
    }
    linker.number_sections();
    if kind == FileKind::Program && !linker.entries.contains_key("main") {
        let file = linker.units[0].file.clone();
        linker.errors.push(
            Diagnostic::new(
                ErrorKind::Name,
                &file,
                Span::new(0, 0),
                "this program has no `entry Main`",
            )
            .with_label("a program starts here")
            .with_help("add `entry Main is … end;`, where every call handled by the program starts"),
        );
    }
    let program = linker.compile_sections();
    if !linker.errors.is_empty() {
        return Err(linker.errors);
    }
    // The interpreter trusts verified code, and `verify` is the only way to
    // make a `Program`; a failure here is a compiler bug.
    match crate::bytecode::verify(program) {
        Ok(program) => Ok(Arc::new(program)),
        Err(problem) => Err(vec![Diagnostic::without_place(
            ErrorKind::Internal,
            format!("pbxd compiled this program wrongly ({problem}); please report it"),
        )]),
    }
}

/// One file of the program.
struct Unit {
    file: Arc<SourceFile>,
    file_id: u16,
    ast: ast::File,
    /// Folded module name; `None` for the main file.
    module: Option<String>,
    /// Sections this file defines or declares, by folded name.
    sections: HashMap<String, Callee>,
    /// File-wide variables by folded name.
    globals: HashMap<String, u16>,
    /// The function that sets this file's file-wide variables, if any.
    initializer: Option<u16>,
}

impl Unit {
    fn new(file: Arc<SourceFile>, file_id: u16, ast: ast::File, module: Option<String>) -> Unit {
        Unit {
            file,
            file_id,
            ast,
            module,
            sections: HashMap::new(),
            globals: HashMap::new(),
            initializer: None,
        }
    }
}

/// What a section of a unit compiles to.
struct Planned {
    unit: usize,
    section: usize,
    title: String,
    key: String,
}

#[derive(Default)]
struct Linker {
    units: Vec<Unit>,
    errors: Vec<Diagnostic>,
    planned: Vec<Planned>,
    /// Sections of modules by folded `module::name`.
    qualified: HashMap<String, Callee>,
    entries: HashMap<String, u16>,
    callable: HashMap<String, u16>,
    globals: u16,
    /// Folded names of modules that could not be loaded or parsed.
    failed_modules: Vec<String>,
    /// Spellings of every section's name, by folded name.
    spellings: HashMap<String, String>,
}

impl Linker {
    fn error(
        &mut self,
        unit: usize,
        kind: ErrorKind,
        span: Span,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let file = self.units[unit].file.clone();
        self.errors.push(Diagnostic::new(kind, &file, span, message));
        let last = self.errors.len() - 1;
        &mut self.errors[last]
    }

    /// Loads every module the files mention, and the modules those mention.
    fn load_modules(&mut self, loader: &dyn ModuleLoader) {
        let mut next = 0;
        while next < self.units.len() {
            let mut wanted: Vec<(String, Span)> = Vec::new();
            for item in &self.units[next].ast.items {
                collect_modules(item, &mut wanted);
            }
            for (name, span) in wanted {
                let folded = name.to_ascii_lowercase();
                if self
                    .units
                    .iter()
                    .any(|unit| unit.module.as_deref() == Some(&folded))
                    || self.failed_modules.contains(&folded)
                {
                    continue;
                }
                if self.units.len() >= MAX_MODULES {
                    self.error(
                        next,
                        ErrorKind::Limit,
                        span,
                        format!("more than {MAX_MODULES} modules"),
                    );
                    return;
                }
                match loader.load(&name) {
                    Ok(file) => match parse_file(&file) {
                        Ok(ast) => {
                            let file_id = self.units.len() as u16;
                            self.units.push(Unit::new(file, file_id, ast, Some(folded)));
                        }
                        Err(errors) => {
                            self.failed_modules.push(folded);
                            self.errors.extend(errors);
                        }
                    },
                    Err(reason) => {
                        self.failed_modules.push(folded);
                        self.error(
                            next,
                            ErrorKind::Name,
                            span,
                            format!("cannot load module `{name}`"),
                        )
                        .help = Some(format!(
                            "{reason}; a module is the file `{name}.sppi` in the same environment"
                        ));
                    }
                }
            }
            next += 1;
        }
    }

    /// Gives every section a function number and fills the namespaces.
    fn number_sections(&mut self) {
        for unit_index in 0..self.units.len() {
            let module = self.units[unit_index].module.clone();
            let items: Vec<(usize, ast::Section)> = self.units[unit_index]
                .ast
                .items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| match item {
                    Item::Section(section) => Some((index, section.clone())),
                    Item::Var(_) => None,
                })
                .collect();
            for (section_index, section) in &items {
                let SectionBody::Code(_) = section.body else {
                    continue;
                };
                if section.name.module.is_some() {
                    self.error(unit_index, ErrorKind::Name, section.name.span, "a section defined here cannot have a module name")
                        .help = Some("`module::name` is for `external` declarations and calls; define the section in the module's file".into());
                    continue;
                }
                let folded = section.name.name.folded.to_string();
                if let Some(first) = self.units[unit_index].sections.get(&folded) {
                    let first = first.span;
                    let message = format!("`{}` is defined twice", section.name.name.text);
                    let diagnostic = self.error(unit_index, ErrorKind::Name, section.name.span, message);
                    diagnostic.label = "defined again here".into();
                    diagnostic.notes.push((first, "first defined here".into()));
                    continue;
                }
                let function = self.planned.len() as u16;
                let title = match &module {
                    Some(module) => {
                        format!("{} {module}::{}", section.kind.keyword(), section.name.name.text)
                    }
                    None => format!("{} {}", section.kind.keyword(), section.name.name.text),
                };
                let key = match &module {
                    Some(module) => format!("{module}::{folded}"),
                    None => folded.clone(),
                };
                let callee = Callee {
                    function,
                    kind: section.kind,
                    params: section.params.len(),
                    title: title.clone(),
                    name: section.name.name.text.to_string(),
                    file: self.units[unit_index].file_id,
                    span: section.name.span,
                };
                self.planned.push(Planned {
                    unit: unit_index,
                    section: *section_index,
                    title,
                    key: key.clone(),
                });
                if section.kind == SectionKind::Entry {
                    if module.is_none() {
                        self.entries.insert(folded.clone(), function);
                    }
                } else {
                    self.callable.insert(key.clone(), function);
                    if module.is_some() {
                        self.qualified.insert(key, callee.clone());
                    }
                }
                self.spellings
                    .insert(folded.clone(), section.name.name.text.to_string());
                self.units[unit_index].sections.insert(folded, callee);
            }
        }
        // Declarations: `forward` must match a definition of the same file;
        // `external` one of the named module.
        for unit_index in 0..self.units.len() {
            let declarations: Vec<ast::Section> = self.units[unit_index]
                .ast
                .items
                .iter()
                .filter_map(|item| match item {
                    Item::Section(section) if !matches!(section.body, SectionBody::Code(_)) => {
                        Some(section.clone())
                    }
                    _ => None,
                })
                .collect();
            for declaration in declarations {
                self.declaration(unit_index, &declaration);
            }
            self.number_globals(unit_index);
        }
    }

    fn declaration(&mut self, unit: usize, declaration: &ast::Section) {
        let name = &declaration.name;
        let (target, local_name) = match (&declaration.body, &name.module) {
            (SectionBody::Forward, None) => {
                let found = self.units[unit].sections.get(&*name.name.folded).cloned();
                (found, None)
            }
            (SectionBody::Forward, Some(_)) => {
                self.error(
                    unit,
                    ErrorKind::Name,
                    name.span,
                    "a `forward` declaration cannot have a module name",
                )
                .help = Some("declare module sections `external`".into());
                return;
            }
            (SectionBody::External, Some(module)) => {
                let key = format!("{}::{}", module.folded, name.name.folded);
                (self.qualified.get(&key).cloned(), None)
            }
            (SectionBody::External, None) => {
                // `procedure helper(x) external;` is `helper::helper`.
                let key = format!("{0}::{0}", name.name.folded);
                (
                    self.qualified.get(&key).cloned(),
                    Some(name.name.folded.to_string()),
                )
            }
            (SectionBody::Code(_), _) => return,
        };
        let Some(target) = target else {
            let module = match (&declaration.body, &name.module) {
                (SectionBody::External, Some(module)) => Some(module.folded.to_string()),
                (SectionBody::External, None) => Some(name.name.folded.to_string()),
                _ => None,
            };
            // A module that failed to load was reported already.
            if !module.is_some_and(|module| self.failed_modules.contains(&module)) {
                let message = match declaration.body {
                    SectionBody::Forward => {
                        format!("`{}` is declared `forward` but never defined", name.display())
                    }
                    _ => format!(
                        "`{}` is declared `external` but its module does not define it",
                        name.display()
                    ),
                };
                self.error(unit, ErrorKind::Name, name.span, message);
            }
            // Calls to it are not reported again as unknown.
            if name.module.is_none() {
                let placeholder = Callee {
                    function: u16::MAX,
                    kind: declaration.kind,
                    params: declaration.params.len(),
                    title: format!("{} {}", declaration.kind.keyword(), name.name.text),
                    name: name.name.text.to_string(),
                    file: self.units[unit].file_id,
                    span: name.span,
                };
                self.units[unit]
                    .sections
                    .entry(name.name.folded.to_string())
                    .or_insert(placeholder);
            }
            return;
        };
        if target.kind != declaration.kind || target.params != declaration.params.len() {
            let message = format!(
                "this declaration says {} `{}` takes {} argument{}, but {} takes {}",
                declaration.kind.keyword(),
                name.display(),
                declaration.params.len(),
                if declaration.params.len() == 1 { "" } else { "s" },
                target.title,
                target.params
            );
            let same_file = target.file == self.units[unit].file_id;
            let diagnostic = self.error(unit, ErrorKind::Name, name.span, message);
            if same_file {
                diagnostic.notes.push((target.span, "defined here".into()));
            }
            return;
        }
        if let Some(local_name) = local_name {
            self.units[unit].sections.entry(local_name).or_insert(target);
        }
    }

    fn number_globals(&mut self, unit: usize) {
        let names: Vec<ast::Ident> = self.units[unit]
            .ast
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Var(decl) => Some(
                    decl.items
                        .iter()
                        .map(|(name, _)| name.clone())
                        .collect::<Vec<_>>(),
                ),
                Item::Section(_) => None,
            })
            .flatten()
            .collect();
        for name in names {
            if self.units[unit].globals.contains_key(&*name.folded) {
                let message = format!("file-wide variable `{}` is declared twice", name.text);
                self.error(unit, ErrorKind::Name, name.span, message);
                continue;
            }
            let index = self.globals;
            self.globals = self.globals.saturating_add(1);
            self.units[unit].globals.insert(name.folded.to_string(), index);
        }
    }

    /// The names `unit` can see.
    fn namespace<'a>(&'a self, unit: &'a Unit) -> Namespace<'a> {
        Namespace {
            file: &unit.file,
            file_id: unit.file_id,
            sections: &unit.sections,
            qualified: &self.qualified,
            entries: &self.entries,
            globals: &unit.globals,
            spellings: &self.spellings,
        }
    }

    fn compile_sections(&mut self) -> Unverified {
        let mut functions: Vec<Function> = Vec::with_capacity(self.planned.len());
        let mut errors = Vec::new();
        for plan in &self.planned {
            let unit = &self.units[plan.unit];
            let Item::Section(section) = &unit.ast.items[plan.section] else {
                continue;
            };
            let SectionBody::Code(body) = &section.body else {
                continue;
            };
            let namespace = self.namespace(unit);
            let names =
                resolve::resolve_section(&namespace, Some(section.kind), &section.params, body, &mut errors);
            let mut emitter = Emitter::new(Context {
                file: &unit.file,
                file_id: unit.file_id,
                names: &names,
            });
            emitter.block(body);
            functions.push(emitter.finish(
                plan.title.clone(),
                plan.key.clone(),
                section.kind,
                section.params.len() as u16,
                &mut errors,
            ));
        }
        // File-wide variables with initial values get a function per file,
        // which every entry calls first.
        for unit_index in 0..self.units.len() {
            let unit = &self.units[unit_index];
            let initializers: Vec<(u16, &Expr)> = unit
                .ast
                .items
                .iter()
                .filter_map(|item| match item {
                    Item::Var(decl) => Some(decl.items.iter()),
                    Item::Section(_) => None,
                })
                .flatten()
                .filter_map(|(name, value)| Some((*unit.globals.get(&*name.folded)?, value.as_ref()?)))
                .collect();
            if initializers.is_empty() {
                continue;
            }
            let namespace = self.namespace(unit);
            let mut all_names = resolve::SectionNames::default();
            for (_, value) in &initializers {
                let names = resolve::resolve_initializer(&namespace, value, &mut errors);
                all_names.vars.extend(names.vars);
                all_names.calls.extend(names.calls);
                all_names.spawns.extend(names.spawns);
            }
            let mut emitter = Emitter::new(Context {
                file: &unit.file,
                file_id: unit.file_id,
                names: &all_names,
            });
            for (global, value) in &initializers {
                emitter.initializer(*global, value);
            }
            let index = functions.len() as u16;
            functions.push(emitter.finish(
                format!("the file-wide variables of {}", unit.file.name()),
                String::new(),
                SectionKind::Procedure,
                0,
                &mut errors,
            ));
            self.units[unit_index].initializer = Some(index);
        }
        let initializers: Vec<u16> = self.units.iter().filter_map(|unit| unit.initializer).collect();
        if !initializers.is_empty() {
            for &entry in self.entries.values() {
                prepend_calls(&mut functions[usize::from(entry)], &initializers);
            }
        }
        self.errors.extend(errors);
        Unverified {
            files: self.units.iter().map(|unit| unit.file.clone()).collect(),
            functions,
            entries: self.entries.clone(),
            callable: self.callable.clone(),
            globals: self.globals,
        }
    }
}

/// Makes `function` start by calling each of `callees` (no arguments).
fn prepend_calls(function: &mut Function, callees: &[u16]) {
    use crate::bytecode::Instr;
    let shift = callees.len() as u16;
    // The calls use one register above everything the function uses.
    let base = function.registers;
    function.registers = function.registers.saturating_add(1);
    for instr in &mut function.code {
        *instr = instr.retarget(|target| target + shift);
    }
    let span = function.spans.first().copied().unwrap_or_default();
    let calls = callees.iter().map(|&callee| Instr::Call {
        function: callee,
        base,
    });
    function.code.splice(0..0, calls);
    function
        .spans
        .splice(0..0, std::iter::repeat_n(span, callees.len()));
}

/// Module names an item mentions, with where.
fn collect_modules(item: &Item, wanted: &mut Vec<(String, Span)>) {
    match item {
        Item::Var(decl) => {
            for (_, value) in &decl.items {
                if let Some(value) = value {
                    walk_expr(value, wanted);
                }
            }
        }
        Item::Section(section) => {
            match (&section.body, &section.name.module) {
                (SectionBody::External, Some(module)) => wanted.push((module.text.to_string(), module.span)),
                (SectionBody::External, None) => {
                    wanted.push((section.name.name.text.to_string(), section.name.span))
                }
                _ => {}
            }
            if let SectionBody::Code(body) = &section.body {
                walk_block(body, wanted);
            }
        }
    }
}

fn walk_block(block: &ast::Block, wanted: &mut Vec<(String, Span)>) {
    for statement in &block.statements {
        walk_statement(statement, wanted);
    }
}

fn walk_statement(statement: &Stmt, wanted: &mut Vec<(String, Span)>) {
    match &statement.kind {
        StmtKind::Var(decl) => {
            for value in decl.items.iter().filter_map(|(_, value)| value.as_ref()) {
                walk_expr(value, wanted);
            }
        }
        StmtKind::Assign { place, value, .. } => {
            walk_place(place, wanted);
            walk_expr(value, wanted);
        }
        StmtKind::Call(expr) | StmtKind::ExitIf(expr) | StmtKind::Return(Some(expr)) => {
            walk_expr(expr, wanted)
        }
        StmtKind::If { branches, otherwise } => {
            for (condition, block) in branches {
                walk_expr(condition, wanted);
                walk_block(block, wanted);
            }
            if let Some(block) = otherwise {
                walk_block(block, wanted);
            }
        }
        StmtKind::Loop(looping) => {
            if let Some((_, _, start)) = &looping.init {
                walk_expr(start, wanted);
            }
            if let Some(condition) = &looping.condition {
                walk_expr(condition, wanted);
            }
            if let Some((place, _, value, _)) = &looping.step {
                walk_place(place, wanted);
                walk_expr(value, wanted);
            }
            walk_block(&looping.body, wanted);
        }
        StmtKind::Block(block) => walk_block(block, wanted),
        StmtKind::Empty | StmtKind::Return(None) | StmtKind::Stop => {}
    }
}

fn walk_place(place: &ast::Place, wanted: &mut Vec<(String, Span)>) {
    match place {
        ast::Place::Var(_) => {}
        ast::Place::Index { object, index: key } | ast::Place::ComputedKey { object, key } => {
            walk_expr(object, wanted);
            walk_expr(key, wanted);
        }
        ast::Place::Key { object, .. } => walk_expr(object, wanted),
    }
}

fn walk_expr(expr: &Expr, wanted: &mut Vec<(String, Span)>) {
    match &expr.kind {
        ExprKind::Call { name, args, .. } => {
            if let Some(module) = &name.module {
                wanted.push((module.text.to_string(), module.span));
            }
            let dynamic = matches!(&*name.name.folded, "proccall" | "funccall") && name.module.is_none();
            if let (
                true,
                Some(Expr {
                    kind: ExprKind::String(bytes),
                    span,
                }),
            ) = (dynamic, args.first())
            {
                let text = String::from_utf8_lossy(bytes);
                if let Some((module, _)) = text.split_once("::") {
                    wanted.push((module.to_string(), *span));
                }
            }
            for arg in args {
                walk_expr(arg, wanted);
            }
        }
        ExprKind::Spawn { args, .. } => {
            for arg in args {
                walk_expr(arg, wanted);
            }
        }
        ExprKind::Unary(_, operand) | ExprKind::Key(operand, _) => walk_expr(operand, wanted),
        ExprKind::Binary(_, left, right)
        | ExprKind::Index(left, right)
        | ExprKind::ComputedKey(left, right) => {
            walk_expr(left, wanted);
            walk_expr(right, wanted);
        }
        ExprKind::Ternary(a, b, c) => {
            walk_expr(a, wanted);
            walk_expr(b, wanted);
            walk_expr(c, wanted);
        }
        ExprKind::Null
        | ExprKind::True
        | ExprKind::False
        | ExprKind::Number(_)
        | ExprKind::String(_)
        | ExprKind::Var(_) => {}
    }
}
