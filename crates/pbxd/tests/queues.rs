//! Call queues (issue 16; `stdlib-scripts/queue.sppr`, `agent.sppr`) over
//! real SIP: sipp as the callers from outside and as the agents' phones.
//!
//! - three callers and the demo queue `sales` (500): they are answered in
//!   the order they came, each by the free agent; while they wait they
//!   hear their place, and the music on hold between the prompts (tcpdump
//!   captures what pbxd sends them); an agent who logs out (`*61`) gets no more calls,
//!   and one who logs in (`*60`) gets the next; `/metrics` counts the
//!   waiting callers and the agents;
//! - a queue with no agent: a caller past `timeout_seconds` reaches the
//!   overflow voicemail, and one who presses `*` leaves a callback request
//!   that arrives by mail; a caller with a higher priority goes ahead;
//! - round-robin and ring-all.

// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::audio;
use common::caller::{Caller, Ending, Step};
use common::capture::Capture;
use common::peer::{invites, Peer};
use common::{assert_passed, curl, lines_with, Pbxd};

/// The demo queue with short times, so a test takes seconds.
fn quick_queue() -> Vec<String> {
    let queue = "domains.\"example.com\".queues.sales";
    vec![
        "sip.rtp_timeout_seconds=120".to_string(),
        format!("{queue}.ring_seconds=8"),
        format!("{queue}.wrapup_seconds=0"),
        format!("{queue}.announce_seconds=5"),
        format!("{queue}.timeout_seconds=120"),
    ]
}

/// The demo's password of agent `who` (ivanov, petrov).
fn password(who: &str) -> &'static str {
    match who {
        "ivanov" => "ivanov-demo",
        _ => "petrov-demo",
    }
}

/// `who`'s phone, registered, playing `scenario` for `calls` calls.
fn agent_phone(sipp_program: &std::path::Path, pbxd: &Pbxd, who: &str, scenario: &str, calls: u32) -> Peer {
    Peer::phone(sipp_program, pbxd, who, password(who), scenario, calls)
}

/// `who`'s phone dials `code` (`*60`, `*61`) and hears it done.
fn agent_code(sipp_program: &std::path::Path, pbxd: &Pbxd, who: &'static str, code: &'static str) {
    let caller = Caller {
        called: code,
        steps: Vec::new(),
        ending: Ending::PbxdHangsUp,
        as_phone: Some((who, password(who))),
    };
    let step = format!("{who}{code}");
    assert_passed(
        &caller.call(&step, sipp_program, pbxd, pbx_test_peers::free_udp_port()),
        pbxd,
    );
}

