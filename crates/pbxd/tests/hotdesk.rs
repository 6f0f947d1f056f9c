//! Phones as an office has them (issue 11), over real SIP: sipp as the
//! physical phones, as callers and as the provider's trunk.
//!
//! - seed 000 §29, whole: three virtual lines on two physical phones, each
//!   login and logout made with the `*55` feature code, and after each a
//!   call out through the trunk, whose caller ID says whose settings are in
//!   force (or whose class of service keeps the call from the trunk);
//!   speed dials and `*98` are the line's; a restart in the middle keeps
//!   the logins; calls to each line
//!   ring the phone it is logged in on, which sees the line called; wrong
//!   PINs end the call and lock the line out;
//! - a call to an account forks to all its phones: the first to answer
//!   takes it and the others get CANCEL, both for a call from outside and
//!   for a script's (click-to-dial's) call;
//! - a phone set up with the server's IP address as its domain;
//! - who may call what: an account that is not public refuses callers who
//!   do not authenticate, and feature codes are for the domain's phones.

// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::caller::{Caller, Ending, Step};
use common::peer::{invites, register_by, Peer};
use common::{assert_passed, lines_with, Pbxd};

/// Two physical phones (desk1, desk2: extensions 501, 502) and three
/// virtual lines (anna 301, boris 302, vera 303), each with its own caller
/// ID; a trunk for numbers starting with 8 at `trunk_port`.
fn office(trunk_port: u16) -> Vec<String> {
    let mut settings = vec![
        "sip.rtp_timeout_seconds=120".to_string(),
        format!("trunks.provider.proxy=127.0.0.1:{trunk_port}"),
        "trunks.provider.numbers=[\"8*\"]".to_string(),
        // The virtual lines' caller IDs go out in E.164 (the desks' as
        // they are).
        "trunks.provider.outgoing_caller=[{ match = \"7495111*\", prepend = \"+\" }]".to_string(),
    ];
    let lines = [
        ("desk1", "501", "74950000501", None),
        ("desk2", "502", "74950000502", None),
        ("anna", "301", "74951110301", Some("730419")),
        ("boris", "302", "74951110302", Some("582046")),
        ("vera", "303", "74951110303", Some("961357")),
    ];
    for (name, extension, caller_id, pin) in lines {
        let account = format!("domains.\"example.com\".accounts.{name}");
        settings.push(format!("{account}.password={name}-pw"));
        settings.push(format!("{account}.aliases=[\"{extension}\"]"));
        settings.push(format!("{account}.caller_id=\"{caller_id}\""));
        // boris may call only within the server.
        let class = if name == "boris" { "internal" } else { "national" };
        settings.push(format!("{account}.class_of_service={class}"));
        settings.push(format!("{account}.public=true"));
        if let Some(pin) = pin {
            settings.push(format!("{account}.pin=\"{pin}\""));
        }
    }
    // anna's speed dial 7 is a number outside.
    settings
        .push("domains.\"example.com\".accounts.anna.speed_dials={ \"7\" = \"84957654321\" }".to_string());
    settings
}

