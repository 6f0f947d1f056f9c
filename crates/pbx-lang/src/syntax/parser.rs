//! Text to AST. pest does the parsing; this module turns its pairs into
//! [`ast`] nodes and its errors into diagnostics. No pest type leaves it.

use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;

use super::ast::*;
use super::errors::syntax_error;
use super::scan;
use crate::diagnostic::{Diagnostic, ErrorKind};
use crate::source::{SourceFile, Span};

#[derive(pest_derive::Parser)]
#[grammar = "syntax/grammar.pest"]
pub(super) struct Grammar;

/// How deep statements and expressions may nest in the tree. The compiler
/// walks the tree recursively, so this bounds its stack use.
pub const MAX_DEPTH: u32 = 200;

/// How many prefix operators may stand in a row (`- - - x`).
const MAX_PREFIX_RUN: usize = 32;

fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        // Lowest first (CGPL.md §0.4). Ternary sits below these, in the grammar.
        PrattParser::new()
            .op(Op::infix(Rule::op_and, Assoc::Left)
                | Op::infix(Rule::op_or, Assoc::Left)
                | Op::infix(Rule::op_xor, Assoc::Left))
            .op(Op::infix(Rule::op_lt, Assoc::Left)
                | Op::infix(Rule::op_le, Assoc::Left)
                | Op::infix(Rule::op_gt, Assoc::Left)
                | Op::infix(Rule::op_ge, Assoc::Left)
                | Op::infix(Rule::op_eq, Assoc::Left)
                | Op::infix(Rule::op_ne, Assoc::Left))
            .op(Op::infix(Rule::op_add, Assoc::Left) | Op::infix(Rule::op_sub, Assoc::Left))
            .op(Op::infix(Rule::op_mul, Assoc::Left)
                | Op::infix(Rule::op_div, Assoc::Left)
                | Op::infix(Rule::op_mod, Assoc::Left))
            .op(Op::prefix(Rule::op_neg) | Op::prefix(Rule::op_pos) | Op::prefix(Rule::op_not))
    })
}

/// Parses a whole file. On syntax errors, returns one diagnostic for each
/// section that does not parse.
pub fn parse_file(file: &Arc<SourceFile>) -> Result<File, Vec<Diagnostic>> {
    pest::set_error_detail(true);
    let text = file.text();
    let scanned = scan::scan(text);
    if !scanned.errors.is_empty() {
        return Err(scanned
            .errors
            .into_iter()
            .map(|error| {
                let diagnostic = Diagnostic::new(ErrorKind::Syntax, file, error.span, error.message)
                    .with_label(error.label);
                match error.help {
                    Some(help) => diagnostic.with_help(help),
                    None => diagnostic,
                }
            })
            .collect());
    }
    match Grammar::parse(Rule::program, text) {
        Ok(mut pairs) => {
            let mut builder = Builder::new(file);
            let program = pairs.next().map(|pair| builder.file(pair)).unwrap_or_default();
            if builder.errors.is_empty() {
                Ok(program)
            } else {
                Err(builder.errors)
            }
        }
        Err(whole_file_error) => Err(recover(file, &scanned.section_starts, whole_file_error)),
    }
}

/// Parses each section on its own, so that independent syntax errors are
/// all reported.
fn recover(
    file: &Arc<SourceFile>,
    section_starts: &[usize],
    whole_file_error: pest::error::Error<Rule>,
) -> Vec<Diagnostic> {
    let text = file.text();
    let mut bounds: Vec<usize> = section_starts.to_vec();
    if bounds.first() != Some(&0) {
        bounds.insert(0, 0);
    }
    bounds.push(text.len());
    let mut errors = Vec::new();
    for window in bounds.windows(2) {
        let (start, end) = (window[0], window[1]);
        let Some(chunk) = text.get(start..end) else {
            continue;
        };
        if let Err(error) = Grammar::parse(Rule::program, chunk) {
            errors.push(syntax_error(file, &error, start));
        }
    }
    if errors.is_empty() {
        errors.push(syntax_error(file, &whole_file_error, 0));
    }
    errors
}

