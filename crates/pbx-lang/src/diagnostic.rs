//! Script errors: one type for compile-time and run-time errors, rendered by
//! miette the way rustc renders its own (file:line:col, the line, a caret, a
//! help line).

use std::fmt;
use std::sync::Arc;

use crate::source::{SourceFile, Span};

/// What went wrong, broadly. Shown as `error[kind]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The text does not follow the grammar.
    Syntax,
    /// A name that is unknown, declared twice, or not what it is used as.
    Name,
    /// A call with the wrong number of arguments.
    Arity,
    /// A function used as a statement, a procedure used as a value, and the like.
    Usage,
    /// An operation on a value of the wrong type.
    Type,
    /// Overflow or division by zero.
    Arithmetic,
    /// A value that does not fit the operation: an index past the end, a
    /// container put inside itself.
    Value,
    /// A per-task limit was reached (time, depth, memory, instructions).
    Limit,
    /// A built-in refused its arguments or failed.
    Call,
    /// A bug in pbxd.
    Internal,
}

impl ErrorKind {
    /// The lower-case word shown in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax",
            ErrorKind::Name => "name",
            ErrorKind::Arity => "arity",
            ErrorKind::Usage => "usage",
            ErrorKind::Type => "type",
            ErrorKind::Arithmetic => "arithmetic",
            ErrorKind::Value => "value",
            ErrorKind::Limit => "limit",
            ErrorKind::Call => "call",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a run-time error's stack: which section was running, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackEntry {
    /// `entry Main`, `procedure Helper`, `function m::F`.
    pub section: String,
    /// `file:line:col` of the statement that was running in it.
    pub location: String,
}

/// A compile-time or run-time error in a script, with where it happened.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub kind: ErrorKind,
    pub message: String,
    /// The file and span the error points at; `None` for errors with no place
    /// (a missing file, say).
    pub place: Option<(Arc<SourceFile>, Span)>,
    /// The short text under the caret.
    pub label: String,
    /// Other places in the same file worth showing, with their labels
    /// ("first defined here").
    pub notes: Vec<(Span, String)>,
    /// Advice, shown as `help:`.
    pub help: Option<String>,
    /// For run-time errors: the sections that were running, innermost first.
    pub stack: Vec<StackEntry>,
}

impl Diagnostic {
    /// An error of `kind` at `span` in `file`.
    pub fn new(
        kind: ErrorKind,
        file: &Arc<SourceFile>,
        span: Span,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            kind,
            message: message.into(),
            place: Some((file.clone(), span)),
            label: String::from("here"),
            notes: Vec::new(),
            help: None,
            stack: Vec::new(),
        }
    }

    /// An error that points at no text.
    pub fn without_place(kind: ErrorKind, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            kind,
            message: message.into(),
            place: None,
            label: String::new(),
            notes: Vec::new(),
            help: None,
            stack: Vec::new(),
        }
    }

    /// Sets the text under the caret.
    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    /// Adds a labelled place in the same file.
    pub fn with_note(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.notes.push((span, label.into()));
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// `file:line:col` of the error, if it has a place.
    pub fn location(&self) -> Option<String> {
        self.place.as_ref().map(|(file, span)| file.location(span.start))
    }

    /// One line for logs: `file:line:col: error[kind]: message`.
    pub fn one_line(&self) -> String {
        match self.location() {
            Some(location) => format!("{location}: error[{}]: {}", self.kind, self.message),
            None => format!("error[{}]: {}", self.kind, self.message),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// Adapts a [`Diagnostic`] to miette, which renders it.
pub struct Report<'a> {
    diagnostic: &'a Diagnostic,
    source: Option<miette::NamedSource<Arc<str>>>,
    help: Option<String>,
}

impl<'a> Report<'a> {
    /// Prepares `diagnostic` for rendering.
    pub fn new(diagnostic: &'a Diagnostic) -> Report<'a> {
        // miette prints `name:line:col` of the label in its header.
        let source = diagnostic
            .place
            .as_ref()
            .map(|(file, _)| miette::NamedSource::new(file.name(), file.shared_text()));
        let mut help = diagnostic.help.clone();
        // One frame adds nothing to the position in the header.
        if diagnostic.stack.len() > 1 {
            let stack = format!("stack: {}", describe_stack(&diagnostic.stack));
            help = Some(match help {
                Some(help) => format!("{help}\n{stack}"),
                None => stack,
            });
        }
        Report {
            diagnostic,
            source,
            help,
        }
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("diagnostic", self.diagnostic)
            .finish()
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(format!("error[{}]", self.diagnostic.kind)))
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source
            .as_ref()
            .map(|source| source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let (_, span) = self.diagnostic.place.as_ref()?;
        let label = miette::LabeledSpan::new_primary_with_span(Some(self.diagnostic.label.clone()), *span);
        let notes = self
            .diagnostic
            .notes
            .iter()
            .map(|(span, text)| miette::LabeledSpan::new_with_span(Some(text.clone()), *span));
        Some(Box::new(std::iter::once(label).chain(notes)))
    }
}

/// The stack, innermost first, one section a line, with runs of the same
/// section folded: `procedure Down (f.sppr:3:5)` / `called from … again, 48
/// more times`.
pub fn describe_stack(stack: &[StackEntry]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut index = 0;
    while index < stack.len() {
        let entry = &stack[index];
        let mut run = 1;
        while index + run < stack.len() && stack[index + run].section == entry.section {
            run += 1;
        }
        if run > 2 {
            parts.push(format!("{} ({})", entry.section, entry.location));
            parts.push(format!("{} again, {} more times", entry.section, run - 1));
        } else {
            for repeated in &stack[index..index + run] {
                parts.push(format!("{} ({})", repeated.section, repeated.location));
            }
        }
        index += run;
    }
    parts.join("\ncalled from ")
}

/// "a" or "an" before a word.
pub fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}
