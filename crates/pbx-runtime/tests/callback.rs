//! callback.sppr (the seed's program, unchanged, in stdlib-scripts/) on
//! simulated calls, mailing through a real SMTP server (aiosmtpd).

mod common;

use common::{config, repository_stock, run, Call, Scratch};
use pbx_test_peers::SmtpServer;

fn world(scratch: &Scratch, relay: &str, extra: &[&str]) -> pbx_runtime::Config {
    let mut overrides = vec![
        format!("environments.stock={}", repository_stock().display()),
        format!("smtp.relay={relay}"),
    ];
    overrides.extend(extra.iter().map(|setting| setting.to_string()));
    config(scratch, "", &overrides)
}

const RUSSIAN_INTRO: [&str; 4] = [
    "russian/callbackbusy.wav",
    "russian/callbacklater.wav",
    "russian/callbacknumber.wav",
    "russian/callbackclearnumber.wav",
];

#[test]
fn the_number_dialled_reaches_the_account_by_mail() {
    let Some(smtp) = SmtpServer::start() else { return };
    let scratch = Scratch::new("callback-mail");
    let events = run(
        world(&scratch, &smtp.relay(), &[]),
        Call::To("callback#ivanov@example.com"),
        "5551234#",
    );
    let played = events.played();
    assert_eq!(&played[..4], RUSSIAN_INTRO);
    assert_eq!(
        played.last().map(String::as_str),
        Some("russian/callbacktrailer.wav")
    );
    let messages = smtp.messages(1);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert!(message.contains("From: CallbackMailer@example.com"), "{message}");
    assert!(message.contains("To: ivanov@example.com"), "{message}");
    let subject = message
        .lines()
        .find(|line| line.starts_with("Subject:"))
        .unwrap_or_default();
    assert!(subject.contains("5551234"), "{subject}");
    assert!(
        events.calls().contains(&"hung up".to_string()),
        "{:?}",
        events.calls()
    );
}

#[test]
fn star_starts_the_number_again() {
    let Some(smtp) = SmtpServer::start() else { return };
    let scratch = Scratch::new("callback-star");
    let events = run(
        world(&scratch, &smtp.relay(), &[]),
        Call::To("callback#ivanov@example.com"),
        "123*5551234#",
    );
    let messages = smtp.messages(1);
    assert_eq!(messages.len(), 1);
    let subject = messages[0]
        .lines()
        .find(|line| line.starts_with("Subject:"))
        .unwrap_or_default()
        .to_string();
    // The seed's program keeps the `*` itself, then the new number.
    assert!(subject.ends_with("*5551234"), "{subject}");
    assert!(!subject.contains("123*"), "{subject}");
    let clears = events
        .played()
        .iter()
        .filter(|file| file.ends_with("callbackclearnumber.wav"))
        .count();
    assert_eq!(clears, 2, "{:?}", events.played());
}

#[test]
fn without_a_relay_the_caller_hears_the_failure_prompts() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let scratch = Scratch::new("callback-nosmtp");
    let events = run(
        world(&scratch, &format!("127.0.0.1:{port}"), &[]),
        Call::To("callback#ivanov@example.com"),
        "5551234#",
    );
    let played = events.played();
    assert_eq!(
        &played[played.len() - 2..],
        ["russian/failure.wav", "russian/callbacknotavailable.wav"]
    );
}

#[test]
fn after_hours_a_call_to_ivanov_goes_to_callback() {
    let Some(smtp) = SmtpServer::start() else { return };
    let scratch = Scratch::new("callback-after-hours");
    // 20:00 in Moscow on a Monday: after ivanov's working hours.
    let config = world(
        &scratch,
        &smtp.relay(),
        &["clock.start=2026-11-23T20:00:00+03:00"],
    );
    let events = run(config, Call::To("ivanov@example.com"), "5551234#");
    assert_eq!(&events.played()[..4], RUSSIAN_INTRO);
    assert_eq!(smtp.messages(1).len(), 1);
}

#[test]
fn in_working_hours_the_after_hours_rule_does_not_apply() {
    let scratch = Scratch::new("callback-working-hours");
    // 12:00 in Moscow on a Monday; ivanov has no device to ring and no
    // other rule, so the call is refused.
    let config = world(
        &scratch,
        "127.0.0.1:9",
        &["clock.start=2026-11-23T12:00:00+03:00"],
    );
    let events = run_refused(config, "ivanov@example.com");
    assert!(events.played().is_empty(), "{:?}", events.played());
}

/// Like `run`, for a call that no task takes.
fn run_refused(config: pbx_runtime::Config, target: &str) -> std::sync::Arc<common::Recorder> {
    let (recorder, routed) = common::route(config, common::Call::To(target), "", |_| {});
    assert_eq!(routed, Ok(pbx_runtime::Routed::Rejected(480)));
    recorder
}
