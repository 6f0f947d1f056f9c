//! FEATURES.md §12: a PBX that cannot keep up refuses new calls and never
//! degrades the ones it has. With `limits.max_calls` at 2, a third call
//! gets `503 Service Unavailable` with a `Retry-After`, while the two in
//! progress hear their whole prompt (tcpdump counts what pbxd sends them);
//! once they end, calls are taken again.
// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::capture::Capture;
use common::{assert_passed, repository, sipp, sipp_command_with_media, Pbxd};

/// `tone.sppr` plays a 3 s tone: 150 packets of 20 ms.
const TONE_PACKETS: usize = 150;

#[test]
fn calls_beyond_max_calls_get_503_and_the_calls_in_progress_keep_their_audio() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let pbxd = Pbxd::start(
        "overload",
        &[
            "limits.max_calls=2".into(),
            format!(
                "environments.server={}",
                repository().join("tests/sipp/env").display()
            ),
        ],
    );
    let ports = [pbx_test_peers::free_udp_port(), pbx_test_peers::free_udp_port()];
    let capture = Capture::start("overload", &ports);
    let callers: Vec<_> = ports
        .iter()
        .map(|&port| {
            sipp_command_with_media(
                &sipp_program,
                "uac_answered_then_bye.xml",
                &pbxd,
                port,
                &["-s", "tone%23ivanov"],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sipp runs")
        })
        .collect();
    // Both are answered before the third call comes.
    let answered = |log: &str| log.matches("tone: answered").count();
    let log = pbxd.wait_for(10, |log| answered(log) >= 2);
    assert_eq!(answered(&log), 2, "{log}");

    let refused = sipp(
        &sipp_program,
        "uac_expect_503.xml",
        &pbxd,
        &["-s", "tone%23ivanov"],
    );
    assert_passed(&refused, &pbxd);

    for caller in callers {
        assert_passed(&caller.wait_with_output().unwrap(), &pbxd);
    }
    // The limit counts calls in progress: with those two over, a call is
    // taken again.
    let again = sipp(
        &sipp_program,
        "uac_answered_then_bye.xml",
        &pbxd,
        &["-s", "tone%23ivanov"],
    );
    assert_passed(&again, &pbxd);
    assert!(pbxd
        .log()
        .contains("new call refused: 2 calls in progress (limits.max_calls)"));

    let Some(capture) = capture else {
        return;
    };
    std::thread::sleep(Duration::from_millis(200));
    let packets = capture.stop();
    for port in ports {
        let mut sequences: Vec<u16> = packets
            .iter()
            .filter(|packet| packet.destination_port == port)
            .map(|packet| packet.sequence)
            .collect();
        // Every packet of the tone and the silence around it arrived, in
        // one stream without a gap.
        assert!(
            sequences.len() >= TONE_PACKETS,
            "port {port}: {} packets of {TONE_PACKETS}",
            sequences.len()
        );
        sequences.sort_unstable_by_key(|sequence| sequence.wrapping_sub(sequences_first(&packets, port)));
        for pair in sequences.windows(2) {
            assert_eq!(
                pair[1],
                pair[0].wrapping_add(1),
                "port {port}: a gap in the stream"
            );
        }
    }
}

/// The sequence number of the first packet pbxd sent to `port`.
fn sequences_first(packets: &[common::capture::Rtp], port: u16) -> u16 {
    packets
        .iter()
        .find(|packet| packet.destination_port == port)
        .map_or(0, |packet| packet.sequence)
}
