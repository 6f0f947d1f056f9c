//! DESIGN.md §3: a call leg is owned by one task, and whatever way a task
//! ends, its legs are released (500 for an unanswered INVITE, BYE for an
//! answered one, CANCEL for an outgoing call still ringing) and their media
//! sockets closed. The server runs in this process, so the test can count
//! legs and RTP sockets back to zero; sipp is the peer.

// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use pbx_runtime::observe::LogObserver;
use pbx_runtime::Config;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/sipp")
        .join(name)
}

fn sipp_command(sipp: &Path, target: SocketAddr, scenario_name: &str, extra: &[&str]) -> Command {
    let media_port = pbx_test_peers::free_udp_port().to_string();
    let mut command = Command::new(sipp);
    command
        .arg(target.to_string())
        .arg("-sf")
        .arg(scenario(scenario_name))
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", &media_port])
        .args([
            "-m",
            "1",
            "-l",
            "1",
            "-nostdin",
            "-timeout",
            "60s",
            "-timeout_error",
        ])
        .args(extra)
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn passed(output: &Output) -> Result<(), String> {
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "sipp failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[test]
fn every_way_a_task_ends_releases_its_legs_and_media() {
    let Some(sipp) = pbx_test_peers::sipp() else {
        return;
    };
    let scratch = std::env::temp_dir().join(format!("pbx-sip-legs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("server")).unwrap();
    let phone_port = pbx_test_peers::free_udp_port();
    // Three ways to end: `stop` before answering, a run-time error after
    // answering, and `stop` while an outgoing call rings.
    std::fs::write(scratch.join("server/quit.sppr"), "entry Main is\n  stop;\nend;\n").unwrap();
    std::fs::write(
        scratch.join("server/fail.sppr"),
        "entry Main is\n  Void(AcceptCall());\n  zero = 0;\n  SysLog(String(1 / zero));\nend;\n",
    )
    .unwrap();
    std::fs::write(
        scratch.join("server/dial.sppr"),
        format!(
            "entry Main is\n  Void(StartCall(\"sip:phone@127.0.0.1:{phone_port}\"));\n  \
             Void(ReadInput(2));\n  stop;\nend;\n"
        ),
    )
    .unwrap();
    let text = format!(
        "data_dir = \"{data}\"\n[sip]\nlisten = \"127.0.0.1:0\"\n\
         [environments]\nstock = \"{stock}\"\nserver = \"{server}\"\ndomains = \"{domains}\"\n\
         [domains.\"example.com\".accounts.petrov]\npassword = \"x\"\nclass_of_service = \"international\"\npublic = true\n",
        data = scratch.join("data").display(),
        stock = scratch.join("stock").display(),
        server = scratch.join("server").display(),
        domains = scratch.join("domains").display(),
    );
    // Two shards and two media workers: legs and sessions are released
    // wherever they ran.
    let config = Config::parse(
        &text,
        "test.toml",
        &["runtime.threads=2".into(), "media.threads=2".into()],
    )
    .unwrap();
    let server = pbx_sip::start(config, Arc::new(LogObserver)).unwrap();
    let address = server.network().local_addr();
    let outcome = (|| -> Result<(), String> {
        // 1. `stop` before answering: the caller gets 500.
        let quit = sipp_command(&sipp, address, "uac_expect_500.xml", &["-s", "quit%23petrov"])
            .spawn()
            .unwrap();
        passed(&quit.wait_with_output().unwrap())?;
        // 2. A run-time error after answering: the caller gets BYE.
        let fail = sipp_command(
            &sipp,
            address,
            "uac_answered_then_bye.xml",
            &["-s", "fail%23petrov"],
        )
        .spawn()
        .unwrap();
        passed(&fail.wait_with_output().unwrap())?;
        // 3. `stop` while an outgoing call rings: the phone gets CANCEL.
        let phone_port = phone_port.to_string();
        let phone = sipp_command(&sipp, address, "uas_ring_until_cancel.xml", &["-p", &phone_port])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let (started, dialled) = std::sync::mpsc::channel();
        server.run_on(1, move |runtime| {
            let petrov = runtime.directory.find("petrov", "example.com").unwrap();
            let result = runtime.start_app("dial", petrov, None, Vec::new());
            let _ = started.send(result.map(|_| ()).map_err(|error| error.to_string()));
        });
        let phone_output = phone.wait_with_output().unwrap();
        dialled.recv().unwrap()?;
        passed(&phone_output)?;

        // Everything is released: no task, no leg, no RTP socket, no call
        // record still open (each was written when its last leg ended).
        let media = server.media().unwrap();
        let counts = || {
            (
                server.runtime().registry.count(),
                server.network().live_legs(),
                media.open_sessions(),
                server.runtime().records.live().len(),
            )
        };
        for _ in 0..100 {
            if counts() == (0, 0, 0, 0) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if counts() != (0, 0, 0, 0) {
            return Err(format!(
                "tasks, legs, media sockets and open call records left: {:?}",
                counts()
            ));
        }
        Ok(())
    })();
    server.shutdown(Duration::ZERO);
    let _ = std::fs::remove_dir_all(&scratch);
    if let Err(error) = outcome {
        panic!("{error}");
    }
}