/// The password `office` gives `name`.
fn password(name: &'static str) -> &'static str {
    match name {
        "desk1" => "desk1-pw",
        "desk2" => "desk2-pw",
        _ => unreachable!("only the desks call"),
    }
}

/// The user part of a SIP URI in `text` (`"A" <sip:user@host>;tag=1`).
fn user_of(text: &str) -> String {
    text.split("sip:")
        .nth(1)
        .and_then(|rest| rest.split(['@', '>', ';', ' ']).next())
        .unwrap_or_else(|| panic!("no SIP URI in {text}"))
        .to_string()
}

/// The first INVITE among messages a peer received.
fn first_invite(received: &[String]) -> &str {
    received
        .iter()
        .find(|message| message.starts_with("INVITE "))
        .unwrap_or_else(|| panic!("no INVITE in {received:#?}"))
}

/// `desk` calls 84951234567, and the trunk answers: the caller ID the trunk
/// was given (the From's user part).
fn caller_id_out(
    sipp_program: &Path,
    pbxd: &Pbxd,
    trunk_port: u16,
    desk: &'static str,
    step: &str,
) -> String {
    dial_out(sipp_program, pbxd, trunk_port, desk, "84951234567", step).1
}

/// `desk` dials `dialled`, which goes out through the trunk: the number the
/// trunk was called at, and the caller ID it was given.
fn dial_out(
    sipp_program: &Path,
    pbxd: &Pbxd,
    trunk_port: u16,
    desk: &'static str,
    dialled: &'static str,
    step: &str,
) -> (String, String) {
    let trunk = Peer::start(sipp_program, pbxd, "trunk_answers.xml", trunk_port, &[]);
    let caller = Caller {
        called: dialled,
        steps: vec![Step::Pause(0.5)],
        ending: Ending::HangsUp,
        as_phone: Some((desk, password(desk))),
    };
    let called = caller.call(step, sipp_program, pbxd, pbx_test_peers::free_udp_port());
    let (trunk, received) = trunk.finish_soon();
    assert_passed(&called, pbxd);
    assert_passed(&trunk, pbxd);
    let invite = first_invite(&received);
    let from = common::header(invite, "From").unwrap_or_default();
    (user_of(invite), user_of(from))
}

/// `desk` calls 84951234567, which its class of service in force does not
/// allow: pbxd answers with the refusal prompt and hangs up, and the trunk
/// never hears of it.
fn refused_out(sipp_program: &Path, pbxd: &Pbxd, trunk_port: u16, desk: &'static str, step: &str) {
    let trunk = Peer::start(sipp_program, pbxd, "trunk_answers.xml", trunk_port, &[]);
    let caller = Caller {
        called: "84951234567",
        steps: Vec::new(),
        ending: Ending::PbxdHangsUp,
        as_phone: Some((desk, password(desk))),
    };
    let called = caller.call(step, sipp_program, pbxd, pbx_test_peers::free_udp_port());
    assert_passed(&called, pbxd);
    // Time enough for an INVITE to reach the trunk, had one been sent.
    std::thread::sleep(Duration::from_millis(500));
    let received = trunk.received();
    assert!(
        invites(&received).is_empty(),
        "{step}: the trunk was called: {received:#?}"
    );
}

/// `desk` dials the hot desk code and keys `keys` (with a pause after each
/// `#`); pbxd hangs up when it is done.
fn hot_desk(sipp_program: &Path, pbxd: &Pbxd, desk: &'static str, keys: &[&'static str], step: &str) {
    let mut steps = vec![Step::Pause(0.5)];
    for &keys in keys {
        steps.push(Step::Keys(keys));
        steps.push(Step::Pause(0.3));
    }
    let caller = Caller {
        called: "*55",
        steps,
        ending: Ending::PbxdHangsUp,
        as_phone: Some((desk, password(desk))),
    };
    let called = caller.call(step, sipp_program, pbxd, pbx_test_peers::free_udp_port());
    assert_passed(&called, pbxd);
}

/// Whether an INVITE reached a phone.
fn rang(phone: &Peer) -> bool {
    !invites(&phone.received()).is_empty()
}

/// How many of `method` a phone received.
fn count(phone: &Peer, method: &str) -> usize {
    phone
        .received()
        .iter()
        .filter(|message| message.starts_with(&format!("{method} ")))
        .count()
}

/// A caller from outside calls `called` and hangs up after a moment.
fn call_from_outside(sipp_program: &Path, pbxd: &Pbxd, called: &'static str, step: &str) {
    let caller = Caller {
        called,
        steps: vec![Step::Pause(1.5)],
        ending: Ending::HangsUp,
        as_phone: None,
    };
    let output = caller.call(step, sipp_program, pbxd, pbx_test_peers::free_udp_port());
    assert_passed(&output, pbxd);
}