/// Parses one expression (for tests and tools).
pub fn parse_expression(file: &Arc<SourceFile>) -> Result<Expr, Vec<Diagnostic>> {
    pest::set_error_detail(true);
    let scanned = scan::scan(file.text());
    if let Some(error) = scanned.errors.into_iter().next() {
        return Err(vec![Diagnostic::new(
            ErrorKind::Syntax,
            file,
            error.span,
            error.message,
        )]);
    }
    let mut pairs = Grammar::parse(Rule::expression_only, file.text())
        .map_err(|error| vec![syntax_error(file, &error, 0)])?;
    let mut builder = Builder::new(file);
    let top = pairs.next().and_then(|pair| pair.into_inner().next());
    let expr = match top {
        Some(pair) => builder.expr(pair),
        None => Expr {
            kind: ExprKind::Null,
            span: Span::default(),
        },
    };
    if builder.errors.is_empty() {
        Ok(expr)
    } else {
        Err(builder.errors)
    }
}

fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let span = pair.as_span();
    Span::new(span.start(), span.end())
}

/// Turns pairs into AST nodes, collecting the errors that the grammar
/// cannot express (bad escapes, numbers too large, things that cannot be
/// assigned to...).
struct Builder<'f> {
    file: &'f Arc<SourceFile>,
    errors: Vec<Diagnostic>,
    depth: u32,
    reported_depth: bool,
}

impl<'f> Builder<'f> {
    fn new(file: &'f Arc<SourceFile>) -> Builder<'f> {
        Builder {
            file,
            errors: Vec::new(),
            depth: 0,
            reported_depth: false,
        }
    }

    fn error(&mut self, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.errors
            .push(Diagnostic::new(ErrorKind::Syntax, self.file, span, message));
        let last = self.errors.len() - 1;
        &mut self.errors[last]
    }

    /// Enters one level of nesting; false (with an error) when too deep.
    /// Every call is paired with a call to `leave`.
    fn enter(&mut self, span: Span) -> bool {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.too_deep(span);
            return false;
        }
        true
    }

