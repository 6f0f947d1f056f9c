//! `pbxd check` and `pbxd run` as a user runs them: exit status, what goes
//! to stdout and to stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pbxd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbxd"))
        .args(args)
        .current_dir(repository())
        .env("NO_COLOR", "1")
        .output()
        .expect("pbxd runs")
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A folder of its own under the system's temporary folder.
fn scratch(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pbxd-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    for (file, text) in files {
        std::fs::write(dir.join(file), text).expect("write scratch file");
    }
    dir
}

#[test]
fn check_accepts_the_stock_scripts_and_examples() {
    let output = pbxd(&["check", "stdlib-scripts", "examples", "bench/interp"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("files checked, no errors"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn check_reports_every_error_with_its_position_and_fails() {
    let dir = scratch(
        "check",
        &[(
            "broken.sppr",
            "entry Main is\n  Length(\"abc\");\n  x = Substrng(\"a\", 0, 1);\nend;\n",
        )],
    );
    let path = dir.join("broken.sppr");
    let output = pbxd(&["check", path.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    assert!(errors.contains("broken.sppr:2:3"), "{errors}");
    assert!(errors.contains("Void(Length(…));"), "{errors}");
    assert!(errors.contains("broken.sppr:3:7"), "{errors}");
    assert!(errors.contains("did you mean `Substring`?"), "{errors}");
    assert!(errors.contains("1 file checked, 2 errors"), "{errors}");
}

#[test]
fn check_finds_programs_and_modules_in_folders() {
    let dir = scratch(
        "folders",
        &[
            ("main.sppr", "entry Main is\n  SysLog(Tools::Twice(2));\nend;\n"),
            ("tools.sppi", "function Twice(x) is\n  return x * 2;\nend;\n"),
            ("notes.txt", "not a program"),
        ],
    );
    let output = pbxd(&["check", dir.to_str().expect("utf-8 path")]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("2 files checked, no errors"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn run_prints_each_syslog_line() {
    let dir = scratch(
        "run",
        &[
            ("main.sppr", "entry Main is\n  SysLog(\"one\");\n  SysLog(Tools::Twice(21));\n  SysLog(NewArray());\nend;\n"),
            ("tools.sppi", "function Twice(x) is\n  return x * 2;\nend;\n"),
        ],
    );
    let output = pbxd(&["run", dir.join("main.sppr").to_str().expect("utf-8 path")]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "one\n#42\n()\n");
}

#[test]
fn run_starts_the_entry_asked_for() {
    let output = pbxd(&["run", "examples/menu-braces.sppr", "--entry", "MAIN"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("1 -> sales"), "{}", stdout(&output));
    let missing = pbxd(&["run", "examples/menu-braces.sppr", "--entry", "Nowhere"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no entry `Nowhere`"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn run_reports_a_runtime_error_with_the_stack_and_fails() {
    let dir = scratch(
        "runtime",
        &[(
            "divide.sppr",
            "function Ratio(a, b) is\n  return a / b;\nend;\n\nentry Main is\n  SysLog(\"before\");\n  SysLog(Ratio(1, 0));\n  SysLog(\"after\");\nend;\n",
        )],
    );
    let output = pbxd(&["run", dir.join("divide.sppr").to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "before\n");
    let errors = stderr(&output);
    assert!(errors.contains("division by zero"), "{errors}");
    assert!(errors.contains("divide.sppr:2:10"), "{errors}");
    assert!(errors.contains("stack: function Ratio"), "{errors}");
    assert!(errors.contains("called from entry Main"), "{errors}");
}

#[test]
fn run_stops_an_endless_loop_with_a_limit_error() {
    let dir = scratch(
        "endless",
        &[("endless.sppr", "entry Main is\n  loop end loop;\nend;\n")],
    );
    let output = pbxd(&["run", dir.join("endless.sppr").to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    assert!(errors.contains("error[limit]"), "{errors}");
    assert!(errors.contains("without waiting"), "{errors}");
    assert!(errors.contains("endless.sppr:2:3"), "{errors}");
}

#[test]
fn run_refuses_call_built_ins_without_a_call() {
    let dir = scratch(
        "call",
        &[("answer.sppr", "entry Main is\n  Void(AcceptCall());\nend;\n")],
    );
    let output = pbxd(&["run", dir.join("answer.sppr").to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("`AcceptCall` needs a call"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_files_are_reported_plainly() {
    let output = pbxd(&["run", "no/such/program.sppr"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no/such/program.sppr"),
        "{}",
        stderr(&output)
    );
    let output = pbxd(&["check", "no/such/folder"]);
    assert_eq!(output.status.code(), Some(1));
}
