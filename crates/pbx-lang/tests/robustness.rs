//! Bad input never crashes pbxd: random programs made of the language's own
//! tokens (and some that are not) compile to a program or to diagnostics,
//! and a program that compiles runs to an end within small limits. The
//! `fuzz/` target explores the same ground for longer; this keeps it in CI.

use std::sync::Arc;
use std::time::Duration;

use pbx_lang::builtins::{Ctx, HostFn};
use pbx_lang::bytecode::Program;
use pbx_lang::compile::NoModules;
use pbx_lang::value::time::FrozenClock;
use pbx_lang::value::OpError;
use pbx_lang::{compile, Host, HostOutcome, Limits, SourceFile, Step, TaskOptions, Value, Vm};
use proptest::prelude::*;

const TOKENS: &[&str] = &[
    "entry Main is",
    "entry Main {",
    "procedure P(a, b) is",
    "function F(x) is",
    "end;",
    "end if;",
    "end loop;",
    "}",
    "{",
    "if",
    "then",
    "elif",
    "else",
    "loop",
    "while",
    "for",
    "var",
    "by",
    "exitif",
    "return",
    "stop;",
    "spawn",
    "forward;",
    "external;",
    "x",
    "y",
    "a",
    "P",
    "F",
    "Main",
    "m::f",
    "=",
    "+=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    "!",
    "not",
    "and",
    "or",
    "xor",
    "&",
    "|",
    "^",
    "?",
    ":",
    "(",
    ")",
    "[",
    "]",
    ".",
    ".(",
    ",",
    ";",
    "0",
    "1",
    "-1",
    "42",
    "9223372036854775807",
    "99999999999999999999",
    "\"s\"",
    "\"\\n\"",
    "\"\\q\"",
    "\"unterminated",
    "null",
    "true",
    "false",
    "Length(",
    "Substring(",
    "NewArray()",
    "NewDictionary()",
    "SysLog(",
    "Vars()",
    "ToObject(",
    "ObjectToString(",
    "AddElement(",
    "FuncCall(\"F\",",
    "ProcCall(\"P\",",
    "ReadInput(1)",
    "// comment\n",
    "/* block */",
    "/*",
    "\n",
    " ",
    "привет",
    "\u{FEFF}",
    "@",
    "$",
    "#",
    "'",
    "\t",
    "((((((((((",
    "))))))))))",
];

fn program_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..120).prop_map(|tokens| tokens.join(" "))
}

struct AnyHost;

impl Host for AnyHost {
    type Op = ();

    fn call(&mut self, _: HostFn, _: &[Value], _: &mut Ctx<'_>) -> HostOutcome<()> {
        HostOutcome::Done(Value::Null)
    }

    fn spawn(&mut self, _: &Arc<Program>, _: u16, _: Vec<Value>) -> Result<Value, OpError> {
        Ok(Value::Null)
    }
}

/// Compiles and (if it compiles) runs `text`; returns whether it compiled.
fn compile_and_run(text: &str) -> bool {
    let file = Arc::new(SourceFile::new("random.sppr", text));
    let program = match compile(file, &NoModules) {
        Ok(program) => program,
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty(), "a failed compile says why");
            for diagnostic in &diagnostics {
                // Rendering must not panic either (spans inside the text).
                let _ = diagnostic.one_line();
            }
            return false;
        }
    };
    let options = TaskOptions {
        limits: Limits {
            max_compute: Duration::from_millis(50),
            max_depth: 50,
            max_bytes: 1 << 20,
            max_instructions: Some(100_000),
        },
        clock: Arc::new(FrozenClock(0)),
        zone: pbx_lang::value::time::TimeZone::UTC,
    };
    if let Some(mut vm) = Vm::start(program, "Main", Vec::new(), options) {
        for _ in 0..10_000 {
            match vm.run(&mut AnyHost, 1000) {
                Step::Yield => continue,
                Step::Wait(()) => vm.resume(Value::Null),
                Step::Finished | Step::Failed(_) => break,
            }
        }
    }
    true
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn random_token_soup_never_panics(text in program_text()) {
        compile_and_run(&text);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        compile_and_run(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn nesting_far_past_the_limits_is_an_error_not_a_crash() {
    for text in [
        format!(
            "entry Main is x = {}1{}; end;",
            "(".repeat(5000),
            ")".repeat(5000)
        ),
        format!("entry Main is x = {}1; end;", "-".repeat(5000)),
        format!("entry Main is x = 1{}; end;", " + 1".repeat(20_000)),
        format!("entry Main is {} end;", "if x then ".repeat(3000)),
        format!("entry Main {{ {} }}", "if (x) { ".repeat(3000)),
        format!("entry Main is x = a{}; end;", ".b".repeat(5000)),
    ] {
        assert!(!compile_and_run(&text), "{}…", &text[..40]);
    }
}