/// Seed 000 §29 over SIP: "calls made from the physical telephone have the
/// settings of the last virtual telephone to log in; when that one logs
/// out, the settings revert to those of the physical telephone, even though
/// others remain; re-logging in on one of the others causes its settings
/// to take effect."
#[test]
fn virtual_lines_follow_the_seeds_rules_over_sip() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let trunk_port = pbx_test_peers::free_udp_port();
    let mut pbxd = Pbxd::start_logging("hotdesk-seed", &office(trunk_port), "info,rsipstack=warn");
    let out = |pbxd: &Pbxd, desk, step: &str| caller_id_out(&sipp_program, pbxd, trunk_port, desk, step);

    // desk1 on its own settings.
    assert_eq!(out(&pbxd, "desk1", "own"), "74950000501");
    // anna logs in on desk1: her settings.
    hot_desk(&sipp_program, &pbxd, "desk1", &["301#", "730419#"], "anna-in");
    assert_eq!(out(&pbxd, "desk1", "anna"), "+74951110301");
    // boris logs in on desk1 too: the last login's settings, whose class
    // of service (internal) keeps the number from the trunk.
    hot_desk(&sipp_program, &pbxd, "desk1", &["302#", "582046#"], "boris-in");
    refused_out(&sipp_program, &pbxd, trunk_port, "desk1", "boris");
    assert!(pbxd.log().contains("notallowed: boris@example.com may not call"));
    // boris logs out (1): desk1's own settings, though anna remains.
    hot_desk(&sipp_program, &pbxd, "desk1", &["302#", "1"], "boris-out");
    assert_eq!(out(&pbxd, "desk1", "after-boris"), "74950000501");

    // A restart keeps all of it.
    pbxd = pbxd.restart();
    assert_eq!(out(&pbxd, "desk1", "restarted"), "74950000501");
    // anna logs in again (2, no PIN): her settings again, her speed dials
    // and her voicemail (*98) too.
    hot_desk(&sipp_program, &pbxd, "desk1", &["301#", "2"], "anna-again");
    assert_eq!(out(&pbxd, "desk1", "anna-again"), "+74951110301");
    let (number, caller_id) = dial_out(&sipp_program, &pbxd, trunk_port, "desk1", "7", "speed-dial");
    assert_eq!(
        (number.as_str(), caller_id.as_str()),
        ("84957654321", "+74951110301")
    );
    let voicemail = Caller {
        called: "*98",
        steps: vec![Step::Pause(1.0)],
        ending: Ending::HangsUp,
        as_phone: Some(("desk1", "desk1-pw")),
    };
    assert_passed(
        &voicemail.call("voicemail", &sipp_program, &pbxd, pbx_test_peers::free_udp_port()),
        &pbxd,
    );
    let log = pbxd.log();
    assert!(
        log.lines()
            .any(|line| line.contains("start voicemail.sppr") && line.contains("account=anna@example.com")),
        "{log}"
    );
    // vera on desk2: desk2 has hers, desk1 keeps anna's.
    hot_desk(&sipp_program, &pbxd, "desk2", &["303#", "961357#"], "vera-in");
    assert_eq!(out(&pbxd, "desk2", "vera"), "+74951110303");
    assert_eq!(out(&pbxd, "desk1", "still-anna"), "+74951110301");

    // Calls to each line ring the phone it is logged in on, which is shown
    // the line called.
    let desk1 = Peer::phone(
        &sipp_program,
        &pbxd,
        "desk1",
        "desk1-pw",
        "stock_phone_answers.xml",
        1,
    );
    let desk2 = Peer::phone(
        &sipp_program,
        &pbxd,
        "desk2",
        "desk2-pw",
        "stock_phone_answers.xml",
        1,
    );
    call_from_outside(&sipp_program, &pbxd, "301", "to-anna");
    assert!(!rang(&desk2), "a call to anna rang desk2:\n{}", desk2.messages());
    let (desk1, received) = desk1.finish_soon();
    assert_passed(&desk1, &pbxd);
    let to = common::header(first_invite(&received), "To").unwrap_or_default();
    assert!(
        to.contains("sip:anna@example.com"),
        "desk1 was not shown anna's line: {to}"
    );
    call_from_outside(&sipp_program, &pbxd, "303", "to-vera");
    assert_passed(&desk2.finish_soon().0, &pbxd);

    // Three wrong PINs for boris on desk2 end the call; the line is then
    // locked out, the right PIN too, and desk2 keeps vera's settings.
    hot_desk(
        &sipp_program,
        &pbxd,
        "desk2",
        &["302#", "111111#", "222222#", "333333#"],
        "wrong-pins",
    );
    hot_desk(&sipp_program, &pbxd, "desk2", &["302#", "582046#"], "locked-out");
    assert_eq!(out(&pbxd, "desk2", "after-lockout"), "+74951110303");
    let log = pbxd.log();
    assert_eq!(
        common::lines_with(&log, "hot desk login refused: wrong PIN").len(),
        3,
        "{log}"
    );
    assert!(log.contains("hotdesk: 302 not logged in: locked out"), "{log}");
    // No PIN in the log, right or wrong (as a whole number anywhere after
    // a line's time stamp).
    for line in log.lines() {
        let after_time = line.split_once(' ').map_or("", |(_, rest)| rest);
        for pin in ["730419", "582046", "961357", "111111", "222222", "333333"] {
            assert!(
                !after_time
                    .split(|c: char| !c.is_ascii_digit())
                    .any(|number| number == pin),
                "a PIN ({pin}) is in the log: {line}"
            );
        }
    }
}