    /// Reports (once per file) that the code nests too deeply.
    fn too_deep(&mut self, span: Span) {
        if !self.reported_depth {
            self.reported_depth = true;
            self.error(
                span,
                format!("code nested too deeply (more than {MAX_DEPTH} levels)"),
            )
            .help = Some("move the inner part into a procedure or a variable".into());
        }
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn file(&mut self, pair: Pair<'_, Rule>) -> File {
        let mut items = Vec::new();
        for item in pair.into_inner() {
            match item.as_rule() {
                Rule::entry | Rule::procedure | Rule::function => {
                    items.push(Item::Section(self.section(item)))
                }
                Rule::top_var => {
                    if let Some(decl) = item.into_inner().next() {
                        items.push(Item::Var(self.var_decl(decl)));
                    }
                }
                _ => {}
            }
        }
        File { items }
    }

    fn ident(&self, pair: &Pair<'_, Rule>) -> Ident {
        Ident::new(pair.as_str(), span_of(pair))
    }

    fn qname(&self, pair: Pair<'_, Rule>) -> QualifiedName {
        let span = span_of(&pair);
        let mut names: Vec<Ident> = pair.into_inner().map(|name| self.ident(&name)).collect();
        let name = names.pop().unwrap_or_else(|| Ident::new("", span));
        QualifiedName {
            module: names.pop(),
            name,
            span,
        }
    }

    fn section(&mut self, pair: Pair<'_, Rule>) -> Section {
        let span = span_of(&pair);
        let kind = match pair.as_rule() {
            Rule::entry => SectionKind::Entry,
            Rule::procedure => SectionKind::Procedure,
            _ => SectionKind::Function,
        };
        let mut name = None;
        let mut params = Vec::new();
        let mut body = SectionBody::Forward;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::name => {
                    let ident = self.ident(&part);
                    name = Some(QualifiedName {
                        module: None,
                        span: ident.span,
                        name: ident,
                    });
                }
                Rule::qname => name = Some(self.qname(part)),
                Rule::params => {
                    params = part
                        .into_inner()
                        .filter(|param| param.as_rule() == Rule::name)
                        .map(|param| self.ident(&param))
                        .collect()
                }
                Rule::forward_decl => body = SectionBody::Forward,
                Rule::external_decl => body = SectionBody::External,
                Rule::is_body | Rule::block => {
                    if let Some(closer) = part
                        .clone()
                        .into_inner()
                        .find(|piece| piece.as_rule() == Rule::section_closer)
                    {
                        self.check_closer(kind, &closer);
                    }
                    body = SectionBody::Code(self.body(part))
                }
                _ => {}
            }
        }
        let name = name.unwrap_or_else(|| QualifiedName {
            module: None,
            name: Ident::new("", span),
            span,
        });
        Section {
            kind,
            name,
            params,
            body,
            span,
        }
    }

    /// `end entry;` may only close an entry, and so on (CGPL.md §0.1).
    fn check_closer(&mut self, kind: SectionKind, closer: &Pair<'_, Rule>) {
        let written = closer.as_str().to_ascii_lowercase();
        if written != kind.keyword() {
            let keyword = kind.keyword();
            let message = format!(
                "`end {written}` cannot close {} {keyword}",
                crate::diagnostic::article(keyword)
            );
            self.error(span_of(closer), message).help = Some(format!("write `end {keyword};` or `end;`"));
        }
    }

    /// `is … end;` or `{ … }`, or any rule holding one `statements`.
    fn body(&mut self, pair: Pair<'_, Rule>) -> Block {
        let span = span_of(&pair);
        let statements = pair.into_inner().find(|part| part.as_rule() == Rule::statements);
        match statements {
            Some(statements) => self.statements(statements, span),
            None => Block {
                statements: Vec::new(),
                span,
            },
        }
    }

    fn statements(&mut self, pair: Pair<'_, Rule>, span: Span) -> Block {
        let mut statements = Vec::new();
        if self.enter(span) {
            for statement in pair.into_inner() {
                if let Some(statement) = self.statement(statement) {
                    statements.push(statement);
                }
            }
        }
        self.leave();
        Block { statements, span }
    }

    fn statement(&mut self, pair: Pair<'_, Rule>) -> Option<Stmt> {
        let span = span_of(&pair);
        let kind = match pair.as_rule() {
            Rule::empty_stmt | Rule::null_stmt => StmtKind::Empty,
            Rule::var_decl => StmtKind::Var(self.var_decl(pair)),
            Rule::exitif_stmt => StmtKind::ExitIf(self.first_expr(pair, span)),
            Rule::return_stmt => StmtKind::Return(
                pair.into_inner()
                    .find(|part| part.as_rule() == Rule::expr)
                    .map(|expr| self.expr(expr)),
            ),
            Rule::stop_stmt => StmtKind::Stop,
            Rule::block => StmtKind::Block(self.body(pair)),
            Rule::if_stmt => self.if_stmt(pair),
            Rule::loop_stmt => {
                let body = pair
                    .into_inner()
                    .find(|part| matches!(part.as_rule(), Rule::block | Rule::loop_rest))
                    .map(|part| self.body(part))
                    .unwrap_or_default();
                StmtKind::Loop(Box::new(Loop {
                    init: None,
                    condition: None,
                    step: None,
                    body,
                }))
            }
            Rule::while_stmt => {
                let mut condition = None;
                let mut body = Block::default();
                for part in pair.into_inner() {
                    match part.as_rule() {
                        Rule::expr => condition = Some(self.expr(part)),
                        Rule::loop_end_body | Rule::block => body = self.body(part),
                        _ => {}
                    }
                }
                StmtKind::Loop(Box::new(Loop {
                    init: None,
                    condition,
                    step: None,
                    body,
                }))
            }
            Rule::for_stmt => self.for_stmt(pair),
            Rule::simple_stmt => return self.simple_stmt(pair),
            _ => return None,
        };
        Some(Stmt { kind, span })
    }

    fn first_expr(&mut self, pair: Pair<'_, Rule>, span: Span) -> Expr {
        match pair.into_inner().find(|part| part.as_rule() == Rule::expr) {
            Some(expr) => self.expr(expr),
            None => Expr {
                kind: ExprKind::Null,
                span,
            },
        }
    }

    fn var_decl(&mut self, pair: Pair<'_, Rule>) -> VarDecl {
        let span = span_of(&pair);
        let mut items = Vec::new();
        for item in pair.into_inner() {
            if item.as_rule() != Rule::var_item {
                continue;
            }
            let mut parts = item.into_inner();
            let Some(name) = parts.next() else { continue };
            let name = self.ident(&name);
            let init = parts.next().map(|expr| self.expr(expr));
            items.push((name, init));
        }
        VarDecl { items, span }
    }

    fn if_stmt(&mut self, pair: Pair<'_, Rule>) -> StmtKind {
        let mut branches = Vec::new();
        let mut otherwise = None;
        let mut condition = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::expr => condition = Some(self.expr(part)),
                Rule::if_then_tail | Rule::if_brace_tail => {
                    let mut first = true;
                    for tail in part.into_inner() {
                        match tail.as_rule() {
                            Rule::statements | Rule::block if first => {
                                first = false;
                                let span = span_of(&tail);
                                let block = if tail.as_rule() == Rule::block {
                                    self.body(tail)
                                } else {
                                    self.statements(tail, span)
                                };
                                if let Some(condition) = condition.take() {
                                    branches.push((condition, block));
                                }
                            }
                            Rule::elif_then | Rule::elif_brace => {
                                let mut elif_condition = None;
                                for piece in tail.into_inner() {
                                    match piece.as_rule() {
                                        Rule::expr => elif_condition = Some(self.expr(piece)),
                                        Rule::statements => {
                                            let span = span_of(&piece);
                                            let block = self.statements(piece, span);
                                            if let Some(condition) = elif_condition.take() {
                                                branches.push((condition, block));
                                            }
                                        }
                                        Rule::block => {
                                            let block = self.body(piece);
                                            if let Some(condition) = elif_condition.take() {
                                                branches.push((condition, block));
                                            }
                                        }
                                        _ => {}
                                    }
                                }
                            }
                            Rule::else_then | Rule::else_brace => {
                                otherwise = self.else_part(tail);
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        StmtKind::If { branches, otherwise }
    }

    fn else_part(&mut self, pair: Pair<'_, Rule>) -> Option<Block> {
        for piece in pair.into_inner() {
            let span = span_of(&piece);
            match piece.as_rule() {
                Rule::statements => return Some(self.statements(piece, span)),
                Rule::block => return Some(self.body(piece)),
                Rule::if_stmt => {
                    // `else if …`: a block holding that one statement.
                    if !self.enter(span) {
                        self.leave();
                        return None;
                    }
                    let kind = self.if_stmt(piece);
                    self.leave();
                    return Some(Block {
                        statements: vec![Stmt { kind, span }],
                        span,
                    });
                }
                _ => {}
            }
        }
        None
    }

    fn for_stmt(&mut self, pair: Pair<'_, Rule>) -> StmtKind {
        let mut local = false;
        let mut variable = None;
        let mut start = None;
        let mut condition = None;
        let mut step = None;
        let mut body = Block::default();
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::for_var => local = true,
                Rule::name => variable = Some(self.ident(&part)),
                Rule::expr => start = Some(self.expr(part)),
                Rule::for_while => {
                    let span = span_of(&part);
                    condition = Some(self.first_expr(part, span));
                }
                Rule::for_by => {
                    let span = span_of(&part);
                    let mut target = None;
                    let mut op = AssignOp::Set;
                    let mut value = None;
                    for piece in part.into_inner() {
                        match piece.as_rule() {
                            Rule::postfix_expr => target = Some(self.postfix_expr(piece)),
                            Rule::assign_op => op = assign_op(piece.as_str()),
                            Rule::expr => value = Some(self.expr(piece)),
                            _ => {}
                        }
                    }
                    if let (Some(target), Some(value)) = (target, value) {
                        if let Some(place) = self.place(target) {
                            step = Some((place, op, value, span));
                        }
                    }
                }
                Rule::loop_end_body | Rule::block => body = self.body(part),
                _ => {}
            }
        }
        let init = match (variable, start) {
            (Some(variable), Some(start)) => Some((variable, local, start)),
            _ => None,
        };
        StmtKind::Loop(Box::new(Loop {
            init,
            condition,
            step,
            body,
        }))
    }

    fn simple_stmt(&mut self, pair: Pair<'_, Rule>) -> Option<Stmt> {
        let span = span_of(&pair);
        let mut target = None;
        let mut op = None;
        let mut value = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::postfix_expr => target = Some(self.postfix_expr(part)),
                Rule::assign_op => op = Some(assign_op(part.as_str())),
                Rule::expr => value = Some(self.expr(part)),
                _ => {}
            }
        }
        let target = target?;
        let kind = match (op, value) {
            (Some(op), Some(value)) => {
                let place = self.place(target)?;
                StmtKind::Assign { place, op, value }
            }
            _ => match target.kind {
                ExprKind::Call { .. } | ExprKind::Spawn { .. } => StmtKind::Call(target),
                ExprKind::Var(ref name) => {
                    let message = format!("`{}` alone is not a statement", name.text);
                    let help = match crate::builtins::advice_for(&name.folded) {
                        Some(advice) => format!("there is no `{}` in this language: {advice}", name.text),
                        None => format!(
                            "assign to it (`{} = …;`) or call a procedure (`{}(…);`)",
                            name.text, name.text
                        ),
                    };
                    self.error(target.span, message).help = Some(help);
                    return None;
                }
                _ => {
                    self.error(target.span, "this expression is not a statement")
                        .help = Some(
                        "a statement is an assignment or a procedure call; wrap a function call in `Void(…)` to discard its value"
                            .into(),
                    );
                    return None;
                }
            },
        };
        Some(Stmt { kind, span })
    }

    /// Turns an expression into an assignment target, or reports why not.
    fn place(&mut self, target: Expr) -> Option<Place> {
        match target.kind {
            ExprKind::Var(name) => Some(Place::Var(name)),
            ExprKind::Index(object, index) => Some(Place::Index { object, index }),
            ExprKind::Key(object, key) => Some(Place::Key { object, key }),
            ExprKind::ComputedKey(object, key) => Some(Place::ComputedKey { object, key }),
            _ => {
                self.error(target.span, "cannot assign to this expression").help =
                    Some("assign to a variable, an element `x[i]`, or a key `x.name` / `x.(expr)`".into());
                None
            }
        }
    }

    fn expr(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = span_of(&pair);
        match pair.as_rule() {
            // One level of nesting per expression (a bracket, an argument),
            // not per grammar rule on the way down.
            Rule::expr => {
                if !self.enter(span) {
                    self.leave();
                    return Expr {
                        kind: ExprKind::Null,
                        span,
                    };
                }
                let expr = match pair.into_inner().next() {
                    Some(inner) => self.expr(inner),
                    None => Expr {
                        kind: ExprKind::Null,
                        span,
                    },
                };
                self.leave();
                expr
            }
            _ => self.expr_inner(pair, span),
        }
    }

    fn expr_inner(&mut self, pair: Pair<'_, Rule>, span: Span) -> Expr {
        match pair.as_rule() {
            Rule::ternary => {
                let mut parts = pair
                    .into_inner()
                    .filter(|part| matches!(part.as_rule(), Rule::binary | Rule::expr));
                let condition = parts.next().map(|part| self.expr(part));
                let then = parts.next().map(|part| self.expr(part));
                let otherwise = parts.next().map(|part| self.expr(part));
                match (condition, then, otherwise) {
                    (Some(condition), Some(then), Some(otherwise)) => Expr {
                        kind: ExprKind::Ternary(Box::new(condition), Box::new(then), Box::new(otherwise)),
                        span,
                    },
                    (Some(condition), _, _) => condition,
                    _ => Expr {
                        kind: ExprKind::Null,
                        span,
                    },
                }
            }
            Rule::binary => self.binary(pair.into_inner()),
            Rule::postfix_expr => self.postfix_expr(pair),
            _ => Expr {
                kind: ExprKind::Null,
                span,
            },
        }
    }

    fn binary(&mut self, pairs: Pairs<'_, Rule>) -> Expr {
        // The PrattParser recurses once per prefix operator in a row.
        let mut run = 0;
        for pair in pairs.clone() {
            if matches!(pair.as_rule(), Rule::op_neg | Rule::op_pos | Rule::op_not) {
                run += 1;
                if run > MAX_PREFIX_RUN {
                    self.too_deep(span_of(&pair));
                    return Expr {
                        kind: ExprKind::Null,
                        span: span_of(&pair),
                    };
                }
            } else {
                run = 0;
            }
        }
        // The PrattParser's closures cannot all borrow `self` mutably at once,
        // so errors from operands go through a RefCell.
        let builder = std::cell::RefCell::new(self);
        let expr = pratt()
            .map_primary(|primary| builder.borrow_mut().postfix_expr(primary))
            .map_prefix(|op, operand| {
                let op_span = span_of(&op);
                if op.as_rule() == Rule::op_neg {
                    if let Some(smallest) = builder.borrow_mut().smallest_number(&operand) {
                        return Expr {
                            span: op_span.to(operand.span),
                            kind: ExprKind::Number(smallest),
                        };
                    }
                }
                let op = match op.as_rule() {
                    Rule::op_neg => UnaryOp::Neg,
                    Rule::op_pos => UnaryOp::Plus,
                    _ => UnaryOp::Not,
                };
                Expr {
                    span: op_span.to(operand.span),
                    kind: ExprKind::Unary(op, Box::new(operand)),
                }
            })
            .map_infix(|left, op, right| {
                let op = match op.as_rule() {
                    Rule::op_add => BinaryOp::Add,
                    Rule::op_sub => BinaryOp::Sub,
                    Rule::op_mul => BinaryOp::Mul,
                    Rule::op_div => BinaryOp::Div,
                    Rule::op_mod => BinaryOp::Mod,
                    Rule::op_lt => BinaryOp::Lt,
                    Rule::op_le => BinaryOp::Le,
                    Rule::op_gt => BinaryOp::Gt,
                    Rule::op_ge => BinaryOp::Ge,
                    Rule::op_eq => BinaryOp::Eq,
                    Rule::op_ne => BinaryOp::Ne,
                    Rule::op_and => BinaryOp::And,
                    Rule::op_or => BinaryOp::Or,
                    _ => BinaryOp::Xor,
                };
                let span = left.span.to(right.span);
                let depth = tree_depth(&left).max(tree_depth(&right)) + 1;
                if depth > MAX_DEPTH {
                    // Keep the tree shallow: a long chain of operators would
                    // make the compiler (and dropping the tree) recurse deeply.
                    builder.borrow_mut().too_deep(span);
                    return Expr {
                        kind: ExprKind::Null,
                        span,
                    };
                }
                Expr {
                    kind: ExprKind::Binary(op, Box::new(left), Box::new(right)),
                    span,
                }
            })
            .parse(pairs);
        expr
    }

    /// `-9223372036854775808`: the literal alone is too large, but negated it
    /// is the smallest number. Withdraws the "too large" error if so.
    fn smallest_number(&mut self, operand: &Expr) -> Option<i64> {
        let text = self
            .file
            .text()
            .get(operand.span.start as usize..operand.span.end as usize)?;
        if text != "9223372036854775808" {
            return None;
        }
        let position = self.errors.iter().rposition(|error| {
            error
                .place
                .as_ref()
                .is_some_and(|(_, span)| *span == operand.span)
        })?;
        self.errors.remove(position);
        Some(i64::MIN)
    }

    fn postfix_expr(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let mut parts = pair.into_inner();
        let Some(first) = parts.next() else {
            return Expr {
                kind: ExprKind::Null,
                span: Span::default(),
            };
        };
        let first_span = span_of(&first);
        // A name directly followed by arguments is a call.
        let mut pending_call: Option<QualifiedName> = None;
        let mut expr = match first.as_rule() {
            Rule::qname => {
                let name = self.qname(first);
                pending_call = Some(name.clone());
                qname_as_variable(name)
            }
            _ => self.primary(first),
        };
        let mut is_first_postfix = true;
        for part in parts {
            let part_span = span_of(&part);
            let span = first_span.to(part_span);
            expr = match part.as_rule() {
                Rule::call_args => match pending_call.take().filter(|_| is_first_postfix) {
                    Some(name) => Expr {
                        kind: ExprKind::Call {
                            name,
                            args: self.args(part),
                            method: false,
                        },
                        span,
                    },
                    None => {
                        self.error(part_span, "only a procedure or function name can be called")
                            .help = Some("write `Name(arguments)`".into());
                        expr
                    }
                },
                Rule::index => {
                    let index = self.first_expr(part, part_span);
                    Expr {
                        kind: ExprKind::Index(Box::new(expr), Box::new(index)),
                        span,
                    }
                }
                Rule::key => {
                    let key = part
                        .into_inner()
                        .next()
                        .map(|name| Rc::<str>::from(name.as_str()))
                        .unwrap_or_else(|| Rc::from(""));
                    Expr {
                        kind: ExprKind::Key(Box::new(expr), key),
                        span,
                    }
                }
                Rule::computed_key => {
                    let key = self.first_expr(part, part_span);
                    Expr {
                        kind: ExprKind::ComputedKey(Box::new(expr), Box::new(key)),
                        span,
                    }
                }
                Rule::method_call => {
                    let mut name = None;
                    let mut args = vec![expr];
                    for piece in part.into_inner() {
                        match piece.as_rule() {
                            Rule::qname => name = Some(self.qname(piece)),
                            Rule::call_args => args.extend(self.args(piece)),
                            _ => {}
                        }
                    }
                    let name = name.unwrap_or_else(|| QualifiedName {
                        module: None,
                        name: Ident::new("", part_span),
                        span: part_span,
                    });
                    Expr {
                        kind: ExprKind::Call {
                            name,
                            args,
                            method: true,
                        },
                        span,
                    }
                }
                _ => expr,
            };
            pending_call = None;
            is_first_postfix = false;
            if tree_depth(&expr) > MAX_DEPTH {
                self.too_deep(span);
                return Expr {
                    kind: ExprKind::Null,
                    span,
                };
            }
        }
        if let (ExprKind::Var(_), Some(name)) = (&expr.kind, &pending_call) {
            if name.module.is_some() {
                self.error(
                    name.span,
                    format!("`{}` names a module's procedure or function", name.display()),
                )
                .help = Some(format!("call it: `{}(…)`", name.display()));
            }
        }
        expr
    }

    fn args(&mut self, pair: Pair<'_, Rule>) -> Vec<Expr> {
        pair.into_inner()
            .filter(|part| part.as_rule() == Rule::expr)
            .map(|part| self.expr(part))
            .collect()
    }

    fn primary(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = span_of(&pair);
        let kind = match pair.as_rule() {
            Rule::number => match pair.as_str().parse::<i64>() {
                Ok(number) => ExprKind::Number(number),
                Err(_) => {
                    self.error(span, "number too large").help =
                        Some(format!("numbers are 64-bit: the largest is {}", i64::MAX));
                    ExprKind::Number(0)
                }
            },
            Rule::string => {
                let body = pair.into_inner().next();
                let (text, offset) = body
                    .map(|body| (body.as_str(), body.as_span().start()))
                    .unwrap_or(("", span.start as usize));
                ExprKind::String(self.unescape(text, offset).into())
            }
            Rule::null_lit => ExprKind::Null,
            Rule::true_lit => ExprKind::True,
            Rule::false_lit => ExprKind::False,
            Rule::paren_expr => return self.first_expr(pair, span),
            Rule::spawn_expr => {
                let mut entry = None;
                let mut args = Vec::new();
                for part in pair.into_inner() {
                    match part.as_rule() {
                        Rule::name => entry = Some(self.ident(&part)),
                        Rule::call_args => args = self.args(part),
                        _ => {}
                    }
                }
                ExprKind::Spawn {
                    entry: entry.unwrap_or_else(|| Ident::new("", span)),
                    args,
                }
            }
            _ => ExprKind::Null,
        };
        Expr { kind, span }
    }

    /// Decodes the escapes of a string literal (CGPL.md §1).
    fn unescape(&mut self, text: &str, offset: usize) -> Vec<u8> {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut index = 0;
        while index < bytes.len() {
            let byte = bytes[index];
            if byte != b'\\' {
                out.push(byte);
                index += 1;
                continue;
            }
            let escape_start = offset + index;
            let Some(&code) = bytes.get(index + 1) else {
                break;
            };
            index += 2;
            match code {
                b'"' => out.push(b'"'),
                b'\\' => out.push(b'\\'),
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'e' => out.push(b'\n'),
                b'0'..=b'9' => {
                    let digits = bytes
                        .get(index - 1..index + 2)
                        .filter(|digits| digits.iter().all(u8::is_ascii_digit));
                    let value = digits
                        .and_then(|digits| std::str::from_utf8(digits).ok())
                        .and_then(|digits| digits.parse::<u16>().ok())
                        .filter(|value| (1..=255).contains(value));
                    match value {
                        Some(value) => {
                            out.push(value as u8);
                            index += 2;
                        }
                        None => {
                            let end = (escape_start + 4).min(offset + bytes.len());
                            self.error(Span::new(escape_start, end), "bad `\\nnn` escape")
                                .help = Some(
                                "write three decimal digits for a byte from 001 to 255, e.g. `\\012`".into(),
                            );
                        }
                    }
                }
                other => {
                    let shown = text
                        .get(index - 1..)
                        .and_then(|rest| rest.chars().next())
                        .unwrap_or(other as char);
                    let end = escape_start + 1 + shown.len_utf8();
                    self.error(
                        Span::new(escape_start, end),
                        format!("unknown escape `\\{shown}`"),
                    )
                    .help = Some(
                        "the escapes are \\\" \\\\ \\r \\n \\t \\e and \\nnn (a decimal byte code)".into(),
                    );
                }
            }
        }
        out
    }
}

