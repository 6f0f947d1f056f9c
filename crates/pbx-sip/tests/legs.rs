//! DESIGN.md §3: a call leg is owned by one task, and whatever way a task
//! ends, its legs are released (500 for an unanswered INVITE, BYE for an
//! answered one, CANCEL for an outgoing call still ringing) and their media
//! sockets closed. The server runs in this process, so the test can count
//! legs and RTP sockets back to zero; sipp is the peer.

// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use pbx_media::engine::{MediaConfig, MediaEngine};
use pbx_runtime::observe::LogObserver;
use pbx_runtime::{Config, Runtime};
use pbx_sip::network::SipNetwork;
use pbx_sip::server::SipServer;

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

/// Waits for a child process off the async thread.
async fn finished(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().expect("sipp ends"))
        .await
        .expect("waiting for sipp")
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
         [domains.\"example.com\".accounts.petrov]\npassword = \"x\"\nclass_of_service = \"international\"\n",
        data = scratch.join("data").display(),
        stock = scratch.join("stock").display(),
        server = scratch.join("server").display(),
        domains = scratch.join("domains").display(),
    );
    let config = Config::parse(&text, "test.toml", &[]).unwrap();
    let io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let main = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let media = io.block_on(async { MediaEngine::start(MediaConfig::default()) });
    let counting = media.clone();
    let handle = io.handle().clone();
    let local = tokio::task::LocalSet::new();
    let outcome: Result<(), String> = local.block_on(&main, async move {
        let server = SipServer::bind(config.clone(), media).await.unwrap();
        let address = server.local_addr();
        let shared = server.shared();
        let network = Arc::new(SipNetwork::new(server.shared()));
        let runtime = Runtime::new(config, network, Arc::new(LogObserver), handle, false).unwrap();
        let serving = tokio::task::spawn_local(server.serve(runtime.clone()));

        // 1. `stop` before answering: the caller gets 500.
        let quit = sipp_command(&sipp, address, "uac_expect_500.xml", &["-s", "quit%23petrov"])
            .spawn()
            .unwrap();
        passed(&finished(quit).await)?;
        // 2. A run-time error after answering: the caller gets BYE.
        let fail = sipp_command(
            &sipp,
            address,
            "uac_answered_then_bye.xml",
            &["-s", "fail%23petrov"],
        )
        .spawn()
        .unwrap();
        passed(&finished(fail).await)?;
        // 3. `stop` while an outgoing call rings: the phone gets CANCEL.
        let phone_port = phone_port.to_string();
        let phone = sipp_command(&sipp, address, "uas_ring_until_cancel.xml", &["-p", &phone_port])
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let petrov = runtime.directory.find("petrov", "example.com").unwrap();
        let dialled = runtime.start_app("dial", petrov, None, Vec::new());
        let phone_output = finished(phone).await;
        dialled.map_err(|error| error.to_string())?;
        passed(&phone_output)?;

        // Everything is released: no task, no leg, no RTP socket.
        for _ in 0..100 {
            if runtime.registry.count() == 0 && shared.live_legs() == 0 && counting.open_sessions() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let counts = (
            runtime.registry.count(),
            shared.live_legs(),
            counting.open_sessions(),
        );
        serving.abort();
        shared.shutdown();
        if counts != (0, 0, 0) {
            return Err(format!("tasks, legs and media sockets left: {counts:?}"));
        }
        Ok(())
    });
    io.shutdown_background();
    let _ = std::fs::remove_dir_all(&scratch);
    if let Err(error) = outcome {
        panic!("{error}");
    }
}
