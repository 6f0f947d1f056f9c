//! Music on hold over SIP (issue 16 item 3): `pbxd serve` with sipp as the
//! phones and tcpdump capturing the RTP pbxd sends, decoded to tell the
//! stock music on hold (its open fifth, 440 and 660 Hz: see
//! `common::audio::MUSIC_SHARE`) and tones from silence.
//!
//! - a caller bridged with ivanov's phone hears the music while the phone
//!   holds the call (a re-INVITE with `a=sendonly`,
//!   tests/sipp/ivanov_holds.xml), and silence again once it takes the
//!   call back; pbxd sends the holding phone nothing meanwhile;
//! - a program that sets `MediaOption("mixMOH", true)` plays its domain's
//!   own `moh.wav` to the caller while it waits, a prompt interrupts it,
//!   and `MediaOption("mixMOH", false)` stops it.

// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::audio::{self, Heard};
use common::caller::{Caller, Ending, Step};
use common::capture::Capture;
use common::peer::{register, Peer};
use common::{assert_passed, repository, sipp_command_with_media, Pbxd};

/// Monday noon in Moscow: ivanov's working hours, so his phone rings.
const IN_HOURS: &str = "clock.start=2026-11-23T12:00:00+03:00";

/// Two UDP ports free now for sipp's RTP, 4 apart at least (sipp also
/// takes the next ports).
fn media_ports() -> (u16, u16) {
    let first = pbx_test_peers::free_udp_port();
    loop {
        let second = pbx_test_peers::free_udp_port();
        if second.abs_diff(first) >= 4 {
            return (first, second);
        }
    }
}

/// How many of `frames` are not silent.
fn loud(frames: &[&Heard]) -> usize {
    frames.iter().filter(|heard| heard.loud()).count()
}

#[test]
fn a_caller_hears_music_while_the_phone_holds_the_call() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let pbxd = Pbxd::start("moh-hold", &[IN_HOURS.into()]);
    let (caller_port, phone_port) = media_ports();
    let Some(capture) = Capture::start("moh-hold", &[caller_port, phone_port]) else {
        return;
    };
    let phone_sip_port = pbx_test_peers::free_udp_port().to_string();
    let phone = Peer::spawn(sipp_command_with_media(
        &sipp_program,
        "ivanov_holds.xml",
        &pbxd,
        phone_port,
        &["-p", &phone_sip_port],
    ));
    register(&sipp_program, &pbxd, "ivanov", "ivanov-demo", &phone_sip_port);
    // Answered after a second; held 2 s later for 4 s; hung up 3 s after.
    let caller = Caller {
        called: "ivanov",
        steps: vec![Step::Pause(9.0)],
        ending: Ending::HangsUp,
        as_phone: None,
    };
    let output = caller.call("moh-hold", &sipp_program, &pbxd, caller_port);
    assert_passed(&output, &pbxd);
    let (phone_output, _) = phone.finish_soon();
    assert_passed(&phone_output, &pbxd);
    std::thread::sleep(Duration::from_millis(300));
    let packets = capture.stop();
    let caller = audio::Peer::of(&packets, caller_port);
    let phone = audio::Peer::of(&packets, phone_port);
    let origin = caller.heard.first().map_or(0.0, |heard| heard.time);
    let describe = || format!("the caller heard:\n{}\n{}", caller.describe(origin), pbxd.log());

    let music: Vec<f64> = caller
        .heard
        .iter()
        .filter(|heard| heard.music())
        .map(|heard| heard.time)
        .collect();
    let (Some(&start), Some(&end)) = (music.first(), music.last()) else {
        panic!("no music on hold: {}", describe());
    };
    // The music lasts as long as the hold, without a break.
    assert!(
        (3.5..=4.5).contains(&(end - start)),
        "{:.2} s of music: {}",
        end - start,
        describe()
    );
    let during: Vec<&Heard> = caller.heard_between(start, end).collect();
    assert!(
        music.len() + 2 >= during.len(),
        "{} of {} frames music: {}",
        music.len(),
        during.len(),
        describe()
    );
    // Silence before the hold and after it.
    let before: Vec<&Heard> = caller.heard_between(start - 1.5, start - 0.1).collect();
    let after: Vec<&Heard> = caller.heard_between(end + 0.1, end + 2.0).collect();
    assert!(
        before.len() >= 50 && loud(&before) == 0,
        "before the hold: {}",
        describe()
    );
    assert!(
        after.len() >= 75 && loud(&after) == 0,
        "after the hold: {}",
        describe()
    );
    // The phone that holds is sent nothing meanwhile; before and after, silence.
    assert!(
        phone.heard_between(start - 1.5, start - 0.1).count() >= 50,
        "{}",
        pbxd.log()
    );
    assert_eq!(
        phone.heard_between(start + 0.2, end - 0.2).count(),
        0,
        "{}",
        pbxd.log()
    );
    assert!(
        phone.heard_between(end + 0.1, end + 2.0).count() >= 75,
        "{}",
        pbxd.log()
    );
}

