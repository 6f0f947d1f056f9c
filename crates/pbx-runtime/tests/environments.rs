//! FEATURES.md §2: environment layers, language folders, names matched
//! ignoring case, audio extensions, refused paths, and hot reload.

mod common;

use common::{config, prompt, run, Call, Scratch};

/// A program that plays `names` and logs what `ReadEnvirFile` finds.
fn player(names: &[&str]) -> String {
    let plays: String = names
        .iter()
        .map(|name| format!("  PlayFile(\"{name}\");\n"))
        .collect();
    format!("entry Main is\n  Void(AcceptCall());\n{plays}end;\n")
}

#[test]
fn domain_then_server_then_stock_and_the_language_folder_first_in_each() {
    let scratch = Scratch::new("layers");
    for (file, millis) in [
        ("stock/greeting.wav", 100),
        ("stock/russian/greeting.wav", 100),
        ("stock/only-stock.wav", 100),
        ("server/greeting.wav", 100),
        ("server/only-server.wav", 100),
        ("domains/example.com/greeting.wav", 100),
        ("domains/example.com/russian/only-stock.wav", 100),
    ] {
        scratch.write(file, prompt(millis));
    }
    scratch.write(
        "stock/play.sppr",
        player(&["greeting", "only-stock", "only-server"]),
    );
    // petrov speaks English: the domain's greeting, stock's and server's own.
    let events = run(
        config(&scratch, "", &[]),
        Call::App("play", "petrov@example.com"),
        "",
    );
    assert_eq!(
        events.played(),
        ["greeting.wav", "only-stock.wav", "only-server.wav"]
    );
    // ivanov speaks Russian: a Russian file in a lower layer does not beat
    // the domain's root file, but the domain's Russian one wins over stock.
    let events = run(
        config(&scratch, "", &[]),
        Call::App("play", "ivanov@example.com"),
        "",
    );
    assert_eq!(
        events.played(),
        ["greeting.wav", "russian/only-stock.wav", "only-server.wav"]
    );
}

#[test]
fn names_match_ignoring_case_and_try_audio_extensions() {
    let scratch = Scratch::new("names");
    scratch.write("stock/callbackbusy.wav", prompt(100));
    scratch.write("stock/Welcome.WAV", prompt(100));
    scratch.write(
        "stock/play.sppr",
        player(&["CallbackBusy", "welcome", "callbackbusy.wav", "missing"]),
    );
    let events = run(
        config(&scratch, "", &[]),
        Call::App("play", "petrov@example.com"),
        "",
    );
    assert_eq!(
        events.played(),
        ["callbackbusy.wav", "Welcome.WAV", "callbackbusy.wav"]
    );
    let missing = events.events.lock().unwrap().iter().any(
        |event| matches!(event, pbx_runtime::observe::Event::PlayMissing { name, .. } if name == "missing"),
    );
    assert!(missing);
}

#[test]
fn names_that_would_leave_the_environment_are_refused() {
    let scratch = Scratch::new("refused");
    scratch.write("secret.wav", prompt(100));
    scratch.write("stock/ok.wav", prompt(100));
    for (program, call) in [
        ("up", "PlayFile(\"../secret\");"),
        ("absolute", "PlayFile(\"/etc/passwd\");"),
        ("nested", "PlayFile(\"russian/../../secret\");"),
        ("read", "Void(ReadEnvirFile(\"../secret.wav\"));"),
    ] {
        scratch.write(
            &format!("stock/{program}.sppr"),
            format!("entry Main is\n  Void(AcceptCall());\n  PlayFile(\"ok\");\n  {call}\n  SysLog(\"not reached\");\nend;\n"),
        );
        let events = run(
            config(&scratch, "", &[]),
            Call::App(program, "petrov@example.com"),
            "",
        );
        assert_eq!(events.played(), ["ok.wav"], "{program}");
        assert!(events.logs().is_empty(), "{program}: {:?}", events.logs());
        let errors = events.errors();
        assert_eq!(errors.len(), 1, "{program}: {errors:?}");
        assert!(
            errors[0].contains("is not a file name within an environment"),
            "{program}: {errors:?}"
        );
    }
}

#[test]
fn read_envir_file_reads_through_the_same_layers() {
    let scratch = Scratch::new("read-envir");
    scratch.write("stock/notes.txt", "stock notes");
    scratch.write("domains/example.com/russian/notes.txt", "заметки домена");
    scratch.write(
        "stock/read.sppr",
        "entry Main is SysLog(String(ReadEnvirFile(\"NOTES.txt\"))); SysLog(ObjectToString(ReadEnvirFile(\"none.txt\"))); end;",
    );
    let events = run(
        config(&scratch, "", &[]),
        Call::App("read", "petrov@example.com"),
        "",
    );
    assert_eq!(events.logs(), ["stock notes", "#null#"]);
    let events = run(
        config(&scratch, "", &[]),
        Call::App("read", "ivanov@example.com"),
        "",
    );
    assert_eq!(events.logs(), ["заметки домена", "#null#"]);
}

#[test]
fn programs_are_found_in_the_layers_and_a_domain_shadows_stock() {
    let scratch = Scratch::new("program-layers");
    scratch.write("stock/hello.sppr", "entry Main is SysLog(\"stock hello\"); end;");
    scratch.write(
        "domains/example.com/Hello.sppr",
        "entry Main is SysLog(\"domain hello\"); end;",
    );
    let events = run(
        config(&scratch, "", &[]),
        Call::App("HELLO", "petrov@example.com"),
        "",
    );
    assert_eq!(events.logs(), ["domain hello"]);
}

