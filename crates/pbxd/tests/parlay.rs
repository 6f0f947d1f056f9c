//! Parlay X third-party call control (issue 13) with a real SOAP client
//! (Python's zeep, reading the WSDL pbxd serves, authenticating with
//! HTTP Digest) and sipp phones:
//!
//! - makeCall rings ivanov's phone, then petrov's, and connects them
//!   through `parlayMakeCall.sppr`; getCallInformation says so while they
//!   talk; endCall hangs up both; the status is still readable 20 s after
//!   the call (the demo's 30 s linger) and unknown 40 s after (a fault);
//! - another user may not read or end ivanov's call (a policy fault);
//! - cancelCall while the calling party still rings cancels it;
//! - the same operations as JSON with curl, and bad requests (malformed
//!   XML, a DTD, an unknown operation, a bad JSON body) get faults or
//!   400 and change nothing.

// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::caller::{Caller, Ending, Step};
use common::peer::{invites, Peer};
use common::{curl, lines_with, Pbxd};
use pbx_test_peers::{SoapClient, WebRouter};
use serde_json::{json, Value};

/// How long `parlayMakeCall` lingers in these tests.
const LINGER_SECONDS: u64 = 6;

fn start(name: &str) -> Pbxd {
    start_lingering(name, LINGER_SECONDS)
}

/// As `start`, with `parlayMakeCall` lingering `linger` seconds.
fn start_lingering(name: &str, linger: u64) -> Pbxd {
    Pbxd::start(
        name,
        &[
            format!("parlay.linger_seconds={linger}"),
            "sip.rtp_timeout_seconds=120".to_string(),
            // Monday 10:00 in Moscow: ivanov and petrov work, their
            // after-hours rules keep out of the way.
            "clock.start=2026-11-23T10:00:00+03:00".to_string(),
        ],
    )
}

fn wsdl(pbxd: &Pbxd) -> String {
    format!("http://{}/ParlayX/ThirdPartyCall?wsdl", pbxd.http)
}

/// The status of call `id`, or the fault's message id.
fn information(client: &mut SoapClient, id: &str) -> Value {
    client.call("getCallInformation", json!({ "callIdentifier": id }))
}

fn message_id(answer: &Value) -> Option<&str> {
    answer["fault"]["messageId"].as_str()
}

