//! Stage one: text to AST. The grammar and pest stay private to this module.

pub mod ast;
mod errors;
mod parser;
mod scan;

pub use parser::{parse_expression, parse_file, MAX_DEPTH};
pub use scan::MAX_NESTING;