/// The task ID of a log line (`task=7`).
fn task_of(line: &str) -> String {
    line.split("task=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

/// A caller from outside who waits for the queue to end the call.
fn waiting_caller(called: &'static str, steps: Vec<Step>, ending: Ending) -> Caller {
    Caller {
        called,
        steps,
        ending,
        as_phone: None,
    }
}

/// A gauge of `/metrics` for the queue `sales`.
fn queue_gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(name) && line.contains("queue=\"sales\""))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[test]
fn callers_reach_free_agents_in_the_order_they_came() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let Some(curl_program) = pbx_test_peers::curl() else {
        return;
    };
    let pbxd = Pbxd::start("queues-order", &quick_queue());
    // Each agent's phone answers, talks 4 s and hangs up.
    let ivanov = agent_phone(&sipp_program, &pbxd, "ivanov", "agent_answers.xml", 2);
    let petrov = agent_phone(&sipp_program, &pbxd, "petrov", "agent_answers.xml", 1);

    // Three callers, a second and a half apart, while no agent is logged
    // in; each stays until pbxd hangs up (after their agent did). What
    // pbxd sends them is captured.
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < 3 {
        let port = pbx_test_peers::free_udp_port();
        if ports.iter().all(|other| other.abs_diff(port) >= 4) {
            ports.push(port);
        }
    }
    let Some(capture) = Capture::start("queues-order", &ports) else {
        return;
    };
    let mut callers = Vec::new();
    for (index, port) in ports.iter().enumerate() {
        let caller = waiting_caller("500", Vec::new(), Ending::PbxdHangsUp);
        let name = format!("queue-caller-{index}");
        callers.push(caller.start(&name, &sipp_program, &pbxd, *port));
        std::thread::sleep(Duration::from_millis(1500));
    }
    pbxd.wait_for_line(30, &[" at place 3"]);
    // ivanov logs in: the first caller reaches him.
    agent_code(&sipp_program, &pbxd, "ivanov", "*60");
    // The second talks to ivanov: he logs out, petrov logs in.
    let log = pbxd.wait_for(60, |log| lines_with(log, "talks to").len() >= 2);
    assert_eq!(lines_with(&log, "talks to").len(), 2, "{log}");
    // Meanwhile the third waits: the metrics say so.
    let (status, metrics) = curl(&curl_program, &pbxd, &[], "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        queue_gauge(&metrics, "pbxd_queue_waiting"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        queue_gauge(&metrics, "pbxd_queue_agents_logged_in"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        queue_gauge(&metrics, "pbxd_queue_agents_busy"),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        // The third came 3 s after the first, who talked for 4 s.
        queue_gauge(&metrics, "pbxd_queue_longest_wait_seconds").is_some_and(|wait| wait >= 2.0),
        "{metrics}"
    );
    agent_code(&sipp_program, &pbxd, "ivanov", "*61");
    agent_code(&sipp_program, &pbxd, "petrov", "*60");
    let log = pbxd.wait_for(60, |log| lines_with(log, "talks to").len() >= 3);
    for caller in callers {
        assert_passed(&caller.finish(), &pbxd);
    }
    // While they waited, between the prompts, they heard the music on
    // hold: the second and the third for seconds.
    std::thread::sleep(Duration::from_millis(300));
    let packets = capture.stop();
    for port in &ports[1..] {
        let heard = audio::Peer::of(&packets, *port);
        let music = heard.heard.iter().filter(|frame| frame.music()).count();
        let origin = heard.heard.first().map_or(0.0, |frame| frame.time);
        assert!(
            music >= 100,
            "{music} frames of music for the caller on {port}:\n{}",
            heard.describe(origin)
        );
    }
    // ivanov was rung twice (not for the third caller), petrov once.
    for (phone, calls) in [(ivanov, 2), (petrov, 1)] {
        let (output, received) = phone.finish_soon();
        assert_passed(&output, &pbxd);
        assert_eq!(invites(&received).len(), calls, "{}", pbxd.log());
    }

    // Who waited, in the order they came, and whom each talked to.
    let waited: Vec<String> = lines_with(&log, "waits")
        .iter()
        .map(|line| task_of(line))
        .collect();
    assert_eq!(waited.len(), 3, "{log}");
    let talks = lines_with(&log, "talks to");
    let talked: Vec<(String, &str)> = talks
        .iter()
        .map(|line| {
            let agent = if line.contains("ivanov@") {
                "ivanov"
            } else {
                "petrov"
            };
            (task_of(line), agent)
        })
        .collect();
    assert_eq!(
        talked,
        vec![
            (waited[0].clone(), "ivanov"),
            (waited[1].clone(), "ivanov"),
            (waited[2].clone(), "petrov"),
        ],
        "{log}"
    );
    // Each heard their place when they came, and again as the ones
    // before them were answered.
    let places = |task: &str| -> Vec<String> {
        let mut places: Vec<String> = lines_with(&log, " at place ")
            .iter()
            .filter(|line| task_of(line) == task)
            .filter_map(|line| line.split(" at place ").nth(1)?.split_whitespace().next())
            .map(str::to_string)
            .collect();
        // Said again every announce_seconds: once each is enough here.
        places.dedup();
        places
    };
    assert_eq!(places(&waited[0]), ["1"], "{log}");
    assert_eq!(places(&waited[1]), ["2", "1"], "{log}");
    assert_eq!(places(&waited[2]), ["3", "2", "1"], "{log}");
}