/// A call to an account with two phones rings both; the second answers,
/// the first gets CANCEL. The same for a script's call (click-to-dial,
/// connect=true to a program that plays a tone).
#[test]
fn a_call_to_an_account_rings_all_its_phones_at_once() {
    let (Some(sipp_program), Some(curl_program)) = (pbx_test_peers::sipp(), pbx_test_peers::curl()) else {
        return;
    };
    let environment = common::repository().join("tests/sipp/env");
    let pbxd = Pbxd::start(
        "hotdesk-fork",
        &[
            "clock.start=2026-11-23T10:00:00+03:00".to_string(),
            format!("environments.server={}", environment.display()),
        ],
    );
    let first = Peer::phone(
        &sipp_program,
        &pbxd,
        "ivanov",
        "ivanov-demo",
        "uas_ring_until_cancel.xml",
        2,
    );
    let second = Peer::phone(
        &sipp_program,
        &pbxd,
        "ivanov",
        "ivanov-demo",
        "stock_phone_answers.xml",
        2,
    );
    call_from_outside(&sipp_program, &pbxd, "201", "fork-incoming");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        rang(&first) && rang(&second),
        "{}\n{}",
        first.messages(),
        second.messages()
    );
    assert_eq!(count(&first, "CANCEL"), 1, "{}", first.messages());

    let (status, body) = common::curl(
        &curl_program,
        &pbxd,
        &[],
        "/remote_call.htm?user=ivanov&dest=tone%23ivanov&connect=true&auth=ivanov%3Aivanov-demo",
    );
    assert_eq!(status, 200, "{body}");
    // The tone plays 3 s, then the program hangs up the phone that answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while count(&second, "INVITE") < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_passed(&second.finish_soon().0, &pbxd);
    // Both calls rang the first phone too, and were cancelled there.
    let (first, received) = first.finish_soon();
    assert_passed(&first, &pbxd);
    assert_eq!(invites(&received).len(), 2, "{received:#?}");
    assert_eq!(
        received
            .iter()
            .filter(|message| message.starts_with("CANCEL "))
            .count(),
        2,
        "{received:#?}"
    );
}

/// A phone whose domain is the server's IP address registers, and is rung.
#[test]
fn a_phone_registers_with_the_servers_address_as_its_domain() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let pbxd = Pbxd::start(
        "hotdesk-address",
        &["clock.start=2026-11-23T10:00:00+03:00".to_string()],
    );
    let phone_port = pbx_test_peers::free_udp_port();
    let phone = Peer::start(
        &sipp_program,
        &pbxd,
        "stock_phone_answers.xml",
        phone_port,
        &["-rtp_echo"],
    );
    register_by(
        &sipp_program,
        &pbxd,
        "register_by_address.xml",
        "petrov",
        "petrov-demo",
        &phone_port.to_string(),
    );
    call_from_outside(&sipp_program, &pbxd, "202", "by-address");
    assert_passed(&phone.finish_soon().0, &pbxd);
}

/// The operator is not public: a caller who does not authenticate gets
/// 403, and a feature code dialled from outside only a challenge.
#[test]
fn only_the_domains_phones_reach_what_is_not_public() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let pbxd = Pbxd::start("hotdesk-public", &[]);
    for (called, code) in [("100", 403), ("tone%23operator", 403), ("*55", 407)] {
        let caller = Caller {
            called,
            steps: Vec::new(),
            ending: Ending::Refused(code),
            as_phone: None,
        };
        let output = caller.call(
            &format!("public-{code}"),
            &sipp_program,
            &pbxd,
            pbx_test_peers::free_udp_port(),
        );
        assert_passed(&output, &pbxd);
    }
}

