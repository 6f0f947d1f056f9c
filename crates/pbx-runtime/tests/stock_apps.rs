//! The stock applications of stdlib-scripts/ (pbx.sppr, voicemail.sppr,
//! conference.sppr) on simulated calls, configured as the demo is. The
//! same programs over real SIP: crates/pbxd/tests/stock_apps.rs.

mod common;

use std::time::Duration;

use common::{config, repository_stock, run, world, Call, Scratch};
use pbx_runtime::sim::{parse_script, Keys};
use pbx_test_peers::SmtpServer;

/// The pbx account as in pbxd.toml; the clock on a Monday at 10:00 Moscow.
const PBX: &str = r#"
[simulation]
phones = { ivanov = "answer after 2s", petrov = "answer after 2s", operator = "answer after 2s" }

[domains."example.com".accounts.pbx]
aliases = ["200", "conference"]
preferences = { DepartmentMenu = ["ivanov", "petrov", "operator"], DirectoryPrefix = "1", DirectoryDigits = 3, ConferenceRooms = { "1" = "1234", "7" = "" } }
"#;

fn demo(scratch: &Scratch, extra: &str, settings: &[&str]) -> pbx_runtime::Config {
    let mut overrides = vec![
        format!("environments.stock={}", repository_stock().display()),
        "clock.start=2026-11-23T10:00:00+03:00".to_string(),
    ];
    overrides.extend(settings.iter().map(|setting| setting.to_string()));
    config(scratch, &format!("{PBX}{extra}"), &overrides)
}

fn menu() -> Vec<&'static str> {
    // DirectoryPrefix 1: departments are numbered from 2.
    vec![
        "welcome.wav",
        "dialknownextension.wav",
        "forivanov.wav",
        "press.wav",
        "2.wav",
        "forpetrov.wav",
        "press.wav",
        "3.wav",
        "foroperator.wav",
        "press.wav",
        "0.wav",
        "tospeakoperator.wav",
    ]
}

/// The auto-attendant handed the call on, and `account`'s phone answered.
fn assert_connected(events: &common::Recorder, account: &str) {
    let calls = events.calls();
    assert!(
        calls.iter().any(|call| call.starts_with("handed on to")),
        "{calls:?}"
    );
    let routing = events.routing();
    let answered = format!("{account} answered; connected");
    assert!(routing.contains(&answered), "{routing:?}");
}

#[test]
fn the_menu_skips_the_directory_prefix_puts_the_operator_last_and_silence_reaches_the_operator() {
    let scratch = Scratch::new("stock-menu");
    let events = run(demo(&scratch, "", &[]), Call::To("200@example.com"), "");
    let played = events.played();
    assert_eq!(played[..12], menu(), "{played:?}");
    assert_eq!(played[12], "tryingextension.wav", "{played:?}");
    assert_connected(&events, "operator@example.com");
}

#[test]
fn a_department_digit_over_the_prompts_rings_that_account() {
    let scratch = Scratch::new("stock-department");
    let events = run(demo(&scratch, "", &[]), Call::To("200@example.com"), "!3");
    let played = events.played();
    assert_eq!(played, ["welcome.wav", "tryingextension.wav"], "{played:?}");
    assert_eq!(events.logs(), ["pbx: department petrov"]);
    assert_connected(&events, "petrov@example.com");
}

#[test]
fn the_directory_prefix_dials_an_extension_and_a_short_number_is_a_failure() {
    let scratch = Scratch::new("stock-extension");
    let events = run(demo(&scratch, "", &[]), Call::To("200@example.com"), "!1,0,1");
    assert_eq!(events.logs(), ["pbx: extension 101"]);
    assert_connected(&events, "ivanov@example.com");

    // "1" then nothing: not a number; the menu again, then the operator.
    let scratch = Scratch::new("stock-short");
    let events = run(demo(&scratch, "", &[]), Call::To("200@example.com"), "!1");
    let played = events.played();
    assert_eq!(played[..2], ["welcome.wav", "failure.wav"], "{played:?}");
    assert_eq!(played[2..14], menu(), "{played:?}");
    assert_eq!(events.logs(), ["pbx: no choice, the operator"]);
}