#[test]
fn a_caller_past_the_timeout_reaches_voicemail_and_star_leaves_a_callback() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let Some(smtp) = pbx_test_peers::SmtpServer::start() else {
        return;
    };
    let queue = "domains.\"example.com\".queues.help";
    let pbxd = Pbxd::start(
        "queues-overflow",
        &[
            format!("smtp.relay={}", smtp.relay()),
            format!("{queue}.number=\"510\""),
            format!("{queue}.agents=[\"operator\"]"),
            format!("{queue}.timeout_seconds=15"),
            format!("{queue}.overflow=\"voicemail#operator\""),
            format!("{queue}.callback_mail=\"help-desk@example.com\""),
            format!("{queue}.priorities={{ \"petrov\" = \"2.0\", \"555*\" = \"1.5\" }}"),
        ],
    );
    let started = Instant::now();
    // One waits and is sent to voicemail, where they speak and hang up.
    // petrov, calling from his phone, goes ahead of them (his priority)
    // until he presses * and leaves a callback request.
    let patient = waiting_caller("510", vec![Step::Pause(28.0)], Ending::HangsUp);
    let patient = patient.start(
        "queue-patient",
        &sipp_program,
        &pbxd,
        pbx_test_peers::free_udp_port(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let hurried = Caller {
        called: "510",
        steps: vec![Step::Pause(8.0), Step::Keys("*")],
        ending: Ending::PbxdHangsUp,
        as_phone: Some(("petrov", "petrov-demo")),
    };
    assert_passed(
        &hurried.call(
            "queue-star",
            &sipp_program,
            &pbxd,
            pbx_test_peers::free_udp_port(),
        ),
        &pbxd,
    );
    let mail = smtp.messages(1);
    assert_eq!(mail.len(), 1, "{}", pbxd.log());
    assert!(mail[0].contains("help-desk@example.com"), "{}", mail[0]);
    assert!(mail[0].contains("Callback request from"), "{}", mail[0]);
    assert!(mail[0].contains("petrov@example.com"), "{}", mail[0]);

    assert_passed(&patient.finish(), &pbxd);
    let log = pbxd.log();
    let overflow = lines_with(&log, "queue help: nobody free, overflow to voicemail#operator");
    assert_eq!(overflow.len(), 1, "{log}");
    let voicemail = lines_with(&log, "start voicemail.sppr");
    assert!(
        voicemail.len() == 1 && voicemail[0].contains("account=operator@example.com"),
        "{log}"
    );
    // Not before the timeout.
    assert!(started.elapsed() >= Duration::from_secs(15));
    // Nobody was rung: the operator never logged in.
    assert!(lines_with(&log, "offers").is_empty(), "{log}");
    // The first caller heard petrov go ahead (2.0 over 1.5), then leave.
    let places = |who: &str| -> Vec<&str> {
        lines_with(&log, " at place ")
            .iter()
            .filter(|line| line.contains(who))
            .filter_map(|line| line.split(" at place ").nth(1)?.split_whitespace().next())
            .collect()
    };
    assert_eq!(places("5550000@outside.test").first(), Some(&"2"), "{log}");
    assert!(places("5550000@outside.test").contains(&"1"), "{log}");
    assert_eq!(places("petrov@example.com"), ["1"], "{log}");
}

/// Two queues of the same two agents. Round-robin takes the agents in
/// the order the queue lists them, however long each has been idle: after
/// ivanov's call, petrov (who logged in later, so has been idle for less
/// time) takes the next, where longest-idle would give it to ivanov.
/// Ring-all rings both: ivanov answers, and petrov's phone, still ringing,
/// gets CANCEL.
#[test]
fn round_robin_goes_in_turn_and_ring_all_rings_every_free_agent() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let mut settings = quick_queue();
    for (queue, number, strategy) in [("turns", "520", "round-robin"), ("everyone", "530", "ring-all")] {
        let queue = format!("domains.\"example.com\".queues.{queue}");
        settings.push(format!("{queue}.number=\"{number}\""));
        settings.push(format!("{queue}.agents=[\"ivanov\", \"petrov\"]"));
        settings.push(format!("{queue}.strategy=\"{strategy}\""));
        settings.push(format!("{queue}.wrapup_seconds=0"));
    }
    let pbxd = Pbxd::start("queues-strategies", &settings);
    let call = |number: &'static str, step: &str| {
        let caller = waiting_caller(number, Vec::new(), Ending::PbxdHangsUp);
        assert_passed(
            &caller.call(step, &sipp_program, &pbxd, pbx_test_peers::free_udp_port()),
            &pbxd,
        );
    };
    let talked = |pbxd: &Pbxd| -> Vec<&'static str> {
        lines_with(&pbxd.log(), "talks to")
            .iter()
            .map(|line| {
                if line.contains("ivanov@") {
                    "ivanov"
                } else {
                    "petrov"
                }
            })
            .collect()
    };

    // Round-robin: ivanov alone, then petrov logs in.
    let ivanov = agent_phone(&sipp_program, &pbxd, "ivanov", "agent_answers.xml", 2);
    agent_code(&sipp_program, &pbxd, "ivanov", "*60");
    call("520", "turns-1");
    let petrov = agent_phone(&sipp_program, &pbxd, "petrov", "agent_answers.xml", 1);
    agent_code(&sipp_program, &pbxd, "petrov", "*60");
    call("520", "turns-2");
    assert_eq!(talked(&pbxd), ["ivanov", "petrov"], "{}", pbxd.log());
    assert_passed(&petrov.finish_soon().0, &pbxd);

    // Ring-all: petrov's phone now rings until it is cancelled.
    let petrov = agent_phone(&sipp_program, &pbxd, "petrov", "uas_ring_until_cancel.xml", 1);
    call("530", "everyone");
    assert_eq!(talked(&pbxd), ["ivanov", "petrov", "ivanov"], "{}", pbxd.log());
    let offers = lines_with(&pbxd.log(), "queue everyone: offers").join("\n");
    assert!(
        offers.contains("ivanov@example.com") && offers.contains("petrov@example.com"),
        "{offers}"
    );
    let (output, received) = petrov.finish_soon();
    assert_passed(&output, &pbxd);
    assert!(
        received.iter().any(|message| message.starts_with("CANCEL ")),
        "{received:?}"
    );
    assert_passed(&ivanov.finish_soon().0, &pbxd);
}
