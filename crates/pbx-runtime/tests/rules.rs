//! FEATURES.md §4: calls to an account go where its rules say — by time,
//! caller, busy, no answer, unregistered; divert, fork, reject, an app —
//! and otherwise ring its devices (simulated phones) until one answers.

mod common;

use common::{config, route, Call, Scratch};
use pbx_runtime::Routed;

/// The routing notes of a call to `target` (after `sidorov`'s `rules` and
/// `phones`), and how it was routed. `voicemail.sppr` logs that it ran.
fn call(name: &str, target: &str, rules: &str, phones: &str, at: &str) -> (Vec<String>, Vec<String>, Routed) {
    let scratch = Scratch::new(name);
    scratch.write(
        "stock/voicemail.sppr",
        "entry Main is\n  SysLog(\"voicemail for \" + MyEmail());\nend;\n",
    );
    let extra = format!(
        "[domains.\"example.com\".accounts.sidorov]\naliases = [\"103\"]\n\
         working_hours = \"Mon-Fri 09:00-18:00\"\nrules = [{rules}]\n\
         [simulation]\nphones = {{ {phones} }}\n"
    );
    let (events, routed) = route(
        config(&scratch, &extra, &[format!("clock.start={at}")]),
        Call::To(target),
        "",
        |_| {},
    );
    let routed = routed.unwrap_or_else(|error| panic!("{error}"));
    (events.routing(), events.logs(), routed)
}

const MONDAY_NOON: &str = "2026-11-23T12:00:00+03:00";
const MONDAY_NIGHT: &str = "2026-11-23T22:00:00+03:00";
const USUAL: &str = r##"{ when = "after hours", then = "divert #voicemail" },
    { when = "busy or no answer after 15s", then = "#voicemail" }"##;

#[test]
fn a_registered_phone_rings_and_answers() {
    let (notes, logs, routed) = call(
        "ring-answer",
        "103@example.com",
        USUAL,
        r#"sidorov = "answer after 4s""#,
        MONDAY_NOON,
    );
    assert_eq!(routed, Routed::Ringing);
    assert_eq!(
        notes,
        [
            "to sidorov@example.com: ringing",
            "ringing sidorov@example.com",
            "sidorov@example.com answered; connected",
            "the caller hung up",
        ]
    );
    assert!(logs.is_empty(), "{logs:?}");
}

#[test]
fn no_answer_in_time_goes_where_the_rule_says() {
    let (notes, logs, _) = call(
        "ring-no-answer",
        "sidorov@example.com",
        USUAL,
        r#"sidorov = "answer after 30s""#,
        MONDAY_NOON,
    );
    assert_eq!(
        notes,
        [
            "to sidorov@example.com: ringing",
            "ringing sidorov@example.com",
            "no answer in 15 s: divert to #voicemail",
        ]
    );
    assert_eq!(logs, ["voicemail for sidorov@example.com"]);
}

#[test]
fn busy_goes_where_the_rule_says() {
    let (notes, logs, _) = call(
        "ring-busy",
        "sidorov@example.com",
        USUAL,
        r#"sidorov = "busy""#,
        MONDAY_NOON,
    );
    assert_eq!(
        notes[2..],
        ["sidorov@example.com: 486 Busy Here", "busy: divert to #voicemail"]
    );
    assert_eq!(logs, ["voicemail for sidorov@example.com"]);
}

#[test]
fn after_hours_does_not_ring_at_all() {
    let (notes, logs, _) = call(
        "after-hours",
        "sidorov@example.com",
        USUAL,
        r#"sidorov = "answer after 1s""#,
        MONDAY_NIGHT,
    );
    assert_eq!(notes, ["to sidorov@example.com: divert to #voicemail"]);
    assert_eq!(logs, ["voicemail for sidorov@example.com"]);
}

#[test]
fn an_unregistered_account_and_no_rule_for_it() {
    let (notes, logs, _) = call(
        "unregistered",
        "sidorov@example.com",
        r##"{ when = "unregistered", then = "#voicemail" }"##,
        "",
        MONDAY_NOON,
    );
    assert_eq!(notes, ["to sidorov@example.com: divert to #voicemail"]);
    assert_eq!(logs, ["voicemail for sidorov@example.com"]);

    let (notes, _, routed) = call("no-device", "sidorov@example.com", "", "", MONDAY_NOON);
    assert_eq!(notes, ["to sidorov@example.com: no device to ring"]);
    assert_eq!(routed, Routed::Rejected(480));
}

#[test]
fn caller_rules_reject_and_fork_rules_ring_more() {
    // The simulated caller is caller@sim.
    let (notes, _, routed) = call(
        "caller",
        "sidorov@example.com",
        r#"{ when = "caller *@sim", then = "reject 403" }"#,
        r#"sidorov = "answer after 1s""#,
        MONDAY_NOON,
    );
    assert_eq!(notes, ["to sidorov@example.com: reject with 403"]);
    assert_eq!(routed, Routed::Rejected(403));

    let (notes, _, _) = call(
        "fork",
        "sidorov@example.com",
        r#"{ when = "always", then = "fork 5551234, petrov" }"#,
        r#"sidorov = "answer after 9s", "5551234" = "answer after 2s", petrov = "answer after 5s""#,
        MONDAY_NOON,
    );
    assert_eq!(
        notes,
        [
            "to sidorov@example.com: ringing",
            "ringing sidorov@example.com",
            "ringing 5551234",
            "ringing petrov@example.com",
            "5551234 answered; connected",
            "the caller hung up",
        ]
    );
}

#[test]
fn diverts_that_loop_are_stopped() {
    let scratch = Scratch::new("loop");
    let extra = "[domains.\"example.com\".accounts.a]\nrules = [{ when = \"always\", then = \"divert b\" }]\n\
                 [domains.\"example.com\".accounts.b]\nrules = [{ when = \"always\", then = \"divert a\" }]\n";
    let (_, routed) = route(
        config(&scratch, extra, &[]),
        Call::To("a@example.com"),
        "",
        |_| {},
    );
    assert_eq!(routed, Ok(Routed::Rejected(482)));
}