#[test]
fn the_pbx_account_speaks_its_language_and_a_wrong_key_plays_failure() {
    let scratch = Scratch::new("stock-russian");
    let events = run(
        demo(&scratch, "language = \"russian\"\n", &[]),
        Call::To("200@example.com"),
        "!9",
    );
    let played = events.played();
    assert_eq!(
        played[..3],
        [
            "russian/welcome.wav",
            "russian/failure.wav",
            "russian/welcome.wav"
        ],
        "{played:?}"
    );
}

#[test]
fn the_conference_alias_reaches_the_conference_center() {
    let scratch = Scratch::new("stock-conference-alias");
    // Room 5 does not exist; room 1 needs its PIN; a wrong PIN is said so.
    let events = run(
        demo(&scratch, "", &[]),
        Call::To("conference@example.com"),
        "!5#,1#,99#,1234#",
    );
    let played = events.played();
    assert_eq!(
        played[..7],
        [
            "confenterroom.wav",
            "failure.wav",
            "confenterroom.wav",
            "confenterpin.wav",
            "confwrongpin.wav",
            "confenterpin.wav",
            "confjoining.wav",
        ],
        "{played:?}"
    );
    assert_eq!(played[7], "confalone.wav", "{played:?}");
    assert_eq!(events.logs()[0], "conference: room 1 opened");
}

#[test]
fn three_callers_meet_in_a_room_chime_as_they_come_and_go_and_the_room_outlives_its_first_caller() {
    let scratch = Scratch::new("stock-conference");
    let (events, ()) = world(demo(&scratch, "", &[]), async |runtime, network| {
        // Room 7 has no PIN. Each caller comes 20 s after the one before.
        for caller in 0..3 {
            let keys = Keys::Script(parse_script("!7#").unwrap());
            let leg = network.incoming(&format!("caller{caller}@sim"), "conference@example.com", keys);
            runtime.call_address(leg, "conference@example.com").unwrap();
            tokio::time::sleep(Duration::from_secs(20)).await;
        }
        runtime.registry.idle().await;
    });
    let logs = events.logs();
    let expected = [
        "conference: room 7 opened",
        "conference: room 7 has 2 callers",
        "conference: room 7 has 3 callers",
    ];
    assert_eq!(logs[..3], expected, "{logs:?}");
    // The first caller (holder) leaves first; another takes the room over.
    assert!(
        logs.iter().any(|line| line == "conference: room 7 holder left"),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|line| line == "conference: room 7 taken over"),
        "{logs:?}"
    );
    // Everyone already in the room hears a rising tone for each newcomer
    // (1 for the second caller, 2 for the third), none for a caller coming
    // back when the room changes hands.
    let tones = events.tones();
    let rising = tones.iter().filter(|tone| *tone == "880 Hz").count();
    assert_eq!(rising, 3, "{tones:?}");
    // The first caller leaves: the two others hear a falling tone; then the
    // second leaves and the third hears it.
    let falling = tones.iter().filter(|tone| *tone == "440 Hz").count();
    assert_eq!(falling, 3, "{tones:?}");
}

#[test]
fn voicemail_mails_the_message_keeps_it_and_the_owner_hears_and_deletes_it_with_the_pin() {
    let Some(smtp) = SmtpServer::start() else { return };
    let scratch = Scratch::new("stock-voicemail");
    // The PIN is petrov's (English prompts).
    let relay = format!("smtp.relay={}", smtp.relay());
    let config = demo(
        &scratch,
        "",
        &[&relay, "domains.\"example.com\".accounts.petrov.pin=\"4321\""],
    );
    let (events, ()) = world(config, async |runtime, network| {
        let call = |keys: &str| {
            let keys = Keys::Script(parse_script(keys).unwrap());
            let leg = network.incoming("caller@sim", "voicemail#petrov@example.com", keys);
            runtime.call_address(leg, "voicemail#petrov@example.com").unwrap();
        };
        // A caller speaks for about 4 s after the beep and presses #.
        call(",,,,,,,,#");
        runtime.registry.idle().await;
        // The owner: * over the greeting, a wrong PIN, the right one,
        // listen (1), delete (3), leave (*).
        call("!*,1111#,4321#,!1,!3,!*");
        runtime.registry.idle().await;
    });
    let messages = smtp.messages(1);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert!(message.contains("To: petrov@example.com"), "{message}");
    assert!(
        message.contains("Subject: Voice message from sip:caller@sim"),
        "{message}"
    );
    assert!(message.contains("message.wav"), "{message}");
    let played = events.played();
    let after_pin = played
        .iter()
        .position(|file| file == "vmwrongpin.wav")
        .expect("the wrong PIN is said so");
    assert_eq!(
        played[after_pin..after_pin + 6],
        [
            "vmwrongpin.wav",
            "vmenterpin.wav",
            "vmyouhave.wav",
            "1.wav",
            "vmmessages.wav",
            "vmmenu.wav"
        ],
        "{played:?}"
    );
    assert!(played.iter().any(|file| file == "vmdeleted.wav"), "{played:?}");
    assert!(played.iter().any(|file| file == "vmnomessages.wav"), "{played:?}");
}