#[test]
fn make_call_connects_two_phones_and_the_status_outlives_the_call() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    // The demo's linger: 30 s.
    let pbxd = start_lingering("parlay-make-call", 30);
    let Some(mut ivanov) = SoapClient::start(&wsdl(&pbxd), "ivanov@example.com", "ivanov-demo") else {
        return;
    };
    let mut petrov = SoapClient::start(&wsdl(&pbxd), "petrov@example.com", "petrov-demo").unwrap();
    // Both phones answer and stay until pbxd hangs up.
    let calling = Peer::phone(
        &sipp_program,
        &pbxd,
        "ivanov",
        "ivanov-demo",
        "stock_phone_answers.xml",
        1,
    );
    let called = Peer::phone(
        &sipp_program,
        &pbxd,
        "petrov",
        "petrov-demo",
        "stock_phone_answers.xml",
        1,
    );

    let made = ivanov.call(
        "makeCall",
        json!({
            "callingParty": "sip:ivanov@example.com",
            "calledParty": "sip:petrov@example.com",
            "charging": { "description": "a test call", "currency": "RUB", "amount": "1.50" },
        }),
    );
    let id = made["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{made}"))
        .to_string();
    pbxd.wait_for(20, |log| log.contains("parlay: sip:petrov@example.com joined"));
    std::thread::sleep(Duration::from_millis(1500));
    let connected = information(&mut ivanov, &id);
    let result = &connected["result"];
    assert_eq!(
        result["callStatus"],
        "CallConnected",
        "{connected}\n{}",
        pbxd.log()
    );
    assert!(
        result["duration"].as_i64().is_some_and(|seconds| seconds >= 1),
        "{connected}"
    );
    assert!(result["startTime"].is_string(), "{connected}");
    let participants = result["participants"].to_string();
    assert!(
        participants.contains("ivanov@example.com") && participants.contains("petrov@example.com"),
        "{connected}"
    );

    // petrov may neither read nor end ivanov's call.
    assert_eq!(message_id(&information(&mut petrov, &id)), Some("POL0001"));
    let refused = petrov.call("endCall", json!({ "callIdentifier": id }));
    assert_eq!(message_id(&refused), Some("POL0001"), "{refused}");
    assert!(
        refused["fault"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("may not act"),
        "{refused}"
    );

    // ivanov ends it: both phones get a BYE (their scenarios pass only so).
    let ended = ivanov.call("endCall", json!({ "callIdentifier": id }));
    assert!(ended.get("result").is_some(), "{ended}");
    let ended_at = Instant::now();
    for phone in [calling, called] {
        let (output, _) = phone.finish_soon();
        common::assert_passed(&output, &pbxd);
    }
    let after = information(&mut ivanov, &id);
    assert_eq!(after["result"]["callStatus"], "CallTerminated", "{after}");
    assert_eq!(after["result"]["terminationCause"], "CallHangUp", "{after}");
    assert!(
        after["result"]["duration"]
            .as_i64()
            .is_some_and(|seconds| seconds >= 1),
        "{after}"
    );

    // Still readable 20 s after the call, unknown 40 s after.
    std::thread::sleep((ended_at + Duration::from_secs(20)).saturating_duration_since(Instant::now()));
    let lingering = information(&mut ivanov, &id);
    assert_eq!(lingering["result"]["callStatus"], "CallTerminated", "{lingering}");
    assert_eq!(
        lingering["result"]["terminationCause"], "CallHangUp",
        "{lingering}"
    );
    std::thread::sleep((ended_at + Duration::from_secs(40)).saturating_duration_since(Instant::now()));
    let gone = information(&mut ivanov, &id);
    assert_eq!(message_id(&gone), Some("SVC0002"), "{gone}");
    assert_eq!(gone["fault"]["variables"][0], "callIdentifier", "{gone}");
    let log = pbxd.log();
    assert_eq!(
        lines_with(&log, "parlay: the call ended: CallHangUp").len(),
        1,
        "{log}"
    );
}

