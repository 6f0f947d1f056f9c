//! Tests as data: every `tests/data/**/*.sppr` is compiled and run, and what
//! it prints is compared with the `.out` file beside it: its SysLog lines,
//! then the diagnostic of a compile or run-time error, rendered as users see
//! it. `UPDATE_GOLDEN=1 cargo test -p pbx-lang --test golden` rewrites the
//! `.out` files; review the diff before committing.
//!
//! A script may start with directive comments:
//! `// clock: 2024-05-06T07:08:09Z` (the frozen time; that is the default),
//! `// zone: Europe/Moscow` (the server zone; UTC by default),
//! `// entry: Name` (the entry to run; Main by default),
//! `// limits: compute_ms=100 depth=50 bytes=1000000 instructions=1000`.
//! Modules (`.sppi`) in the same folder are available to the scripts there.
//! `GOLDEN_FILTER=text` limits a run to the scripts whose path contains it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pbx_lang::builtins::{Ctx, HostFn};
use pbx_lang::bytecode::Program;
use pbx_lang::compile::MemoryModules;
use pbx_lang::diagnostic::Report;
use pbx_lang::value::text::log_text;
use pbx_lang::value::time::{self, FrozenClock};
use pbx_lang::value::OpError;
use pbx_lang::{compile, Diagnostic, Host, HostOutcome, Limits, SourceFile, Step, TaskOptions, Value, Vm};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("data")
}

fn scripts(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            scripts(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "sppr") {
            found.push(path);
        }
    }
}

fn render(diagnostic: &Diagnostic) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor()).with_width(100);
    let mut out = String::new();
    handler
        .render_report(&mut out, &Report::new(diagnostic))
        .expect("rendering a diagnostic");
    // Trailing spaces in the rendering are noise in the files.
    out.lines().map(str::trim_end).collect::<Vec<_>>().join("\n") + "\n"
}

struct Directives {
    clock: i64,
    zone: jiff::tz::TimeZone,
    entry: String,
    limits: Limits,
}

fn directives(text: &str) -> Directives {
    let mut directives = Directives {
        clock: time::parse("2024-05-06T07:08:09Z").expect("default clock"),
        zone: jiff::tz::TimeZone::UTC,
        entry: "Main".into(),
        limits: Limits::default(),
    };
    for line in text.lines().take_while(|line| line.starts_with("//")) {
        let line = line.trim_start_matches('/').trim();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "clock" => directives.clock = time::parse(value).expect("clock directive"),
            "zone" => directives.zone = jiff::tz::TimeZone::get(value).expect("zone directive"),
            "entry" => directives.entry = value.to_string(),
            "limits" => {
                for setting in value.split_whitespace() {
                    let (name, number) = setting.split_once('=').expect("limit=value");
                    let number: u64 = number.parse().expect("limit number");
                    match name {
                        "compute_ms" => directives.limits.max_compute = Duration::from_millis(number),
                        "depth" => directives.limits.max_depth = number as usize,
                        "bytes" => directives.limits.max_bytes = number as usize,
                        "instructions" => directives.limits.max_instructions = Some(number),
                        other => panic!("unknown limit {other}"),
                    }
                }
            }
            _ => {}
        }
    }
    directives
}

/// Captures SysLog; every other server built-in is refused, as in `pbxd run`.
struct TestHost {
    log: String,
}

impl Host for TestHost {
    type Op = ();

    fn call(&mut self, function: HostFn, args: &[Value], _: &mut Ctx<'_>) -> HostOutcome<()> {
        match function {
            HostFn::SysLog => match log_text(args.first().unwrap_or(&Value::Null)) {
                Ok(line) => {
                    self.log.push_str(&line);
                    self.log.push('\n');
                    HostOutcome::Done(Value::Null)
                }
                Err(error) => HostOutcome::Fail(error),
            },
            other => HostOutcome::Fail(OpError::call(format!(
                "`{}` needs a call or the server",
                other.name()
            ))),
        }
    }

    fn spawn(&mut self, _: &Arc<Program>, _: u16, _: Vec<Value>) -> Result<Value, OpError> {
        Err(OpError::call("`spawn` needs the task runtime"))
    }
}

fn modules_beside(script: &Path) -> MemoryModules {
    let mut modules = MemoryModules::default();
    let dir = script.parent().expect("script folder");
    for entry in std::fs::read_dir(dir).expect("read folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|extension| extension == "sppi") {
            let name = path.file_stem().expect("stem").to_string_lossy().to_string();
            let text = std::fs::read_to_string(&path).expect("module text");
            modules.add(&name, &text);
        }
    }
    modules
}

/// What a script prints, as the `.out` file holds it.
fn outcome(path: &Path, shown_name: &str) -> String {
    let text = std::fs::read_to_string(path).expect("script text");
    let directives = directives(&text);
    let file = Arc::new(SourceFile::new(shown_name, text));
    let program = match compile(file, &modules_beside(path)) {
        Ok(program) => program,
        Err(diagnostics) => return diagnostics.iter().map(render).collect::<Vec<_>>().join("\n"),
    };
    let options = TaskOptions {
        limits: directives.limits,
        clock: Arc::new(FrozenClock(directives.clock)),
        zone: directives.zone,
    };
    let Some(mut vm) = Vm::start(program, &directives.entry, Vec::new(), options) else {
        return format!("no entry {}\n", directives.entry);
    };
    let mut host = TestHost { log: String::new() };
    loop {
        match vm.run(&mut host, 10_000) {
            Step::Yield => continue,
            Step::Finished => return host.log,
            Step::Wait(()) => unreachable!("the test host never waits"),
            Step::Failed(diagnostic) => {
                let mut out = host.log;
                let _ = write!(out, "{}", render(&diagnostic));
                return out;
            }
        }
    }
}

#[test]
fn golden_scripts() {
    let root = data_dir();
    let mut found = Vec::new();
    scripts(&root, &mut found);
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let filter = std::env::var("GOLDEN_FILTER").ok();
    let mut failures = Vec::new();
    for path in &found {
        let relative = path
            .strip_prefix(&root)
            .expect("under data")
            .to_string_lossy()
            .replace('\\', "/");
        if filter
            .as_ref()
            .is_some_and(|filter| !relative.contains(filter.as_str()))
        {
            continue;
        }
        let actual = outcome(path, &relative);
        let expected_path = path.with_extension("out");
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            if update {
                std::fs::write(&expected_path, &actual).expect("write golden file");
            } else {
                failures.push(format!(
                    "--- {relative}\nexpected:\n{expected}\nactual:\n{actual}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scripts differ from their .out files (UPDATE_GOLDEN=1 rewrites them):\n{}",
        failures.len(),
        found.len(),
        failures.join("\n")
    );
    if filter.is_none() {
        assert!(
            found.len() >= 200,
            "expected at least 200 test scripts, found {}",
            found.len()
        );
    }
}
