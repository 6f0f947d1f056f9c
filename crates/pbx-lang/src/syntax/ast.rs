//! The abstract syntax tree. Every node carries the [`Span`] of the text it
//! came from; names keep their spelling (for messages) and a folded form (for
//! lookup, since names are case-insensitive).

use std::rc::Rc;

use crate::source::Span;

/// A name as written, with its case-folded form used for lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    /// The spelling in the source, for messages.
    pub text: Rc<str>,
    /// ASCII-lower-cased spelling, for lookup.
    pub folded: Rc<str>,
    pub span: Span,
}

impl Ident {
    /// Makes an identifier from its spelling.
    pub fn new(text: &str, span: Span) -> Ident {
        Ident {
            text: text.into(),
            folded: text.to_ascii_lowercase().into(),
            span,
        }
    }
}

/// `name` or `module::name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QualifiedName {
    pub module: Option<Ident>,
    pub name: Ident,
    pub span: Span,
}

impl QualifiedName {
    /// The name as written, `module::name` or `name`.
    pub fn display(&self) -> String {
        match &self.module {
            Some(module) => format!("{}::{}", module.text, self.name.text),
            None => self.name.text.to_string(),
        }
    }
}

/// One source file: its sections and file-wide variables, in order.
#[derive(Clone, Debug, Default)]
pub struct File {
    pub items: Vec<Item>,
}

/// A top-level item.
#[derive(Clone, Debug)]
pub enum Item {
    Section(Section),
    /// `var x, y = 1;` outside any section: file-wide variables of the task.
    Var(VarDecl),
}

/// What kind of code section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionKind {
    Entry,
    Procedure,
    Function,
}

impl SectionKind {
    /// The keyword, for messages.
    pub fn keyword(self) -> &'static str {
        match self {
            SectionKind::Entry => "entry",
            SectionKind::Procedure => "procedure",
            SectionKind::Function => "function",
        }
    }
}

/// How a section is given.
#[derive(Clone, Debug)]
pub enum SectionBody {
    /// The code itself.
    Code(Block),
    /// `forward;`: defined further down in the same file.
    Forward,
    /// `external;`: defined in another file (a module).
    External,
}

/// An entry, procedure or function, or a declaration of one.
#[derive(Clone, Debug)]
pub struct Section {
    pub kind: SectionKind,
    pub name: QualifiedName,
    pub params: Vec<Ident>,
    pub body: SectionBody,
    /// The whole section.
    pub span: Span,
}

/// A sequence of statements (a body, a branch, a `{ }` block).
#[derive(Clone, Debug, Default)]
pub struct Block {
    pub statements: Vec<Stmt>,
    pub span: Span,
}

/// `var a, b = expr;`
#[derive(Clone, Debug)]
pub struct VarDecl {
    pub items: Vec<(Ident, Option<Expr>)>,
    pub span: Span,
}

/// Assignment operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    Set,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl AssignOp {
    /// The binary operator a compound assignment applies.
    pub fn binary(self) -> Option<BinaryOp> {
        match self {
            AssignOp::Set => None,
            AssignOp::Add => Some(BinaryOp::Add),
            AssignOp::Sub => Some(BinaryOp::Sub),
            AssignOp::Mul => Some(BinaryOp::Mul),
            AssignOp::Div => Some(BinaryOp::Div),
            AssignOp::Mod => Some(BinaryOp::Mod),
        }
    }
}

/// Something that can be assigned to.
#[derive(Clone, Debug)]
pub enum Place {
    Var(Ident),
    Index { object: Box<Expr>, index: Box<Expr> },
    Key { object: Box<Expr>, key: Rc<str> },
    ComputedKey { object: Box<Expr>, key: Box<Expr> },
}

/// A statement.
#[derive(Clone, Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

/// The kinds of statement.
#[derive(Clone, Debug)]
pub enum StmtKind {
    /// `;` or `null;`
    Empty,
    Var(VarDecl),
    Assign {
        place: Place,
        op: AssignOp,
        value: Expr,
    },
    /// A procedure call (or a spawn) used as a statement.
    Call(Expr),
    If {
        branches: Vec<(Expr, Block)>,
        otherwise: Option<Block>,
    },
    /// `loop … end loop;`, `while c loop … end;`, `for … loop … end;`
    Loop(Box<Loop>),
    ExitIf(Expr),
    Return(Option<Expr>),
    Stop,
    Block(Block),
}

/// Every loop form lowered to one shape: `init; while cond { body; step }`.
#[derive(Clone, Debug)]
pub struct Loop {
    /// `for [var] i = e`: the variable, whether it is local to the loop, and its start.
    pub init: Option<(Ident, bool, Expr)>,
    pub condition: Option<Expr>,
    pub step: Option<(Place, AssignOp, Expr, Span)>,
    pub body: Block,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
    Xor,
}

impl BinaryOp {
    /// The operator as written (the symbolic form).
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Xor => "xor",
        }
    }

    /// Precedence level, higher binds tighter (CGPL.md §0.4).
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 4,
            BinaryOp::Add | BinaryOp::Sub => 3,
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Eq | BinaryOp::Ne => 2,
            BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => 1,
        }
    }
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Plus,
    Not,
}

/// An expression.
#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// The kinds of expression.
#[derive(Clone, Debug)]
pub enum ExprKind {
    Null,
    True,
    False,
    Number(i64),
    /// The bytes of a string literal, escapes decoded.
    String(Rc<[u8]>),
    Var(Ident),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `f(a, b)` or `m::f(a, b)`; `method` is set for `x.f(b)` written in
    /// method style, where `x` is the first argument.
    Call {
        name: QualifiedName,
        args: Vec<Expr>,
        method: bool,
    },
    Index(Box<Expr>, Box<Expr>),
    Key(Box<Expr>, Rc<str>),
    ComputedKey(Box<Expr>, Box<Expr>),
    Spawn {
        entry: Ident,
        args: Vec<Expr>,
    },
}
