//! The pbxd script language: a CG/PL-like language (see CGPL.md) compiled
//! once per file version to bytecode that many tasks run at once.
//!
//! Stages, one module each: [`syntax`] (text to AST), [`resolve`] (names),
//! [`compile`] (AST to bytecode), [`vm`] (runs bytecode, suspends at
//! built-ins that wait). [`value`] holds the data model and [`builtins`] the
//! registry of built-in functions.
//!
//! This crate must never depend on tokio, SIP, media or the file system
//! layout of environments: the call runtime plugs those in through
//! [`vm::Host`] and [`compile::ModuleLoader`].

pub mod builtins;
pub mod bytecode;
pub mod compile;
pub mod diagnostic;
pub mod resolve;
pub mod source;
pub mod syntax;
pub mod value;
pub mod vm;

pub use compile::{compile, ModuleLoader};
pub use diagnostic::{Diagnostic, ErrorKind};
pub use source::{SourceFile, Span};
pub use value::Value;
pub use vm::{Host, HostOutcome, Limits, Step, TaskOptions, Vm};