/// The domain's own music on hold: a 350 Hz tone, in a domains folder of
/// the test's own.
fn domain_with_its_own_music(name: &str) -> std::path::PathBuf {
    let domains = std::env::temp_dir().join(format!("pbxd-moh-{name}-{}", std::process::id()));
    let domain = domains.join("example.com");
    std::fs::create_dir_all(&domain).unwrap();
    let tone = pbx_media::Prompt::tone(&[350], None, Duration::from_secs(2));
    std::fs::write(
        domain.join("moh.wav"),
        pbx_media::wav::pcm16_mono(tone.samples(), 8000),
    )
    .unwrap();
    domains
}

#[test]
fn mix_moh_plays_the_domains_music_while_a_program_waits() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let domains = domain_with_its_own_music("mix");
    let pbxd = Pbxd::start(
        "moh-mix",
        &[
            format!(
                "environments.server={}",
                repository().join("tests/sipp/env").display()
            ),
            format!("environments.domains={}", domains.display()),
        ],
    );
    let (caller_port, _) = media_ports();
    let Some(capture) = Capture::start("moh-mix", &[caller_port]) else {
        return;
    };
    let caller = Caller {
        called: "music%23petrov",
        steps: Vec::new(),
        ending: Ending::PbxdHangsUp,
        as_phone: None,
    };
    let output = caller.call("moh-mix", &sipp_program, &pbxd, caller_port);
    assert_passed(&output, &pbxd);
    std::thread::sleep(Duration::from_millis(300));
    let packets = capture.stop();
    let _ = std::fs::remove_dir_all(&domains);
    let log = pbxd.wait_for_log(&["music: done"]);
    assert!(log.contains("music: on") && log.contains("music: off"), "{log}");
    let caller = audio::Peer::of(&packets, caller_port);
    let origin = caller.heard.first().map_or(0.0, |heard| heard.time);
    let describe = || format!("the caller heard:\n{}\n{log}", caller.describe(origin));

    let times = |wanted: fn(&Heard) -> bool| -> Vec<f64> {
        caller
            .heard
            .iter()
            .filter(|heard| wanted(heard))
            .map(|heard| heard.time)
            .collect()
    };
    let music = times(|heard| heard.tone_at(350.0));
    let tone = times(|heard| heard.tone_at(1000.0));
    // The domain's music, not the stock one.
    assert!(times(Heard::music).is_empty(), "the stock music: {}", describe());
    let (Some(&tone_start), Some(&tone_end)) = (tone.first(), tone.last()) else {
        panic!("no tone: {}", describe());
    };
    assert!(
        (45..=55).contains(&tone.len()),
        "{} frames of tone: {}",
        tone.len(),
        describe()
    );
    // Music before the tone and after it (a frame of both where they meet
    // is neither).
    let music_before = music.iter().filter(|&&time| time < tone_start).count();
    let music_after = music.iter().filter(|&&time| time > tone_end).count();
    assert!(
        music_before >= 125 && music_after >= 125,
        "{music_before} and {music_after} frames of music: {}",
        describe()
    );
    // Off, silence until the hang-up.
    let (Some(&music_end), Some(last)) = (music.last(), caller.heard.last()) else {
        panic!("{}", describe());
    };
    let after: Vec<&Heard> = caller.heard_between(music_end + 0.1, last.time).collect();
    assert!(
        after.len() >= 75 && loud(&after) == 0,
        "after the music: {}",
        describe()
    );
}
