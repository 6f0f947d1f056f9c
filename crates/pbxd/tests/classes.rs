//! Class of service end to end (FEATURES.md §6, issue 11 item 8): `pbxd
//! serve` on the demo configuration, where petrov's class is `national`;
//! sipp as his phone and as the SIP provider's trunk.
//!
//! - a premium-rate number (8 809…) is refused: the phone is answered,
//!   hears the refusal prompt (`notallowed.sppr`), gets pbxd's BYE, and
//!   the trunk never sees the number;
//! - a number the class allows (8 495…) goes out through the trunk.

// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::peer::{invites, Peer};
use common::{assert_passed, lines_with, sipp, Pbxd};

/// pbxd's log: as usual, plus the runtime's events (prompts played).
const LOG_FILTER: &str = "info,rsipstack=warn,pbx_runtime::observe=debug";
/// A premium-rate number: national refuses it, premium would allow it.
const PREMIUM: &str = "88091234567";
/// A Moscow number in national form, which petrov's class allows
/// (tests/sipp/petrov_calls_out.xml dials it).
const NATIONAL: &str = "84951234567";

/// A number petrov's class of service refuses never reaches the trunk:
/// his phone is answered, hears why, and is hung up on; a number his
/// class allows then goes out through that same trunk.
#[test]
fn a_number_the_class_refuses_is_answered_with_a_prompt_and_never_reaches_the_trunk() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let trunk_port = pbx_test_peers::free_udp_port();
    let pbxd = Pbxd::start_logging(
        "classes",
        &[
            format!("trunks.provider.proxy=127.0.0.1:{trunk_port}"),
            "trunks.provider.username=pbxtrunk".into(),
            "trunks.provider.password=trunk-secret".into(),
        ],
        LOG_FILTER,
    );
    // The provider's trunk (tests/sipp/trunk_challenges_and_answers.xml:
    // one call, challenged then answered).
    let trunk = Peer::start(
        &sipp_program,
        &pbxd,
        "trunk_challenges_and_answers.xml",
        trunk_port,
        &[],
    );

    // The premium number: answered by pbxd, the prompt, pbxd's BYE. The
    // phone echoes what it hears, so pbxd's count of RTP received on
    // that leg is audio that reached the phone.
    let refused = sipp(
        &sipp_program,
        "petrov_call_not_allowed.xml",
        &pbxd,
        &["-s", PREMIUM, "-rtp_echo"],
    );
    assert_passed(&refused, &pbxd);
    let log = pbxd.wait_for_line(10, &["call leg ended"]);
    let started = lines_with(&log, "start notallowed.sppr");
    assert_eq!(started.len(), 1, "{log}");
    assert!(started[0].contains("account=petrov@example.com"), "{log}");
    // petrov's language is Russian.
    assert!(
        !lines_with(&log, "file: \"russian/callnotallowed.wav\"").is_empty(),
        "{log}"
    );
    let heard = common::rtp_received(&log);
    assert!(
        heard.first().is_some_and(|&packets| packets > 0),
        "the phone heard nothing: {heard:?}\n{log}"
    );
    assert!(lines_with(&log, "out through the network").is_empty(), "{log}");

    // A number the class allows goes out through the trunk.
    let allowed = sipp(&sipp_program, "petrov_calls_out.xml", &pbxd, &[]);
    assert_passed(&allowed, &pbxd);
    let (trunk, received) = trunk.finish();
    assert_passed(&trunk, &pbxd);
    let invites = invites(&received);
    assert!(!invites.is_empty(), "the trunk's trace shows no INVITE");
    for uri in &invites {
        assert!(uri.contains(NATIONAL), "the trunk got an INVITE to {uri}");
        assert!(!uri.contains(PREMIUM), "the trunk got an INVITE to {uri}");
    }
    assert_eq!(
        lines_with(&pbxd.log(), "out through the network").len(),
        1,
        "{}",
        pbxd.log()
    );
}
