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

/// The events of a `pbxd run` timeline, without their times.
fn events(output: &Output) -> Vec<String> {
    stdout(output)
        .lines()
        .map(|line| {
            let (time, event) = line.trim_start().split_once("  ").unwrap_or(("", line));
            assert!(
                time.parse::<f64>().is_ok(),
                "a timeline line starts with its time: {line}"
            );
            event.to_string()
        })
        .collect()
}

/// The time column of the timeline line whose event is `event`.
fn time_of(output: &Output, event: &str) -> f64 {
    stdout(output)
        .lines()
        .find_map(|line| {
            let (time, text) = line.trim_start().split_once("  ")?;
            (text == event).then(|| time.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no `{event}` in the timeline:\n{}", stdout(output)))
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
    let logged: Vec<String> = events(&output)
        .into_iter()
        .filter(|event| event.starts_with("#1 log "))
        .collect();
    assert_eq!(logged, ["#1 log one", "#1 log #42", "#1 log ()"]);
}

#[test]
fn run_starts_the_entry_asked_for() {
    let output = pbxd(&["run", "examples/menu-braces.sppr", "--entry", "MAIN"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        events(&output).contains(&"#1 log 1 -> sales".to_string()),
        "{}",
        stdout(&output)
    );
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
    let timeline = events(&output);
    assert!(timeline.contains(&"#1 log before".to_string()), "{timeline:?}");
    assert!(!timeline.contains(&"#1 log after".to_string()), "{timeline:?}");
    assert!(
        timeline.iter().any(|event| event.starts_with("#1 error: ")
            && event.ends_with("divide.sppr:2:10: error[arithmetic]: division by zero")),
        "{timeline:?}"
    );
    assert_eq!(timeline.last().map(String::as_str), Some("#1 ended by an error"));
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
fn run_puts_a_file_on_a_simulated_call() {
    let dir = scratch(
        "call",
        &[(
            "answer.sppr",
            "entry Main is\n  if AcceptCall() != null then return; end if;\n  PlayFile(\"CallbackBusy\");\n  \
             SysLog(ReadInput(10));\nend;\n",
        )],
    );
    let path = dir.join("answer.sppr");
    let output = pbxd(&["run", path.to_str().expect("utf-8 path"), "--dtmf", "7"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let timeline = events(&output);
    let expected = [
        "#1 start answer.sppr for pbx@example.com",
        "#1 incoming call from sip:caller@sim to sip:pbx@example.com",
        "#1 accepted",
        "#1 play callbackbusy.wav (3.4 s)",
    ];
    assert_eq!(timeline[..4], expected, "{timeline:?}");
    assert!(timeline.contains(&"#1 dtmf 7".to_string()), "{timeline:?}");
    assert!(timeline.contains(&"#1 log 7".to_string()), "{timeline:?}");
    assert_eq!(
        timeline[timeline.len() - 2..],
        ["#1 hung up", "#1 finished"],
        "{timeline:?}"
    );
}

/// The test of done: the callback app of a Russian-speaking account,
/// a number dialled and confirmed with `#`, one mail through a real relay.
#[test]
fn run_callback_mails_the_number_and_plays_russian_prompts() {
    let Some(smtp) = pbx_test_peers::SmtpServer::start() else {
        return;
    };
    let relay = format!("smtp.relay={}", smtp.relay());
    let output = pbxd(&[
        "run",
        "callback#ivanov@example.com",
        "--dtmf",
        "5551234#",
        "--set",
        &relay,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let played: Vec<String> = events(&output)
        .into_iter()
        .filter_map(|event| Some(event.strip_prefix("#1 play ")?.split(' ').next()?.to_string()))
        .collect();
    assert_eq!(
        played,
        [
            "russian/callbackbusy.wav",
            "russian/callbacklater.wav",
            "russian/callbacknumber.wav",
            "russian/callbackclearnumber.wav",
            "russian/callbacktrailer.wav",
        ]
    );
    let timeline = events(&output);
    let dialled: String = timeline
        .iter()
        .filter_map(|event| event.strip_prefix("#1 dtmf "))
        .collect();
    assert_eq!(dialled, "5551234#");
    assert!(
        timeline.contains(&"#1 email to ivanov@example.com: accepted".to_string()),
        "{timeline:?}"
    );
    // The mail goes once `#` is dialled, and the trailer follows it.
    assert!(time_of(&output, "#1 dtmf #") <= time_of(&output, "#1 email to ivanov@example.com: accepted"));
    let messages = smtp.messages(1);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("From: CallbackMailer@example.com"),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("To: ivanov@example.com"), "{}", messages[0]);
    assert!(
        messages[0].contains("Subject: Call back:5551234\n"),
        "{}",
        messages[0]
    );
}

#[test]
fn run_callback_without_a_relay_apologises() {
    // Port 9 (discard) on loopback: nothing listens there in a test machine.
    let output = pbxd(&[
        "run",
        "callback#petrov@example.com",
        "--dtmf",
        "12,3#",
        "--set",
        "smtp.relay=127.0.0.1:9",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let timeline = events(&output);
    assert!(
        timeline
            .iter()
            .any(|event| event.starts_with("#1 email to petrov@example.com: failed (")),
        "{timeline:?}"
    );
    let tail: Vec<&str> = timeline
        .iter()
        .filter_map(|event| event.strip_prefix("#1 play "))
        .map(|event| event.split(' ').next().unwrap_or(""))
        .skip(4)
        .collect();
    assert_eq!(tail, ["russian/failure.wav", "russian/callbacknotavailable.wav"]);
    // The `,` is a second of silence between 2 and 3.
    assert!(time_of(&output, "#1 dtmf 3") - time_of(&output, "#1 dtmf 2") >= 1.0);
}

#[test]
fn run_rejects_bad_dtmf_and_bad_settings_plainly() {
    let output = pbxd(&["run", "callback#ivanov@example.com", "--dtmf", "12x"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--dtmf"), "{}", stderr(&output));
    assert!(stderr(&output).contains('x'), "{}", stderr(&output));
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));

    let output = pbxd(&[
        "run",
        "callback#ivanov@example.com",
        "--set",
        "smtp.rely=127.0.0.1:25",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("smtp.rely"), "{}", stderr(&output));

    let output = pbxd(&[
        "run",
        "callback#ivanov@example.com",
        "--set",
        "clock.start=yesterday",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("clock.start"), "{}", stderr(&output));
    assert!(stderr(&output).contains("RFC 3339"), "{}", stderr(&output));
}

#[test]
fn run_rings_a_simulated_phone() {
    let output = pbxd(&[
        "run",
        "operator@example.com",
        "--set",
        "simulation.phones.operator=answer after 4s",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        events(&output),
        [
            "call: to operator@example.com: ringing",
            "call: ringing operator@example.com",
            "call: operator@example.com answered; connected",
            "call: the caller hung up",
        ]
    );
    assert_eq!(
        time_of(&output, "call: operator@example.com answered; connected"),
        4.0
    );
}

#[test]
fn a_config_error_names_the_file_line_and_key() {
    let dir = scratch(
        "config",
        &[(
            "pbxd.toml",
            "[smtp]\nrelay = \"127.0.0.1:2525\"\n\n[domains.\"example.com\"]\ntime_zone = \"Europe/Moscow\"\ncolour = \"blue\"\n",
        )],
    );
    let path = dir.join("pbxd.toml");
    let output = pbxd(&[
        "run",
        "callback#ivanov@example.com",
        "--config",
        path.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    assert!(
        errors.contains("pbxd.toml:6: `domains.\"example.com\".colour`: unknown field"),
        "{errors}"
    );
    assert!(errors.contains("expected one of `time_zone`"), "{errors}");
}

#[test]
fn run_routes_a_call_to_an_account_by_its_rules() {
    // Monday 20:00 in Moscow: ivanov's rules send after-hours calls to #callback.
    let output = pbxd(&[
        "run",
        "ivanov@example.com",
        "--dtmf",
        "*",
        "--set",
        "clock.start=2026-11-23T20:00:00+03:00",
        "--set",
        "smtp.relay=127.0.0.1:9",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let timeline = events(&output);
    assert_eq!(
        timeline[..2],
        [
            "call: to ivanov@example.com: divert to #callback",
            "#1 start callback.sppr for ivanov@example.com"
        ],
        "{timeline:?}"
    );
    assert!(
        timeline.contains(&"#1 play russian/callbackbusy.wav (3.2 s)".to_string()),
        "{timeline:?}"
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

/// An installed pbxd started anywhere: a configuration file in its own
/// folder, with relative paths, run from another folder where no
/// `stdlib-scripts` is. The paths mean the file's folder, and the stock
/// environment built into pbxd serves (written once under `data_dir`).
#[test]
fn an_installed_pbxd_finds_its_paths_and_the_built_in_stock_environment() {
    let dir = scratch(
        "installed",
        &[
            ("pbxd.toml", "data_dir = \"state\"\n[domains.\"example.com\".accounts.pbx]\n"),
            (
                "hello.sppr",
                "entry Main is\n  if AcceptCall() != null then return; end if;\n  PlayFile(\"welcome\");\nend;\n",
            ),
        ],
    );
    let elsewhere = scratch("installed-cwd", &[]);
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_pbxd"))
            .args(["run", "hello.sppr", "--config"])
            .arg(dir.join("pbxd.toml"))
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("pbxd runs")
    };
    // Run from the scratch folder itself, its config named by full path.
    let output = run();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the stock environment built into pbxd serves"),
        "{}",
        stderr(&output)
    );
    assert!(
        events(&output)
            .iter()
            .any(|event| event.starts_with("#1 play welcome.wav")),
        "{}",
        stdout(&output)
    );
    let written = dir.join("state/stock");
    assert!(written.is_dir(), "nothing written under data_dir");
    // From another folder: the same files, the same paths.
    let output = Command::new(env!("CARGO_BIN_EXE_pbxd"))
        .args(["run"])
        .arg(dir.join("hello.sppr"))
        .arg("--config")
        .arg(dir.join("pbxd.toml"))
        .current_dir(&elsewhere)
        .env("NO_COLOR", "1")
        .output()
        .expect("pbxd runs");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        events(&output)
            .iter()
            .any(|event| event.starts_with("#1 play welcome.wav")),
        "{}",
        stdout(&output)
    );
    assert!(
        !elsewhere.join("state").exists(),
        "data_dir was taken from the working folder"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&elsewhere);
}

/// `pbxd check --config` before a restart: the demo's configuration and
/// every program it serves are fine; a domain program that does not
/// compile, or a bad key, is named and fails the check.
#[test]
fn check_config_checks_the_configuration_and_every_program_it_serves() {
    let output = pbxd(&["check", "--config", "pbxd.toml"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("are fine"), "{}", stderr(&output));

    let dir = scratch("check-config", &[]);
    let domain = dir.join("example.com");
    std::fs::create_dir_all(&domain).unwrap();
    std::fs::write(domain.join("broken.sppr"), "entry Main is\n  x = ;\nend;\n").unwrap();
    let domains = format!("environments.domains={}", dir.display());
    let output = pbxd(&["check", "--config", "pbxd.toml", "--set", &domains]);
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(
        said.contains("broken") && said.contains("broken.sppr:2"),
        "{said}"
    );

    let output = pbxd(&["check", "--config", "pbxd.toml", "--set", "sip.listen=nowhere"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("sip.listen"), "{}", stderr(&output));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A damaged store: pbxd refuses to start, names the file and what it
/// holds, and gives the command that moves it aside; after that command
/// it starts, with that store empty.
#[test]
fn a_damaged_store_stops_pbxd_with_the_way_out() {
    let dir = scratch("damaged-store", &[]);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let garbage: Vec<u8> = (0..10_000u32)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(data.join("storage.redb"), garbage).unwrap();
    let serve = || {
        let data_dir = format!("data_dir={}", data.display());
        Command::new(env!("CARGO_BIN_EXE_pbxd"))
            .args([
                "serve",
                "--set",
                &data_dir,
                "--set",
                "sip.listen=127.0.0.1:0",
                "--set",
                "http.listen=127.0.0.1:0",
            ])
            .current_dir(repository())
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("pbxd runs")
    };
    let output = serve().wait_with_output().unwrap();
    assert!(!output.status.success());
    let said = stderr(&output);
    let moved = data.join("storage.redb.damaged");
    assert!(said.contains("storage.redb: cannot open"), "{said}");
    let command = format!("mv {} {}", data.join("storage.redb").display(), moved.display());
    assert!(said.contains(&command), "{said}");
    // The way out, then a start.
    std::fs::rename(data.join("storage.redb"), &moved).unwrap();
    let mut started = serve();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(started.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = started.kill();
    let _ = started.wait();
    assert!(line.starts_with("pbxd: SIP on"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}