#[test]
fn the_next_task_runs_the_new_version_and_a_broken_one_keeps_the_last_good() {
    let scratch = Scratch::new("reload");
    scratch.write("stock/app.sppr", "entry Main is SysLog(\"version 1\"); end;");
    scratch.write("stock/helper.sppi", "function Word() is return \"one\"; end;");
    scratch.write("stock/uses.sppr", "entry Main is SysLog(helper::Word()); end;");
    let (recorder, ()) = common::world(config(&scratch, "", &[]), async |runtime, _| {
        let petrov = runtime.directory.find("petrov", "example.com").unwrap();
        let run_app = |name: &str| {
            runtime.start_app(name, petrov.clone(), None, Vec::new()).unwrap();
        };
        run_app("app");
        runtime.registry.idle().await;
        // File times have a resolution; make sure the change is seen.
        std::thread::sleep(std::time::Duration::from_millis(20));
        scratch.write("stock/app.sppr", "entry Main is SysLog(\"version 2\"); end;   ");
        run_app("app");
        runtime.registry.idle().await;
        std::thread::sleep(std::time::Duration::from_millis(20));
        scratch.write("stock/app.sppr", "entry Main is SysLog(\"version 3\") end;");
        run_app("app");
        runtime.registry.idle().await;
        run_app("uses");
        runtime.registry.idle().await;
        std::thread::sleep(std::time::Duration::from_millis(20));
        scratch.write("stock/helper.sppi", "function Word() is return \"two\"; end; ");
        run_app("uses");
        runtime.registry.idle().await;
    });
    assert_eq!(
        recorder.logs(),
        ["version 1", "version 2", "version 2", "one", "two"]
    );
    let problems = recorder.errors();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("no longer compiles"), "{problems:?}");
    assert!(problems[0].contains("app.sppr:1:"), "{problems:?}");
}

/// Waits (up to a generous bound, for a loaded machine) until `recorder`
/// holds `count` problem reports; returns them.
fn problems_after(recorder: &common::Recorder, count: usize) -> Vec<String> {
    for _ in 0..500 {
        let problems = recorder.errors();
        if problems.len() >= count {
            return problems;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    recorder.errors()
}

#[test]
fn a_watched_environment_reports_a_broken_save_at_once() {
    use pbx_runtime::env::Environments;
    use std::sync::Arc;

    let scratch = Scratch::new("watch");
    scratch.write("stock/app.sppr", "entry Main is SysLog(helper::Word()); end;");
    scratch.write("stock/helper.sppi", "function Word() is return \"one\"; end;");
    std::fs::create_dir_all(scratch.path("server")).unwrap();
    std::fs::create_dir_all(scratch.path("domains/example.com")).unwrap();
    let recorder = Arc::new(common::Recorder::default());
    let environments = Arc::new(Environments::new(
        scratch.path("stock"),
        scratch.path("server"),
        scratch.path("domains"),
        recorder.clone(),
    ));
    let _watch = environments.watch().unwrap();
    let (first, _) = environments.program("example.com", "app").unwrap();

    // A module the program uses breaks: reported without any call, and the
    // program in use stays the last good one.
    scratch.write("stock/helper.sppi", "function Word() is return \"two\" end;");
    let problems = problems_after(&recorder, 1);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("no longer compiles"), "{problems:?}");
    assert!(problems[0].contains("helper.sppi:1:"), "{problems:?}");
    let (kept, _) = environments.program("example.com", "app").unwrap();
    assert!(Arc::ptr_eq(&first, &kept));

    // A program nobody has run yet, saved broken in a domain's folder.
    scratch.write(
        "domains/example.com/new.sppr",
        "entry Main is\n  SysLog(Unknown());\nend;\n",
    );
    let problems = problems_after(&recorder, 2);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[1].starts_with("does not compile"), "{problems:?}");
    assert!(problems[1].contains("new.sppr:2:10"), "{problems:?}");

    // Fixed: the next use gets the new version, and nothing more is reported.
    scratch.write("stock/helper.sppi", "function Word() is return \"three\"; end;");
    let (fixed, _) = environments.program("example.com", "app").unwrap();
    assert!(!Arc::ptr_eq(&first, &fixed));
    assert!(fixed.files().iter().any(|file| file.text().contains("three")));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(recorder.errors().len(), 2, "{:?}", recorder.errors());
}

/// The server's music on hold is given to the media engine again when a
/// prompt of the environments changes (`Server::start` listens): the
/// watch says so.
#[test]
fn a_watched_environment_tells_when_a_prompt_changes() {
    use pbx_runtime::env::Environments;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let scratch = Scratch::new("watch-audio");
    for layer in ["stock", "server", "domains/example.com"] {
        std::fs::create_dir_all(scratch.path(layer)).unwrap();
    }
    let environments = Arc::new(Environments::new(
        scratch.path("stock"),
        scratch.path("server"),
        scratch.path("domains"),
        Arc::new(common::Recorder::default()),
    ));
    let _watch = environments.watch().unwrap();
    let changes = environments.audio_changes();
    let changed = |within: Duration| {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if changes.has_changed().unwrap() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    };
    // A program is not a prompt.
    scratch.write("server/app.sppr", "entry Main is end;");
    assert!(!changed(Duration::from_secs(1)));
    scratch.write("server/MOH.WAV", "a new music on hold");
    assert!(changed(Duration::from_secs(5)));
}