/// The self-service code (*72, `stdlib-scripts/service.sppr`): petrov
/// turns do not disturb on (1), and a call to him no longer rings his
/// phone but goes where his rules send a busy or unanswered call:
/// voicemail; it outlasts a restart. Off again, his phone rings. Then he
/// forwards every call to 200 (2, `200#`), and a call to him reaches the
/// auto-attendant. He changes his PIN (4), and the new one logs his line
/// in on another phone, also after a restart.
#[test]
fn the_service_code_sets_do_not_disturb_forwarding_and_the_pin() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let mut pbxd = Pbxd::start(
        "hotdesk-service",
        &["clock.start=2026-11-23T10:00:00+03:00".to_string()],
    );
    // petrov's phone answers the two calls that should ring it.
    let phone = Peer::phone(
        &sipp_program,
        &pbxd,
        "petrov",
        "petrov-demo",
        "stock_phone_answers.xml",
        2,
    );
    let service = |pbxd: &Pbxd, keys: &'static str, step: &str| {
        let caller = Caller {
            called: "*72",
            steps: vec![Step::Pause(0.5), Step::Keys(keys)],
            ending: Ending::PbxdHangsUp,
            as_phone: Some(("petrov", "petrov-demo")),
        };
        assert_passed(
            &caller.call(step, &sipp_program, pbxd, pbx_test_peers::free_udp_port()),
            pbxd,
        );
    };
    // A call to 202 now: whether petrov's phone rang, and what started.
    let call_petrov = |pbxd: &Pbxd, step: &str, phone: &Peer| {
        let (rang, from) = (invites(&phone.received()).len(), pbxd.log().len());
        call_from_outside(&sipp_program, pbxd, "202", step);
        std::thread::sleep(Duration::from_millis(300));
        let log = pbxd.log();
        let started: Vec<String> = lines_with(&log[from..], "start ")
            .iter()
            .filter_map(|line| {
                line.split("start ")
                    .nth(1)?
                    .split_whitespace()
                    .next()
                    .map(str::to_string)
            })
            .collect();
        (invites(&phone.received()).len() > rang, started)
    };
    assert_eq!(call_petrov(&pbxd, "before", &phone), (true, Vec::new()));
    service(&pbxd, "1", "dnd-on");
    assert_eq!(
        call_petrov(&pbxd, "dnd", &phone),
        (false, vec!["voicemail.sppr".to_string()])
    );
    pbxd = pbxd.restart();
    assert_eq!(
        call_petrov(&pbxd, "dnd-restarted", &phone),
        (false, vec!["voicemail.sppr".to_string()])
    );
    service(&pbxd, "1", "dnd-off");
    assert_eq!(call_petrov(&pbxd, "after", &phone), (true, Vec::new()));
    service(&pbxd, "2200#", "forward");
    assert_eq!(
        call_petrov(&pbxd, "forwarded", &phone),
        (false, vec!["pbx.sppr".to_string()])
    );
    assert!(
        pbxd.log().contains("to petrov@example.com: forwarded to 200"),
        "{}",
        pbxd.log()
    );
    assert_passed(&phone.finish_soon().0, &pbxd);

    // 4: a new PIN, twice. It logs petrov's line in on ivanov's phone
    // (hot desk), and, after a restart, on the operator's.
    service(&pbxd, "4864209#864209#", "pin");
    let login = |pbxd: &Pbxd, phone: &'static str, password: &'static str, step: &str| {
        let caller = Caller {
            called: "*55",
            steps: vec![
                Step::Pause(0.5),
                Step::Keys("202#"),
                Step::Pause(0.3),
                Step::Keys("864209#"),
            ],
            ending: Ending::PbxdHangsUp,
            as_phone: Some((phone, password)),
        };
        assert_passed(
            &caller.call(step, &sipp_program, pbxd, pbx_test_peers::free_udp_port()),
            pbxd,
        );
        let wanted = format!("hot desk login phone={phone}@example.com line=petrov@example.com");
        assert!(pbxd.log().contains(&wanted), "{step}: {}", pbxd.log());
    };
    login(&pbxd, "ivanov", "ivanov-demo", "new-pin");
    assert!(
        !pbxd.log().contains("864209"),
        "the PIN is in the log: {}",
        pbxd.log()
    );
    pbxd = pbxd.restart();
    login(&pbxd, "operator", "operator-demo", "new-pin-restarted");
    assert!(
        !pbxd.log().contains("864209"),
        "the PIN is in the log: {}",
        pbxd.log()
    );
}