#[test]
fn a_department_out_of_hours_or_not_answering_gets_its_rules_callback_or_voicemail() {
    // ivanov's rules (test world): after hours -> #callback.
    let scratch = Scratch::new("stock-after-hours");
    let events = run(
        demo(&scratch, "", &["clock.start=2026-11-23T20:00:00+03:00"]),
        Call::To("200@example.com"),
        "!2",
    );
    let routing = events.routing();
    assert!(
        routing.contains(&"to ivanov@example.com: divert to #callback".to_string()),
        "{routing:?}"
    );
    let played = events.played();
    assert!(
        played.contains(&"russian/callbackbusy.wav".to_string()),
        "{played:?}"
    );

    // petrov never answers; his rule sends the call to voicemail after 20 s,
    // with the caller still the one who called the auto-attendant.
    let scratch = Scratch::new("stock-no-answer");
    let rule = "domains.\"example.com\".accounts.petrov.rules=[{ when = \"no answer after 20s\", then = \"divert #voicemail\" }]";
    let events = run(
        demo(&scratch, "", &[rule, "simulation.phones.petrov=never answer"]),
        Call::To("200@example.com"),
        "!3",
    );
    let routing = events.routing();
    assert!(
        routing.contains(&"no answer in 20 s: divert to #voicemail".to_string()),
        "{routing:?}"
    );
    let played = events.played();
    assert!(played.contains(&"vmgreeting.wav".to_string()), "{played:?}");
    let calls = events.calls();
    let incoming: Vec<&String> = calls
        .iter()
        .filter(|call| call.starts_with("incoming call"))
        .collect();
    assert_eq!(incoming.len(), 2, "{calls:?}");
    assert!(
        incoming.iter().all(|call| call.contains("from sip:caller@sim")),
        "{calls:?}"
    );
}

/// A department of the auto-attendant may be a call queue: the caller
/// keys its digit, waits in `queue.sppr` (the welcome, then music), and
/// the queue's agent logged in (his preference QueueLogins) takes the call.
#[test]
fn a_department_that_is_a_call_queue_hands_the_caller_to_its_agent() {
    let scratch = Scratch::new("stock-queue");
    let queue = "[domains.\"example.com\".queues.sales]\nnumber = \"500\"\nagents = [\"ivanov\"]\n";
    let events = run(
        demo(
            &scratch,
            queue,
            &[
                "domains.\"example.com\".accounts.pbx.preferences.DepartmentMenu=[\"ivanov\", \"sales\", \"operator\"]",
                "domains.\"example.com\".accounts.ivanov.preferences.QueueLogins=[\"sales\"]",
            ],
        ),
        Call::To("200@example.com"),
        "!3",
    );
    let logs = events.logs();
    let wanted = [
        "pbx: department sales",
        "queue sales: sip:caller@sim waits",
        "queue sales: dispatcher started",
        "queue sales: offers (\"ivanov@example.com\")",
        "queue sales: ivanov@example.com talks to sip:caller@sim",
    ];
    for line in wanted {
        assert!(logs.iter().any(|logged| logged == line), "{line}: {logs:?}");
    }
    let played = events.played();
    assert!(played.contains(&"queue-welcome.wav".to_string()), "{played:?}");
    assert!(played.contains(&"queue-agentcall.wav".to_string()), "{played:?}");
}