#[test]
fn cancel_call_stops_the_ringing_and_json_and_bad_requests_are_answered() {
    let (Some(sipp_program), Some(curl_program)) = (pbx_test_peers::sipp(), pbx_test_peers::curl()) else {
        return;
    };
    let pbxd = start("parlay-cancel");
    // ivanov's phone rings until the call is cancelled.
    let calling = Peer::phone(
        &sipp_program,
        &pbxd,
        "ivanov",
        "ivanov-demo",
        "uas_ring_until_cancel.xml",
        1,
    );
    let credentials = ["--digest", "-u", "ivanov@example.com:ivanov-demo"];
    let post_json = |path: &str, body: &str| {
        let mut arguments = credentials.to_vec();
        arguments.extend(["-H", "Content-Type: application/json", "--data-binary", body]);
        curl(&curl_program, &pbxd, &arguments, path)
    };
    let (status, made) = post_json(
        "/api/3pcc/makeCall",
        r#"{"callingParty": "ivanov", "calledParty": "202"}"#,
    );
    assert_eq!(status, 200, "{made}");
    let made: Value = serde_json::from_str(&made).unwrap();
    let id = made["callIdentifier"].as_str().unwrap().to_string();
    pbxd.wait_for(10, |log| log.contains("ringing") || log.contains("180"));
    std::thread::sleep(Duration::from_millis(500));
    let (status, ringing) = post_json(
        "/api/3pcc/getCallInformation",
        &format!(r#"{{"callIdentifier": "{id}"}}"#),
    );
    assert_eq!(status, 200, "{ringing}");
    assert!(ringing.contains("\"callStatus\":\"CallInitial\""), "{ringing}");
    let (status, _) = post_json(
        "/api/3pcc/cancelCall",
        &format!(r#"{{"callIdentifier": "{id}"}}"#),
    );
    assert_eq!(status, 200);
    let (output, received) = calling.finish_soon();
    common::assert_passed(&output, &pbxd);
    assert!(
        received.iter().any(|message| message.starts_with("CANCEL ")),
        "{received:?}"
    );
    pbxd.wait_for(5, |log| log.contains("parlay: the call ended"));
    let (status, cancelled) = post_json(
        "/api/3pcc/getCallInformation",
        &format!(r#"{{"callIdentifier": "{id}"}}"#),
    );
    assert_eq!(status, 200, "{cancelled}");
    assert!(
        cancelled.contains("\"terminationCause\":\"CallAborted\""),
        "{cancelled}"
    );

    // JSON that is not, parts missing, an unknown call, an unknown operation.
    assert_eq!(post_json("/api/3pcc/makeCall", "{not json").0, 400);
    let (status, missing) = post_json("/api/3pcc/makeCall", r#"{"callingParty": "ivanov"}"#);
    assert_eq!(status, 400, "{missing}");
    assert!(
        missing.contains("SVC0002") && missing.contains("calledParty"),
        "{missing}"
    );
    assert_eq!(
        post_json("/api/3pcc/endCall", r#"{"callIdentifier": "12345"}"#).0,
        400
    );
    assert_eq!(post_json("/api/3pcc/explode", "{}").0, 404);
    // A number the class of service refuses (ivanov's: national).
    let (status, refused) = post_json(
        "/api/3pcc/makeCall",
        r#"{"callingParty": "ivanov", "calledParty": "+19005551234"}"#,
    );
    assert_eq!(status, 403, "{refused}");
    // No credentials: a challenge.
    let (status, _) = curl(
        &curl_program,
        &pbxd,
        &["-H", "Content-Type: application/json", "--data-binary", "{}"],
        "/api/3pcc/makeCall",
    );
    assert_eq!(status, 401);

    // SOAP that is not: faults, and pbxd goes on.
    let post_xml = |body: &str| {
        let mut arguments = credentials.to_vec();
        arguments.extend(["-H", "Content-Type: text/xml", "--data-binary", body]);
        curl(&curl_program, &pbxd, &arguments, "/ParlayX/ThirdPartyCall")
    };
    let bad = [
        "<Envelope><Body><makeCall>",
        r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Envelope><Body><getCallInformation><callIdentifier>&e;</callIdentifier></getCallInformation></Body></Envelope>"#,
        "<Envelope><Body><launchRocket/></Body></Envelope>",
    ];
    for body in bad {
        let (status, fault) = post_xml(body);
        assert_eq!(status, 500, "{fault}");
        assert!(
            fault.contains("<soapenv:Fault>") && fault.contains("SVC0001"),
            "{fault}"
        );
        assert!(!fault.contains("root:"), "an entity was expanded: {fault}");
    }
    let large = format!(
        "<Envelope><Body><endCall><callIdentifier>{}</callIdentifier></endCall></Body></Envelope>",
        "1".repeat(70_000)
    );
    let (status, fault) = post_xml(&large);
    assert_eq!(status, 500);
    assert!(fault.contains("larger than"), "{fault}");
    let (status, _) = curl(&curl_program, &pbxd, &[], "/healthz");
    assert_eq!(status, 200);
}

/// Participants: a third phone added to a call and deleted from it (it
/// gets a BYE, the others talk on); then one participant moved to another
/// call (transfer): the call it left, down to its calling party, ends,
/// and the one it joined has it among its participants.
#[test]
fn participants_are_added_deleted_and_transferred() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let pbxd = Pbxd::start(
        "parlay-participants",
        &[
            format!("parlay.linger_seconds={LINGER_SECONDS}"),
            "sip.rtp_timeout_seconds=120".to_string(),
            "domains.\"example.com\".accounts.desk.password=\"desk-pw\"".to_string(),
        ],
    );
    let Some(mut client) = SoapClient::start(&wsdl(&pbxd), "ivanov@example.com", "ivanov-demo") else {
        return;
    };
    let phone = |name: &str, password: &str| {
        Peer::phone(&sipp_program, &pbxd, name, password, "stock_phone_answers.xml", 1)
    };
    let ivanov = phone("ivanov", "ivanov-demo");
    let petrov = phone("petrov", "petrov-demo");
    let operator = phone("operator", "operator-demo");
    let participants = |client: &mut SoapClient, id: &str| -> Vec<String> {
        let answer = information(client, id);
        let mut names: Vec<String> = answer["result"]["participants"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str())
                    .map(|uri| {
                        uri.trim_start_matches("sip:")
                            .split('@')
                            .next()
                            .unwrap_or_default()
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let joined = |count: usize| {
        pbxd.wait_for(20, |log| {
            lines_with(log, "parlay: ")
                .iter()
                .filter(|line| line.contains(" joined"))
                .count()
                >= count
        });
    };

    let first = client.call(
        "makeCall",
        json!({ "callingParty": "ivanov", "calledParty": "petrov" }),
    );
    let first = first["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    joined(1);
    let added = client.call(
        "addCallParticipant",
        json!({ "callIdentifier": first, "participant": "operator" }),
    );
    assert!(added.get("result").is_some(), "{added}");
    joined(2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        participants(&mut client, &first),
        ["ivanov", "operator", "petrov"],
        "{}",
        pbxd.log()
    );
    let deleted = client.call(
        "deleteCallParticipant",
        json!({ "callIdentifier": first, "participant": "operator" }),
    );
    assert!(deleted.get("result").is_some(), "{deleted}");
    let (output, _) = operator.finish_soon();
    common::assert_passed(&output, &pbxd);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        participants(&mut client, &first),
        ["ivanov", "petrov"],
        "{}",
        pbxd.log()
    );

    // A second call, desk and the operator's phone again; petrov moves
    // there.
    let desk = phone("desk", "desk-pw");
    let operator = phone("operator", "operator-demo");
    let second = client.call(
        "makeCall",
        json!({ "callingParty": "desk", "calledParty": "operator" }),
    );
    let second = second["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{second}"))
        .to_string();
    // (the calling party joins no mix: it is the call's own)
    joined(3);
    let moved = client.call(
        "transferCallParticipant",
        json!({ "callIdentifier": second, "participant": "petrov", "sourceCallIdentifier": first }),
    );
    assert!(moved.get("result").is_some(), "{moved}");
    // The first call, left with ivanov alone, ends: his phone gets a BYE.
    let (output, _) = ivanov.finish_soon();
    common::assert_passed(&output, &pbxd);
    let left = information(&mut client, &first);
    assert_eq!(left["result"]["callStatus"], "CallTerminated", "{left}");
    joined(4);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        participants(&mut client, &second),
        ["desk", "operator", "petrov"],
        "{}",
        pbxd.log()
    );
    let ended = client.call("endCall", json!({ "callIdentifier": second }));
    assert!(ended.get("result").is_some(), "{ended}");
    for phone in [petrov, desk, operator] {
        let (output, _) = phone.finish_soon();
        common::assert_passed(&output, &pbxd);
    }
}

/// The notification service's WSDL.
fn notification_wsdl(pbxd: &Pbxd) -> String {
    format!("http://{}/ParlayX/CallNotification?wsdl", pbxd.http)
}

/// A call from outside to `called` that stays a second once answered.
fn call_from_outside(
    sipp_program: &std::path::Path,
    pbxd: &Pbxd,
    called: &'static str,
    ending: Ending,
    step: &str,
) {
    let steps = match ending {
        Ending::Refused(_) => Vec::new(),
        _ => vec![Step::Pause(1.0)],
    };
    let caller = Caller {
        called,
        steps,
        ending,
        as_phone: None,
    };
    common::assert_passed(
        &caller.call(step, sipp_program, pbxd, pbx_test_peers::free_udp_port()),
        pbxd,
    );
}

/// The Parlay X messages the client endpoint got, by operation.
fn told(router: &WebRouter, operation: &str) -> Vec<String> {
    router
        .received()
        .into_iter()
        .filter(|received| received.body.contains(&format!(":{operation} ")))
        .map(|received| received.body)
        .collect()
}

/// Call notification and direction (seed 004): petrov's phone is busy.
/// A notification for Busy tells the client of each busy call; direction
/// for every call (CalledNumber) answered Route sends calls to the
/// operator, Fork rings the operator beside petrov, EndCall refuses them;
/// stopped (by addresses and criteria, whatever the correlator), calls go
/// to petrov again. Registrations survive a restart; petrov may not
/// register for ivanov.
#[test]
fn notification_and_direction_decide_where_calls_go() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let Some(router) = WebRouter::start(None) else {
        return;
    };
    let mut pbxd = start("parlay-direction");
    let Some(mut petrov) = SoapClient::start(&notification_wsdl(&pbxd), "petrov@example.com", "petrov-demo")
    else {
        return;
    };
    let busy = Peer::phone(
        &sipp_program,
        &pbxd,
        "petrov",
        "petrov-demo",
        "phone_busy.xml",
        10,
    );
    let operator = Peer::phone(
        &sipp_program,
        &pbxd,
        "operator",
        "operator-demo",
        "stock_phone_answers.xml",
        2,
    );
    let reference = |query: &str, correlator: &str| {
        json!({
            "endpoint": router.url(&format!("/parlay{query}")),
            "interfaceName": "CallNotification",
            "correlator": correlator,
        })
    };
    let ok = |answer: Value| assert!(answer.get("result").is_some(), "{answer}");

    ok(petrov.call(
        "startCallNotification",
        json!({ "reference": reference("", "n1"), "addresses": ["sip:petrov@example.com"], "criteria": ["Busy"] }),
    ));
    // petrov is busy; his rules send the caller to voicemail.
    call_from_outside(&sipp_program, &pbxd, "202", Ending::HangsUp, "busy");
    let notified = told(&router, "notifyBusy");
    assert_eq!(notified.len(), 1, "{}", pbxd.log());
    assert!(
        notified[0].contains("<correlator>n1</correlator>")
            && notified[0].contains("5550000@outside.test")
            && notified[0].contains("sip:petrov@example.com"),
        "{}",
        notified[0]
    );

    // Every call to petrov now goes where the client says: the operator.
    ok(petrov.call(
        "startCallDirectionNotification",
        json!({
            "reference": reference("?action=Route&to=sip:operator@example.com", "d1"),
            "addresses": ["petrov"],
            "criteria": ["CalledNumber"],
        }),
    ));
    let rung = invites(&busy.received()).len();
    call_from_outside(&sipp_program, &pbxd, "202", Ending::HangsUp, "routed");
    assert_eq!(told(&router, "handleCalledNumber").len(), 1);
    assert_eq!(invites(&busy.received()).len(), rung, "petrov's phone was rung");
    assert_eq!(invites(&operator.received()).len(), 1, "{}", pbxd.log());

    // It outlasts a restart; the answer is now EndCall.
    pbxd = pbxd.restart();
    let mut petrov =
        SoapClient::start(&notification_wsdl(&pbxd), "petrov@example.com", "petrov-demo").unwrap();
    ok(petrov.call(
        "startCallDirectionNotification",
        json!({ "reference": reference("?action=EndCall", "d2"), "addresses": ["petrov"], "criteria": ["CalledNumber"] }),
    ));
    call_from_outside(&sipp_program, &pbxd, "202", Ending::Refused(603), "ended");
    assert_eq!(told(&router, "handleCalledNumber").len(), 2);

    // Fork: petrov's phone and the operator's ring; the operator answers.
    ok(petrov.call(
        "startCallDirectionNotification",
        json!({ "reference": reference("?action=Fork&to=100", "d3"), "addresses": ["petrov"], "criteria": ["CalledNumber"] }),
    ));
    let rung = invites(&busy.received()).len();
    call_from_outside(&sipp_program, &pbxd, "202", Ending::HangsUp, "forked");
    assert_eq!(invites(&busy.received()).len(), rung + 1, "{}", pbxd.log());
    assert_eq!(invites(&operator.received()).len(), 2, "{}", pbxd.log());

    // Stopped by addresses and criteria; the correlator given is ignored.
    ok(petrov.call(
        "stopCallDirectionNotification",
        json!({ "correlator": "anything", "addresses": ["sip:petrov@example.com"], "criteria": ["CalledNumber"] }),
    ));
    call_from_outside(&sipp_program, &pbxd, "202", Ending::HangsUp, "stopped");
    assert_eq!(
        told(&router, "handleCalledNumber").len(),
        3,
        "asked after the stop"
    );
    assert_eq!(invites(&busy.received()).len(), rung + 2);
    // The notification, kept through the restart, told of the busy call
    // (the forked one was answered by the operator: not busy).
    assert_eq!(told(&router, "notifyBusy").len(), 2, "{}", pbxd.log());

    // Another's account: refused; no such account: refused.
    let refused = petrov.call(
        "startCallNotification",
        json!({ "reference": reference("", "n2"), "addresses": ["ivanov"], "criteria": ["Busy"] }),
    );
    assert_eq!(message_id(&refused), Some("POL0001"), "{refused}");
    let unknown = petrov.call(
        "startCallNotification",
        json!({ "reference": reference("", "n3"), "addresses": ["nobody"], "criteria": ["Busy"] }),
    );
    assert_eq!(message_id(&unknown), Some("SVC0004"), "{unknown}");
    drop(busy);
    drop(operator);
}

/// Call handling (setRules): ivanov blocks a caller, who gets 603, also
/// after a restart; getRules reads the rule back; a forward list sends
/// every call to the auto-attendant; clearRules lets calls through again
/// (to his voicemail: he has no phone, which a client watching
/// NotReachable is told).
#[test]
fn call_handling_rules_block_and_forward() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let mut pbxd = start("parlay-handling");
    let Some(mut ivanov) = SoapClient::start(&notification_wsdl(&pbxd), "ivanov@example.com", "ivanov-demo")
    else {
        return;
    };
    let blocked = json!({ "address": "sip:ivanov@example.com", "rules": { "blockList": ["5550000"] } });
    assert!(ivanov.call("setRules", blocked).get("result").is_some());
    call_from_outside(&sipp_program, &pbxd, "201", Ending::Refused(603), "blocked");
    pbxd = pbxd.restart();
    let mut ivanov =
        SoapClient::start(&notification_wsdl(&pbxd), "ivanov@example.com", "ivanov-demo").unwrap();
    call_from_outside(&sipp_program, &pbxd, "201", Ending::Refused(603), "still-blocked");
    let rules = ivanov.call("getRules", json!({ "address": "ivanov" }));
    assert_eq!(rules["result"]["blockList"], json!(["5550000"]), "{rules}");

    let forwarded = json!({ "address": "ivanov", "rules": { "forwardList": ["200"] } });
    assert!(ivanov.call("setRules", forwarded).get("result").is_some());
    call_from_outside(&sipp_program, &pbxd, "201", Ending::HangsUp, "forwarded");
    assert!(
        lines_with(&pbxd.log(), "start pbx.sppr").len() == 1,
        "{}",
        pbxd.log()
    );

    assert!(ivanov
        .call("clearRules", json!({ "address": "ivanov" }))
        .get("result")
        .is_some());
    // ivanov has no phone: a client watching NotReachable is told, and
    // his rules (voicemail) take the call.
    let Some(router) = WebRouter::start(None) else {
        return;
    };
    let watched = ivanov.call(
        "startCallNotification",
        json!({
            "reference": { "endpoint": router.url("/parlay"), "interfaceName": "CallNotification", "correlator": "u1" },
            "addresses": ["ivanov"],
            "criteria": ["NotReachable"],
        }),
    );
    assert!(watched.get("result").is_some(), "{watched}");
    call_from_outside(&sipp_program, &pbxd, "201", Ending::HangsUp, "cleared");
    assert_eq!(lines_with(&pbxd.log(), "start pbx.sppr").len(), 1);
    let unreachable = told(&router, "notifyNotReachable");
    assert_eq!(unreachable.len(), 1, "{}", pbxd.log());
    assert!(
        unreachable[0].contains("sip:ivanov@example.com"),
        "{}",
        unreachable[0]
    );
    assert_eq!(
        lines_with(&pbxd.log(), "start voicemail.sppr").len(),
        1,
        "{}",
        pbxd.log()
    );
    let refused = ivanov.call(
        "setRules",
        json!({ "address": "petrov", "rules": { "blockList": ["1"] } }),
    );
    assert_eq!(message_id(&refused), Some("POL0001"), "{refused}");
}