fn assign_op(text: &str) -> AssignOp {
    match text {
        "+=" => AssignOp::Add,
        "-=" => AssignOp::Sub,
        "*=" => AssignOp::Mul,
        "/=" => AssignOp::Div,
        "%=" => AssignOp::Mod,
        _ => AssignOp::Set,
    }
}

fn qname_as_variable(name: QualifiedName) -> Expr {
    let span = name.span;
    Expr {
        kind: ExprKind::Var(name.name),
        span,
    }
}

/// Depth of an expression tree, looking only as deep as the limit.
fn tree_depth(expr: &Expr) -> u32 {
    fn walk(expr: &Expr, budget: u32) -> u32 {
        if budget == 0 {
            return MAX_DEPTH + 1;
        }
        let child = |e: &Expr| walk(e, budget - 1);
        1 + match &expr.kind {
            ExprKind::Unary(_, operand) => child(operand),
            ExprKind::Binary(_, left, right) => child(left).max(child(right)),
            ExprKind::Ternary(a, b, c) => child(a).max(child(b)).max(child(c)),
            ExprKind::Call { args, .. } | ExprKind::Spawn { args, .. } => {
                args.iter().map(child).max().unwrap_or(0)
            }
            ExprKind::Index(object, index) | ExprKind::ComputedKey(object, index) => {
                child(object).max(child(index))
            }
            ExprKind::Key(object, _) => child(object),
            _ => 0,
        }
    }
    walk(expr, MAX_DEPTH + 1)
}
