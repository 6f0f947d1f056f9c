//! The stock applications end to end (FEATURES.md, issue 5 item 5): `pbxd
//! serve` on the demo configuration (pbxd.toml), sipp as callers and as
//! registered phones, aiosmtpd taking the mail, and tcpdump capturing the
//! RTP pbxd sends, so that a test can tell what a caller heard.
//!
//! - the auto-attendant (200): a department's digit, an extension number
//!   and silence each ring the right phone, and caller and phone hear each
//!   other;
//! - callback: after hours, a call to ivanov goes to it, and the number
//!   keyed reaches ivanov by mail;
//! - voicemail: ivanov does not answer; the caller's message reaches him by
//!   mail as a WAV, and waits in his mailbox;
//! - the conference center: three callers in room 1 hear each other, and a
//!   tone when someone comes or goes.
//!
//! Callers are sipp scenarios written by [`Caller`] (keys as RFC 4733
//! events from sip-tester's pcaps, speech from its g711a.pcap); phones are
//! tests/sipp/stock_*.xml.

// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::audio::{alaw_to_linear, rms, tone_share, Heard, Peer, LOUD};
use common::caller::{Caller, Ending, Running, Step, KEY_SECONDS};
use common::capture::{Capture, Pcap, Rtp};
use common::peer::{finish_soon, register};
use common::{
    assert_passed, header, lines_with, repository, rtp_received, sipp, sipp_command_with_media, Pbxd,
};
use pbx_test_peers::SmtpServer;

/// Monday 23 November 2026, 10:00 in Moscow: ivanov's and petrov's
/// working hours.
const IN_HOURS: &str = "clock.start=2026-11-23T10:00:00+03:00";
/// The same Monday at 20:00: after hours.
const AFTER_HOURS: &str = "clock.start=2026-11-23T20:00:00+03:00";
/// sipp sends RTP only while it plays a pcap, where a phone would send
/// silence: pbxd must not hang up callers who listen for half a minute.
const PATIENT: &str = "sip.rtp_timeout_seconds=120";
/// pbxd's log: as usual, plus every runtime event (prompts played, DTMF
/// received), so that a failure shows what the caller went through.
const LOG_FILTER: &str = "info,rsipstack=warn,pbx_runtime::observe=debug";

/// sip-tester's sample of speech: 7 s of PCMA in 30 ms packets.
const SPEECH_PCAP: &str = "/usr/share/sip-tester/g711a.pcap";
/// How long g711a.pcap plays.
const SPEECH_PCAP_SECONDS: f64 = 7.1;

// ------------------------------------------------------------ prompts

/// A WAV file's format and sound, from its header.
struct Wav<'a> {
    format: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    data: &'a [u8],
}

impl Wav<'_> {
    fn parse(bytes: &[u8]) -> Option<Wav<'_>> {
        if bytes.get(..4)? != b"RIFF" || bytes.get(8..12)? != b"WAVE" {
            return None;
        }
        let mut format = None;
        let mut offset = 12;
        while offset + 8 <= bytes.len() {
            let id = &bytes[offset..offset + 4];
            let size = u32_le(&bytes[offset + 4..offset + 8]) as usize;
            let body = offset + 8;
            if id == b"fmt " {
                let fmt = bytes.get(body..body + 16)?;
                format = Some((
                    u16_le(&fmt[0..2]),
                    u16_le(&fmt[2..4]),
                    u32_le(&fmt[4..8]),
                    u16_le(&fmt[14..16]),
                ));
            } else if id == b"data" {
                let (format, channels, rate, bits) = format?;
                // A recording cut short may claim more than it holds.
                let data = &bytes[body..(body + size).min(bytes.len())];
                return Some(Wav {
                    format,
                    channels,
                    rate,
                    bits,
                    data,
                });
            }
            offset = body + size + (size & 1);
        }
        None
    }

    fn seconds(&self) -> f64 {
        let bytes_per_second = f64::from(self.rate) * f64::from(self.channels) * f64::from(self.bits) / 8.0;
        self.data.len() as f64 / bytes_per_second
    }

    /// The samples of 16-bit PCM.
    fn samples(&self) -> Vec<i16> {
        self.data
            .chunks_exact(2)
            .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
            .collect()
    }
}

fn u16_le(bytes: &[u8]) -> u16 {
    u16::from_le_bytes([bytes[0], bytes[1]])
}

fn u32_le(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// How long a stock prompt plays in `folder` ("" for English, "russian").
fn prompt_seconds_in(folder: &str, name: &str) -> f64 {
    let path = repository()
        .join("stdlib-scripts")
        .join(folder)
        .join(format!("{name}.wav"));
    let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    Wav::parse(&bytes)
        .unwrap_or_else(|| panic!("{} is not a WAV file", path.display()))
        .seconds()
}

/// How long a stock prompt plays at most, in English or Russian (which
/// one the pbx account speaks is the demo configuration's choice).
fn prompt_seconds(name: &str) -> f64 {
    prompt_seconds_in("", name).max(prompt_seconds_in("russian", name))
}

/// How long prompts play one after the other, at most.
fn prompts_seconds(names: &[&str]) -> f64 {
    names.iter().map(|name| prompt_seconds(name)).sum()
}

// ------------------------------------------------------------ callers

/// `count` UDP ports free now for sipp's RTP, at least 4 apart (sipp also
/// takes the next ports).
fn media_ports(count: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < count {
        let port = pbx_test_peers::free_udp_port();
        if ports.iter().all(|other| other.abs_diff(port) >= 4) {
            ports.push(port);
        }
    }
    ports
}

/// The prompts pbxd's log says were played (its debug events), by name:
/// "vmyouhave" for russian/vmyouhave.wav.
fn prompts_played(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains("Play {"))
        .filter_map(|line| {
            let file = line.split("file: \"").nth(1)?.split('"').next()?;
            file.rsplit('/').next()?.strip_suffix(".wav")
        })
        .collect()
}

/// The middle of g711a.pcap, where someone speaks all along: 3 s of
/// packets, written once by each test run.
fn speech_clip() -> &'static Path {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| {
        let bytes = std::fs::read(SPEECH_PCAP).unwrap_or_else(|error| panic!("{SPEECH_PCAP}: {error}"));
        let pcap = Pcap::parse(&bytes).unwrap();
        let start = pcap.records[0].time;
        let mut clip = pcap.header.to_vec();
        for record in &pcap.records {
            if (1.6..1.6 + SPEECH_CLIP_SECONDS).contains(&(record.time - start)) {
                clip.extend_from_slice(record.whole);
            }
        }
        // In target/tmp, replaced whole (other test runs may read it).
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stock-speech.pcap");
        let written = path.with_extension(format!("{}.pcap", std::process::id()));
        std::fs::write(&written, clip).unwrap();
        std::fs::rename(&written, &path).unwrap();
        path
    })
}

/// How long `speech_clip` plays.
const SPEECH_CLIP_SECONDS: f64 = 3.0;

/// A sipp phone (tests/sipp/stock_phone_answers.xml): registers as
/// `account` with `password`, then waits for pbxd to ring it, answers and
/// echoes what it hears until pbxd hangs up.
struct Phone {
    child: Child,
    media_port: u16,
}

impl Phone {
    fn register(sipp_program: &Path, pbxd: &Pbxd, account: &str, password: &str, media_port: u16) -> Phone {
        let phone_port = pbx_test_peers::free_udp_port().to_string();
        let child = sipp_command_with_media(
            sipp_program,
            "stock_phone_answers.xml",
            pbxd,
            media_port,
            &["-rtp_echo", "-p", &phone_port],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp runs");
        register(sipp_program, pbxd, account, password, &phone_port);
        Phone { child, media_port }
    }

    /// Waits for the phone's call to end (see `finish_soon`).
    fn finish(self) -> Output {
        finish_soon(self.child)
    }
}

/// Waits (up to 15 s) until `done` says yes of pbxd's log; the log then.
fn wait_for(pbxd: &Pbxd, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = pbxd.log();
        if done(&log) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (up to 15 s) for `count` messages at `smtp`.
fn mail(smtp: &SmtpServer, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let messages = smtp.messages(count);
        if messages.len() >= count || Instant::now() > deadline {
            return messages;
        }
    }
}

/// Whether a From or To header's value is `address` (with or without angle
/// brackets; the local part's case ignored, as mail servers do here).
fn address_is(value: &str, address: &str) -> bool {
    value
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .eq_ignore_ascii_case(address)
}

// ------------------------------------------------------------ the auto-attendant

/// A caller dials the auto-attendant (200), keys `keys` one second after
/// the answer (nothing: stays silent), and then speaks (g711a.pcap) once
/// `connected_after` seconds have passed; the phone registered as
/// `account` must ring and answer, and each must hear the other (the phone
/// echoes what it hears, so the caller hears its own voice back through
/// the phone).
fn attendant_connects(name: &str, keys: &'static str, account: &str, password: &str, connected_after: f64) {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let pbxd = Pbxd::start_logging(name, &[IN_HOURS.into(), PATIENT.into()], LOG_FILTER);
    let ports = media_ports(2);
    let phone = Phone::register(&sipp_program, &pbxd, account, password, ports[0]);
    let caller_port = ports[1];
    let capture = Capture::start(name, &[caller_port, phone.media_port]);
    let caller = Caller {
        called: "200",
        steps: vec![
            Step::Pause(1.0),
            Step::Keys(keys),
            Step::Pause(connected_after),
            Step::Play(PathBuf::from(SPEECH_PCAP)),
            Step::Pause(SPEECH_PCAP_SECONDS + 0.5),
        ],
        ending: Ending::HangsUp,
        as_phone: None,
    };
    let called = caller.call(name, &sipp_program, &pbxd, caller_port);
    let phone_port = phone.media_port;
    let answered = phone.finish();
    let packets = capture.map(Capture::stop);
    assert_passed(&called, &pbxd);
    // The phone rang, answered, and was hung up when the caller hung up.
    if !answered.status.success() {
        eprintln!("{account}'s phone was not rung, or its call did not go as it should");
    }
    assert_passed(&answered, &pbxd);
    // Both legs (the caller's, the phone's) carried the caller's 7 s of
    // speech: 236 packets, each way.
    let log = wait_for(&pbxd, |log| rtp_received(log).len() >= 2);
    let received = rtp_received(&log);
    assert_eq!(received.len(), 2, "{log}");
    assert!(received.iter().all(|&count| count > 100), "{received:?}\n{log}");
    // The caller heard "trying extension", and nothing went wrong.
    let played = prompts_played(&log);
    assert!(played.contains(&"tryingextension"), "{played:?}\n{log}");
    assert!(!played.contains(&"failure"), "{played:?}\n{log}");
    let Some(packets) = packets else {
        eprintln!("not checking what caller and phone heard: no capture");
        return;
    };
    // What they heard: the phone, the caller's speech; the caller, that
    // speech again as the phone sent it back.
    let caller = Peer::of(&packets, caller_port);
    let phone = Peer::of(&packets, phone_port);
    let (start, end) = caller
        .spoke
        .unwrap_or_else(|| panic!("the caller's speech was not captured\n{log}"));
    // g711a.pcap's speech starts 1.7 s in.
    let speech = (start + 1.8, end);
    for (who, peer) in [("phone", &phone), ("caller", &caller)] {
        let (loud, frames) = peer.loudness_between(speech.0, speech.1);
        assert!(
            loud > 0.5 && frames > 100,
            "the {who} heard {:.0}% sound in {frames} frames while the caller spoke ({:.1}..{:.1} s):\n{}\n{log}",
            loud * 100.0,
            speech.0 - start,
            speech.1 - start,
            peer.describe(start)
        );
    }
}

/// The department menu, all of it, at most: "welcome",
/// "dialknownextension", "for ivanov, press 1", "for petrov, press 3",
/// "for sales, press 4" (a call queue), "for the operator, press 0",
/// "tospeakoperator".
fn menu_seconds() -> f64 {
    prompts_seconds(&[
        "welcome",
        "dialknownextension",
        "forivanov",
        "press",
        "1",
        "forpetrov",
        "press",
        "3",
        "forsales",
        "press",
        "4",
        "foroperator",
        "press",
        "0",
        "tospeakoperator",
    ])
}

/// From the moment the auto-attendant knows whom to ring until that phone
/// (which rings for a second) is connected, at most, with a margin.
fn connecting_seconds() -> f64 {
    prompt_seconds("tryingextension") + 1.0 + 1.5
}

/// (a) 200, then 1: ivanov's phone rings, answers, and the two talk.
#[test]
fn the_attendant_connects_a_department_by_its_digit() {
    attendant_connects("attendant-1", "1", "ivanov", "ivanov-demo", connecting_seconds());
}

/// A caller keys 3 (petrov's department) and hangs up while "trying
/// extension" plays: the auto-attendant ends as a finished task, not by an
/// error ("there is no pending call" from `RedirectCall` on a call already
/// gone, every time before), and nobody's phone is rung.
#[test]
fn a_caller_who_hangs_up_while_the_attendant_connects_ends_it_without_an_error() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let pbxd = Pbxd::start_logging("attendant-gone", &[IN_HOURS.into(), PATIENT.into()], LOG_FILTER);
    let caller = Caller {
        called: "200",
        steps: vec![Step::Pause(1.0), Step::Keys("3"), Step::Pause(0.4)],
        ending: Ending::HangsUp,
        as_phone: None,
    };
    let called = caller.call("attendant-gone", &sipp_program, &pbxd, media_ports(1)[0]);
    assert_passed(&called, &pbxd);
    let log = wait_for(&pbxd, |log| {
        log.contains("finished") || log.contains("ended by an error")
    });
    let played = prompts_played(&log);
    assert!(played.contains(&"tryingextension"), "{played:?}\n{log}");
    assert!(
        log.contains("finished"),
        "the auto-attendant did not finish:\n{log}"
    );
    assert!(!log.contains("ended by an error"), "{log}");
    assert!(
        !log.contains("ringing petrov"),
        "petrov was rung for a caller who had gone:\n{log}"
    );
}

/// (b) 200, then 2 0 2 (the directory prefix 2 starts an extension of
/// three digits): petrov's phone (alias 202) rings and answers.
#[test]
fn the_attendant_connects_an_extension_number() {
    attendant_connects(
        "attendant-202",
        "202",
        "petrov",
        "petrov-demo",
        connecting_seconds(),
    );
}

/// (c) 200, then nothing: after the menu and 5 s of silence, the
/// operator's phone rings and answers.
#[test]
fn the_attendant_connects_a_silent_caller_to_the_operator() {
    attendant_connects(
        "attendant-silent",
        "",
        "operator",
        "operator-demo",
        menu_seconds() + 5.0 + connecting_seconds(),
    );
}

// ------------------------------------------------------------ callback

/// (d) After hours, a call to ivanov's extension (201) is diverted to the
/// callback app: the caller keys a number and `#`, and ivanov gets it by
/// mail.
#[test]
fn after_hours_a_call_to_ivanov_leaves_a_number_to_call_back() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let Some(smtp) = SmtpServer::start() else { return };
    let pbxd = Pbxd::start_logging(
        "stock-callback",
        &[
            AFTER_HOURS.into(),
            PATIENT.into(),
            format!("smtp.relay={}", smtp.relay()),
        ],
        LOG_FILTER,
    );
    let caller = Caller {
        called: "201",
        steps: vec![Step::Pause(1.0), Step::Keys("5553210#")],
        ending: Ending::PbxdHangsUp,
        as_phone: None,
    };
    let output = caller.call("callback", &sipp_program, &pbxd, pbx_test_peers::free_udp_port());
    assert_passed(&output, &pbxd);
    let messages = mail(&smtp, 1);
    assert_eq!(messages.len(), 1, "{messages:?}\n{}", pbxd.log());
    let message = &messages[0];
    assert_eq!(header(message, "To"), Some("ivanov@example.com"), "{message}");
    assert!(
        header(message, "From").is_some_and(|from| address_is(from, "CallbackMailer@example.com")),
        "{message}"
    );
    assert_eq!(header(message, "Subject"), Some("Call back:5553210"), "{message}");
}

// ------------------------------------------------------------ voicemail

/// Standard base64, whitespace ignored; `None` on anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let (mut bits, mut count) = (0u32, 0);
    for character in text.bytes().filter(|byte| !byte.is_ascii_whitespace()) {
        let value = match character {
            b'A'..=b'Z' => character - b'A',
            b'a'..=b'z' => character - b'a' + 26,
            b'0'..=b'9' => character - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(bytes)
}

/// The MIME part of `message` whose headers name `filename`: its headers
/// and its body (the lines up to the next boundary).
fn attachment<'a>(message: &'a str, filename: &str) -> Option<(&'a str, &'a str)> {
    message.split("\n--").find_map(|part| {
        let (headers, body) = part.split_once("\n\n")?;
        headers.contains(filename).then_some((headers, body))
    })
}

/// (e) ivanov's phone rings and nobody answers: after 20 s the voicemail
/// answers, greets, beeps and records; the caller speaks 3 s and hangs up.
/// ivanov gets a mail with the message as a WAV, and the message waits in
/// his mailbox (voicemail#ivanov, `*` during the greeting, PIN 1111).
#[test]
fn an_unanswered_call_leaves_a_voice_message_mailed_and_kept() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let Some(smtp) = SmtpServer::start() else { return };
    let pbxd = Pbxd::start_logging(
        "stock-voicemail",
        &[
            IN_HOURS.into(),
            PATIENT.into(),
            format!("smtp.relay={}", smtp.relay()),
        ],
        LOG_FILTER,
    );
    // ivanov's phone rings until pbxd gives up on it (CANCEL).
    let phone_port = pbx_test_peers::free_udp_port().to_string();
    let phone = common::sipp_command(
        &sipp_program,
        "uas_ring_until_cancel.xml",
        &pbxd,
        &["-p", &phone_port],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("sipp runs");
    register(&sipp_program, &pbxd, "ivanov", "ivanov-demo", &phone_port);
    // ivanov speaks Russian: his greeting, then a 0.5 s beep.
    let greeting = prompt_seconds_in("russian", "vmgreeting");
    let caller_port = media_ports(1)[0];
    let capture = Capture::start("voicemail", &[caller_port]);
    let caller = Caller {
        called: "201",
        steps: vec![
            Step::Pause(greeting + 0.5 + 0.8),
            Step::Play(speech_clip().to_path_buf()),
            Step::Pause(SPEECH_CLIP_SECONDS + 0.2),
        ],
        ending: Ending::HangsUp,
        as_phone: None,
    };
    let started = Instant::now();
    let called = caller.call("voicemail", &sipp_program, &pbxd, caller_port);
    let phone = finish_soon(phone);
    let packets = capture.map(Capture::stop);
    assert_passed(&phone, &pbxd);
    assert_passed(&called, &pbxd);
    // The call waited the 20 s of the no-answer rule.
    assert!(started.elapsed() > Duration::from_secs(20), "{}", pbxd.log());
    // The caller heard the beep, 1000 Hz for half a second, before speaking.
    if let Some(packets) = packets {
        let caller = Peer::of(&packets, caller_port);
        let spoke = caller.spoke.map_or(f64::MAX, |(start, _)| start);
        let beep = caller.heard.iter().filter(|heard| heard.tone_at(1000.0));
        let beep_before_speaking = beep.filter(|heard| heard.time < spoke).count();
        let origin = caller.heard.first().map_or(0.0, |heard| heard.time);
        assert!(
            (20..=30).contains(&beep_before_speaking),
            "{beep_before_speaking} frames of 1000 Hz before the caller spoke:\n{}\n{}",
            caller.describe(origin),
            pbxd.log()
        );
    }

    let messages = mail(&smtp, 1);
    assert_eq!(messages.len(), 1, "{messages:?}\n{}", pbxd.log());
    let message = &messages[0];
    assert_eq!(header(message, "To"), Some("ivanov@example.com"), "{message}");
    assert!(
        header(message, "From").is_some_and(|from| address_is(from, "voicemail@example.com")),
        "{message}"
    );
    let (headers, body) =
        attachment(message, "message.wav").unwrap_or_else(|| panic!("no message.wav in {message}"));
    let lowercase = headers.to_ascii_lowercase();
    assert!(lowercase.contains("content-type: audio/wav"), "{headers}");
    assert!(
        lowercase.contains("content-transfer-encoding: base64"),
        "{headers}"
    );
    let wav = base64_decode(body).unwrap_or_else(|| panic!("message.wav is not base64: {body}"));
    let recording = Wav::parse(&wav)
        .unwrap_or_else(|| panic!("message.wav is not a WAV file: {:?}", &wav[..wav.len().min(64)]));
    assert_eq!(
        (
            recording.format,
            recording.channels,
            recording.rate,
            recording.bits
        ),
        (1, 1, 8000, 16),
        "message.wav: 8 kHz 16-bit mono PCM"
    );
    let seconds = recording.seconds();
    assert!(
        (2.0..=4.5).contains(&seconds),
        "message.wav is {seconds:.2} s long\n{}",
        pbxd.log()
    );
    // What the caller said, not silence.
    let level = rms(&recording.samples());
    assert!(level > LOUD, "message.wav is silent (RMS {level:.0})");

    // ivanov calls his mailbox: `*` during the greeting, his PIN, and the
    // menu says he has one message.
    let owner = Caller {
        called: "voicemail%23ivanov",
        steps: vec![
            Step::Pause(1.0),
            Step::Keys("*"),
            Step::Keys("1111#"),
            Step::Pause(prompts_seconds(&["vmyouhave", "1", "vmmessages"]) + 1.0),
        ],
        ending: Ending::HangsUp,
        as_phone: None,
    };
    let output = owner.call("mailbox", &sipp_program, &pbxd, pbx_test_peers::free_udp_port());
    assert_passed(&output, &pbxd);
    let log = pbxd.log();
    let played = prompts_played(&log);
    assert!(
        played
            .windows(3)
            .any(|prompts| prompts == ["vmyouhave", "1", "vmmessages"]),
        "the mailbox did not say \"you have 1 messages\": {played:?}\n{log}"
    );
}

/// The data disk full (issue 15 item 3): with less free than
/// `limits.disk_reserve_mb` (here more than any disk has), a voice
/// message is not kept, says so in the log, and is still mailed to its
/// owner; the caller hears it was recorded; the mailbox then has none,
/// and its PIN (kept in the same store) still opens it.
#[test]
fn a_full_disk_keeps_no_message_but_mails_it() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let Some(smtp) = SmtpServer::start() else { return };
    let pbxd = Pbxd::start_logging(
        "stock-disk-full",
        &[
            IN_HOURS.into(),
            PATIENT.into(),
            "limits.disk_reserve_mb=100000000000".into(),
            format!("smtp.relay={}", smtp.relay()),
        ],
        LOG_FILTER,
    );
    let greeting = prompt_seconds_in("russian", "vmgreeting");
    let caller = Caller {
        called: "voicemail%23ivanov",
        steps: vec![
            Step::Pause(greeting + 0.5 + 0.8),
            Step::Play(speech_clip().to_path_buf()),
            Step::Pause(SPEECH_CLIP_SECONDS + 0.2),
            // `#` ends the message; the caller stays for what follows.
            Step::Keys("#"),
        ],
        ending: Ending::PbxdHangsUp,
        as_phone: None,
    };
    let called = caller.call("disk-full", &sipp_program, &pbxd, pbx_test_peers::free_udp_port());
    assert_passed(&called, &pbxd);
    let log = wait_for(&pbxd, |log| log.contains("voicemail: not kept"));
    assert!(
        log.contains("voicemail: not kept: the disk is full ("),
        "no refusal for the full disk:\n{log}"
    );
    let messages = mail(&smtp, 1);
    assert_eq!(messages.len(), 1, "{messages:?}\n{}", pbxd.log());
    assert!(
        attachment(&messages[0], "message.wav").is_some(),
        "the mail has no message.wav: {}",
        messages[0]
    );

    let owner = Caller {
        called: "voicemail%23ivanov",
        steps: vec![
            Step::Pause(1.0),
            Step::Keys("*"),
            Step::Keys("1111#"),
            Step::Pause(prompt_seconds_in("russian", "vmnomessages") + 1.0),
        ],
        ending: Ending::HangsUp,
        as_phone: None,
    };
    let output = owner.call("mailbox", &sipp_program, &pbxd, pbx_test_peers::free_udp_port());
    assert_passed(&output, &pbxd);
    let log = pbxd.log();
    let played = prompts_played(&log);
    assert!(
        played.contains(&"vmrecorded") && played.contains(&"vmnomessages"),
        "the caller should hear vmrecorded and the owner vmnomessages: {played:?}\n{log}"
    );
    assert!(!played.contains(&"failure"), "{played:?}");
}

/// PIN guessing on voicemail (issue 15 item 4): a caller from outside
/// keys wrong PINs for ivanov's mailbox over two calls; at the fifth
/// (`limits.pin_attempts`) his PIN checks are locked, so even the right
/// PIN is refused on that call. ivanov's own phone still opens it.
#[test]
fn wrong_pins_lock_the_mailbox_but_not_for_its_own_phone() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let pbxd = Pbxd::start_logging("stock-pin-guess", &[IN_HOURS.into(), PATIENT.into()], LOG_FILTER);
    let wrong = prompt_seconds_in("russian", "vmwrongpin") + 0.5;
    let guesses = |pins: &[&'static str]| {
        let mut steps = vec![Step::Pause(1.0), Step::Keys("*")];
        for (index, pin) in pins.iter().enumerate() {
            if index > 0 {
                steps.push(Step::Pause(wrong));
            }
            steps.push(Step::Keys(pin));
        }
        Caller {
            called: "voicemail%23ivanov",
            steps,
            ending: Ending::PbxdHangsUp,
            as_phone: None,
        }
    };
    let first = guesses(&["2222#", "3333#", "4444#"]).call(
        "guess-1",
        &sipp_program,
        &pbxd,
        pbx_test_peers::free_udp_port(),
    );
    assert_passed(&first, &pbxd);
    assert!(!pbxd.log().contains("PIN checks locked"), "{}", pbxd.log());
    // Two more wrong, then the right one: refused, the checks being locked.
    let second = guesses(&["5555#", "6666#", "1111#"]).call(
        "guess-2",
        &sipp_program,
        &pbxd,
        pbx_test_peers::free_udp_port(),
    );
    assert_passed(&second, &pbxd);
    let log = pbxd.log();
    assert_eq!(
        lines_with(&log, "PIN checks locked: too many wrong PINs in a row").len(),
        1,
        "{log}"
    );
    assert_eq!(
        lines_with(&log, "PIN refused: too many wrong PINs lately").len(),
        1,
        "{log}"
    );
    let played = prompts_played(&log);
    assert_eq!(
        played.iter().filter(|prompt| **prompt == "vmwrongpin").count(),
        6,
        "{played:?}"
    );
    assert!(
        !played.contains(&"vmmenu"),
        "the mailbox opened to a guess: {played:?}"
    );
    // No PIN keyed is in the log.
    let numbers: Vec<&str> = log
        .lines()
        .filter_map(|line| line.split_once(' ').map(|(_, rest)| rest))
        .flat_map(|rest| rest.split(|c: char| !c.is_ascii_digit()))
        .collect();
    for pin in ["2222", "3333", "4444", "5555", "6666", "1111"] {
        assert!(!numbers.contains(&pin), "{pin} is in the log:\n{log}");
    }

    // ivanov's own phone is not locked out.
    let owner = Caller {
        called: "voicemail%23ivanov",
        steps: vec![
            Step::Pause(1.0),
            Step::Keys("1111#"),
            Step::Pause(prompt_seconds_in("russian", "vmnomessages") + 1.0),
        ],
        ending: Ending::HangsUp,
        as_phone: Some(("ivanov", "ivanov-demo")),
    };
    let output = owner.call("owner", &sipp_program, &pbxd, pbx_test_peers::free_udp_port());
    assert_passed(&output, &pbxd);
    let log = pbxd.log();
    let played = prompts_played(&log);
    assert!(played.contains(&"vmnomessages"), "{played:?}\n{log}");
}

// ------------------------------------------------------------ the conference

/// (f) Three callers dial `conference`, key room 1 and its PIN 1234 (the
/// third some seconds after the others), and speak in turn, 3 s each, the
/// third then hanging up first. Each hears the others, and not itself;
/// the first two hear a tone when the third comes in and when it leaves.
#[test]
fn three_callers_in_a_conference_room_hear_each_other() {
    let Some(sipp_program) = pbx_test_peers::sipp() else {
        return;
    };
    let pbxd = Pbxd::start_logging("stock-conference", &[PATIENT.into()], LOG_FILTER);
    let ports = media_ports(3);
    let Some(capture) = Capture::start("conference", &ports) else {
        return;
    };
    // Room and PIN keyed from 1 s in; a caller is in the room after
    // "joining" (and the first in the room hears "you are alone" first).
    // The third keys its PIN once the first two are in, so that the tone
    // they hear when it comes in is not the one for each other.
    let keys_end = 1.0 + 7.0 * KEY_SECONDS;
    let joined = keys_end + prompts_seconds(&["confjoining", "confalone"]) + 1.0;
    let third_later = joined + 1.0 - (keys_end - KEY_SECONDS);
    let turn = SPEECH_CLIP_SECONDS + 1.0;
    let first_turn = keys_end + third_later + prompt_seconds("confjoining") + 2.0;
    let ends = first_turn + 3.0 * turn;
    let callers: Vec<Running> = (0..3)
        .map(|index| {
            let late = if index == 2 { third_later } else { 0.0 };
            let speaks = first_turn + index as f64 * turn;
            let caller = Caller {
                called: "conference",
                steps: vec![
                    Step::Pause(1.0 + late),
                    Step::Keys("1#"),
                    Step::Keys("1234#"),
                    Step::Pause(speaks - keys_end - late),
                    Step::Play(speech_clip().to_path_buf()),
                    Step::Pause(ends - speaks + if index == 2 { 0.0 } else { 3.0 }),
                ],
                ending: Ending::HangsUp,
                as_phone: None,
            };
            caller.start(&format!("conference-{index}"), &sipp_program, &pbxd, ports[index])
        })
        .collect();
    let outputs: Vec<Output> = callers.into_iter().map(Running::finish).collect();
    let packets = capture.stop();
    for output in &outputs {
        assert_passed(output, &pbxd);
    }
    let log = pbxd.log();
    let peers: Vec<Peer> = ports.iter().map(|&port| Peer::of(&packets, port)).collect();
    let origin = packets.first().map_or(0.0, |packet| packet.time);
    let describe = |index: usize| format!("caller {index} heard:\n{}", peers[index].describe(origin));
    let turns: Vec<(f64, f64)> = peers
        .iter()
        .enumerate()
        .map(|(index, peer)| {
            peer.spoke
                .unwrap_or_else(|| panic!("caller {index}'s speech was not captured\n{log}"))
        })
        .collect();
    for (listener, peer) in peers.iter().enumerate() {
        for (speaker, &(start, end)) in turns.iter().enumerate() {
            let (loud, frames) = peer.loudness_between(start + 0.3, end);
            if speaker == listener {
                assert!(
                    loud < 0.1,
                    "caller {listener} heard itself ({:.0}% sound from {:.1} s)\n{}\n{log}",
                    loud * 100.0,
                    start - origin,
                    describe(listener)
                );
            } else {
                assert!(
                    loud > 0.6 && frames > 100,
                    "caller {listener} heard {:.0}% sound in {frames} frames while caller {speaker} spoke (from {:.1} s)\n{}\n{log}",
                    loud * 100.0,
                    start - origin,
                    describe(listener)
                );
            }
        }
    }
    // The first two hear a tone when the third comes in (after its PIN
    // and "joining") and when it hangs up.
    let third_keyed = peers[2]
        .last_key
        .unwrap_or_else(|| panic!("caller 2's keys were not captured"));
    let third_left = turns[2].1 + 0.2;
    for (listener, peer) in peers.iter().enumerate().take(2) {
        for (what, from, to) in [
            (
                "came in",
                third_keyed,
                third_keyed + prompt_seconds("confjoining") + 2.5,
            ),
            ("left", third_left, third_left + 2.5),
        ] {
            let tones = peer.heard_between(from, to).filter(|heard| heard.tone()).count();
            assert!(
                tones >= 3,
                "caller {listener} heard no tone when caller 2 {what} ({:.1}..{:.1} s)\n{}\n{log}",
                from - origin,
                to - origin,
                describe(listener)
            );
        }
    }
    // Nobody was turned away.
    let played = prompts_played(&log);
    assert!(
        !played.contains(&"failure") && !played.contains(&"confwrongpin"),
        "{played:?}\n{log}"
    );
}

// ------------------------------------------------------------ unit tests

/// A little-endian pcap of one Ethernet frame carrying `rtp` over UDP
/// from port 4000 to 5000.
fn pcap_of(rtp: &[u8]) -> Vec<u8> {
    let mut udp = Vec::new();
    udp.extend_from_slice(&4000u16.to_be_bytes());
    udp.extend_from_slice(&5000u16.to_be_bytes());
    udp.extend_from_slice(&((8 + rtp.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(rtp);
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
    ];
    let total = (20 + udp.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&udp);
    let mut frame = vec![0; 12];
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&ip);
    // Ethernet pads short frames: the IP length says where the packet ends.
    frame.extend_from_slice(&[0xee; 6]);
    let mut pcap = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    pcap.extend_from_slice(&2u16.to_le_bytes());
    pcap.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 262_144, 1] {
        pcap.extend_from_slice(&word.to_le_bytes());
    }
    for word in [1_700_000_000u32, 250_000, frame.len() as u32, frame.len() as u32] {
        pcap.extend_from_slice(&word.to_le_bytes());
    }
    pcap.extend_from_slice(&frame);
    pcap
}

#[test]
fn pcap_rtp_packets_are_read_past_csrcs_extensions_and_padding() {
    // Version 2, padding, extension, two CSRCs; marker and payload type 8.
    let mut rtp = vec![0xb2, 0x88, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
    rtp.extend_from_slice(&[0; 8]);
    // An extension of one word.
    rtp.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]);
    rtp.extend_from_slice(&[0xd5, 0x55, 0x2a]);
    // Three bytes of padding, the last saying so.
    rtp.extend_from_slice(&[0, 0, 3]);
    let bytes = pcap_of(&rtp);
    let pcap = Pcap::parse(&bytes).unwrap();
    assert_eq!(pcap.link_type, 1);
    assert_eq!(pcap.records.len(), 1);
    assert!((pcap.records[0].time - 1_700_000_000.25).abs() < 1e-6);
    let packets = pcap.rtp().unwrap();
    assert_eq!(packets.len(), 1);
    let packet = &packets[0];
    assert_eq!((packet.source_port, packet.destination_port), (4000, 5000));
    assert_eq!(packet.payload_type, 8);
    assert_eq!(packet.payload, [0xd5, 0x55, 0x2a]);
    // A record cut short (tcpdump stopped) is left out, not an error.
    let cut = &bytes[..bytes.len() - 5];
    assert_eq!(Pcap::parse(cut).unwrap().records.len(), 0);
    // Not RTP (version 0): skipped.
    let mut not_rtp = rtp.clone();
    not_rtp[0] = 0x00;
    assert!(Pcap::parse(&pcap_of(&not_rtp)).unwrap().rtp().unwrap().is_empty());
    assert!(Pcap::parse(b"not a pcap file at all, no").is_err());
}

#[test]
fn sip_testers_speech_is_read_as_pcma_and_is_loud() {
    let Ok(bytes) = std::fs::read(SPEECH_PCAP) else {
        let _ = pbx_test_peers::missing::<()>(
            "sip-tester's pcaps are not installed (apt-get install sip-tester)",
        );
        return;
    };
    let packets = Pcap::parse(&bytes).unwrap().rtp().unwrap();
    assert_eq!(packets.len(), 236);
    assert!(packets
        .iter()
        .all(|packet| packet.payload_type == 8 && packet.payload.len() == 240));
    let duration = packets[235].time - packets[0].time;
    assert!((7.0..SPEECH_PCAP_SECONDS).contains(&duration), "{duration}");
    // Quiet at first, then speech.
    let level = |packet: &Rtp| {
        rms(&packet
            .payload
            .iter()
            .map(|&byte| alaw_to_linear(byte))
            .collect::<Vec<_>>())
    };
    assert!(level(&packets[0]) < 50.0);
    let loud = packets.iter().filter(|packet| level(packet) > LOUD).count();
    assert!(loud > 150, "{loud}");
    // The clip the conference plays is all speech.
    let clip = Pcap::parse(&std::fs::read(speech_clip()).unwrap())
        .unwrap()
        .rtp()
        .unwrap();
    assert_eq!(clip.len(), 100);
    assert!(clip.iter().filter(|packet| level(packet) > LOUD).count() > 90);
}

#[test]
fn alaw_decodes_and_tones_are_told_from_silence() {
    // G.711: 0xd5 and 0x55 are the two smallest values, ±8; 0xaa and 0x2a
    // the largest, ±32256.
    assert_eq!(alaw_to_linear(0xd5), 8);
    assert_eq!(alaw_to_linear(0x55), -8);
    assert_eq!(alaw_to_linear(0xaa), 32256);
    assert_eq!(alaw_to_linear(0x2a), -32256);
    let tone: Vec<i16> = (0..160)
        .map(|n| (8000.0 * (2.0 * std::f64::consts::PI * 880.0 * f64::from(n) / 8000.0).sin()) as i16)
        .collect();
    assert!(tone_share(&tone, 880.0) > 0.8, "{}", tone_share(&tone, 880.0));
    assert!(tone_share(&tone, 440.0) < 0.2, "{}", tone_share(&tone, 440.0));
    let heard = Heard {
        time: 0.0,
        samples: tone,
    };
    assert!(heard.loud() && heard.tone() && heard.tone_at(880.0) && !heard.tone_at(1000.0));
    let silence = Heard {
        time: 0.0,
        samples: vec![8; 160],
    };
    assert!(!silence.loud() && !silence.tone());
}

#[test]
fn wav_headers_give_the_length_of_prompts() {
    let greeting = prompt_seconds_in("russian", "vmgreeting");
    assert!((1.0..30.0).contains(&greeting), "{greeting}");
    assert!(prompt_seconds("welcome") >= prompt_seconds_in("", "welcome"));
    assert_eq!(base64_decode("UklGRg==\n"), Some(b"RIFF".to_vec()));
    assert_eq!(base64_decode("UklG Rg"), Some(b"RIFF".to_vec()));
    assert_eq!(base64_decode("not*base64"), None);
}

// ------------------------------------------------------------ click-to-dial

/// Click-to-dial (issue 10; pbxnsip's `remote_call.htm`): without
/// credentials the link gets a Digest challenge (401), with a wrong
/// password 403, and a number ivanov's class of service forbids 403; no
/// phone rings for any of them. With ivanov's name and password it rings
/// ivanov's phone, which keys 1; then petrov's phone (extension 202)
/// rings and answers, and when ivanov hangs up petrov's call ends too.
/// With `connect=true` the same without waiting for the key; and once
/// more to a number, which goes out through a trunk (a sipp provider
/// that challenges pbxd, then answers). The records of the three calls
/// are read back as JSON and CSV, by whom may, and again after a restart.
#[test]
fn click_to_dial_rings_the_user_then_the_destination() {
    let (Some(sipp_program), Some(curl_program)) = (pbx_test_peers::sipp(), pbx_test_peers::curl()) else {
        return;
    };
    let trunk_port = pbx_test_peers::free_udp_port().to_string();
    let pbxd = Pbxd::start_logging(
        "click-to-dial",
        &[
            IN_HOURS.into(),
            PATIENT.into(),
            format!("trunks.provider.proxy=127.0.0.1:{trunk_port}"),
            "trunks.provider.username=pbxtrunk".into(),
            "trunks.provider.password=trunk-secret".into(),
        ],
        LOG_FILTER,
    );
    let get = |query: &str, arguments: &[&str]| {
        common::curl(
            &curl_program,
            &pbxd,
            arguments,
            &format!("/remote_call.htm?{query}"),
        )
    };
    let (status, challenge) = get("user=ivanov%40example.com&dest=202", &["-i"]);
    assert_eq!(status, 401, "{challenge}");
    assert!(
        challenge.lines().any(|line| line
            .to_ascii_lowercase()
            .starts_with("www-authenticate: digest realm=\"example.com\"")),
        "{challenge}"
    );
    let wrong = get("user=ivanov&dest=202&auth=ivanov%3Anot-the-password", &[]);
    assert_eq!(wrong.0, 403, "{wrong:?}");
    // ivanov may call national numbers, not international ones.
    let forbidden = get("user=ivanov&dest=%2B441632960000&auth=ivanov%3Aivanov-demo", &[]);
    assert_eq!(forbidden.0, 403, "{forbidden:?}");
    assert!(forbidden.1.contains("class of service"), "{forbidden:?}");
    let unknown = get("user=nobody&dest=202&auth=ivanov%3Aivanov-demo", &[]);
    assert_eq!(unknown.0, 404, "{unknown:?}");
    let log = pbxd.log();
    assert!(!log.contains("ringing"), "a refused link rang a phone:\n{log}");
    assert!(!log.contains("not-the-password"), "a password was logged:\n{log}");

    let ports = media_ports(2);
    let ivanov_port = pbx_test_peers::free_udp_port().to_string();
    for (connect, dest) in [
        ("", "202"),
        ("&connect=true", "202"),
        ("&connect=true", "84951234567"),
    ] {
        let ivanov = sipp_command_with_media(
            &sipp_program,
            "phone_presses_1.xml",
            &pbxd,
            ports[0],
            &["-p", &ivanov_port],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp runs");
        register(&sipp_program, &pbxd, "ivanov", "ivanov-demo", &ivanov_port);
        let callee = if dest == "202" {
            Phone::register(&sipp_program, &pbxd, "petrov", "petrov-demo", ports[1]).child
        } else {
            common::sipp_trunk(&sipp_program, &pbxd, &trunk_port)
        };
        let (status, task) = get(
            &format!(
                "user=ivanov%40example.com&dest={dest}&auth=ivanov%40example.com%3Aivanov-demo{connect}"
            ),
            &[],
        );
        assert_eq!(status, 200, "{task}");
        assert!(task.trim().parse::<u64>().is_ok(), "not a task ID: {task:?}");
        assert_passed(&finish_soon(ivanov), &pbxd);
        assert_passed(&finish_soon(callee), &pbxd);
        let log = pbxd.log();
        assert!(log.contains(&format!("remotecall: calling {dest}")), "{log}");
        // Asked once in all: the first time, not with connect=true.
        let played = prompts_played(&log);
        let asked = played
            .iter()
            .filter(|prompt| **prompt == "press1tocontinue")
            .count();
        assert_eq!(asked, 1, "connect={connect:?}: {played:?}");
    }

    // The three calls' records, as ivanov reads them, then again after a
    // restart; petrov sees the two he was called in, the operator none.
    pbxd.wait_for(10, |log| log.matches("call leg ended").count() >= 6);
    let records = |pbxd: &Pbxd, who: &str, password: &str| {
        let auth = format!("auth={who}%40example.com%3A{password}");
        let (status, json) = common::curl(&curl_program, pbxd, &[], &format!("/api/cdr?{auth}"));
        assert_eq!(status, 200, "{json}");
        let (status, csv) = common::curl(&curl_program, pbxd, &[], &format!("/api/cdr.csv?{auth}"));
        assert_eq!(status, 200, "{csv}");
        (json, csv)
    };
    let (json, csv) = records(&pbxd, "ivanov", "ivanov-demo");
    assert_eq!(json.matches("\"program\":\"remotecall").count(), 3, "{json}");
    for expected in [
        "\"direction\":\"out\"",
        "\"disposition\":\"answered\"",
        "\"account\":\"petrov@example.com\"",
        "\"hung_up_by\":\"callee\"",
        "\"accounts\":[\"ivanov@example.com\"",
        "\"trunk\":\"provider\"",
    ] {
        assert!(json.contains(expected), "{expected} is not in {json}");
    }
    assert!(
        !json.contains("\"call_id\":\"\""),
        "a leg without its Call-ID: {json}"
    );
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[0].starts_with("id,start,end,caller,called,accounts,program"),
        "{csv}"
    );
    // Three calls of two answered legs each (petrov's first phone, gone,
    // is rung too the second time: its leg is there, not answered).
    assert!(rows.len() > 6, "{csv}");
    assert_eq!(csv.matches(",answered,").count(), 6, "{csv}");
    // petrov sees the call from ivanov, as ivanov's number.
    assert!(
        rows.iter()
            .any(|row| row.contains(",out,ivanov@example.com,petrov@example.com,")),
        "{csv}"
    );
    let (petrov_sees, _) = records(&pbxd, "petrov", "petrov-demo");
    assert_eq!(petrov_sees.matches("\"program\"").count(), 2, "{petrov_sees}");
    let (operator_sees, _) = records(&pbxd, "operator", "operator-demo");
    assert_eq!(operator_sees, "[]");
    let pbxd = pbxd.restart();
    let (again, _) = records(&pbxd, "ivanov", "ivanov-demo");
    assert_eq!(again, json, "the records changed across a restart");
}

// ------------------------------------------------------------ the console

/// The web console in a real browser (headless Chromium driven through
/// the DevTools protocol by tests/console/drive.py): after hours a caller
/// reaches ivanov's callback app, so ivanov missed the call; he logs in,
/// sees it (and his registered phone), presses the caller's number, and
/// click-to-dial starts: his phone is called. The pages are kept as HTML
/// and PNG screenshots under target/tmp/console/.
#[test]
fn the_console_shows_a_missed_call_and_dials_it_back() {
    let (Some(sipp_program), Some(chromium)) = (pbx_test_peers::sipp(), pbx_test_peers::chromium()) else {
        return;
    };
    let pbxd = Pbxd::start_logging("console", &[AFTER_HOURS.into(), PATIENT.into()], LOG_FILTER);
    let called = sipp(&sipp_program, "call_ivanov.xml", &pbxd, &[]);
    assert_passed(&called, &pbxd);
    pbxd.wait_for(10, |log| log.contains("call leg ended"));
    let phone = Phone::register(&sipp_program, &pbxd, "ivanov", "ivanov-demo", media_ports(1)[0]);
    let pages = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    drive(
        &chromium,
        &pbxd,
        "ivanov@example.com",
        "ivanov-demo",
        &pages,
        "user",
        "missed",
    );
    let console = std::fs::read_to_string(pages.join("user.html")).unwrap();
    assert!(console.contains("ivanov@example.com"), "{console}");
    let missed = console
        .split("<tr")
        .find(|row| row.contains("class=\"missed\""))
        .unwrap_or_else(|| panic!("no missed call on the page: {console}"));
    assert!(
        missed.contains("5550000@outside.test") && missed.contains("missed"),
        "{missed}"
    );
    assert!(
        console.contains("class=\"phone\""),
        "the registered phone is not shown: {console}"
    );
    assert!(console.contains("0 messages"), "{console}");
    let outcome = std::fs::read_to_string(pages.join("user-after.html")).unwrap();
    assert!(
        outcome.contains("Calling 5550000@outside.test: your phone rings now"),
        "{outcome}"
    );
    let log = pbxd.wait_for(10, |log| log.contains("calling ivanov@example.com"));
    assert!(log.contains("start remotecall.sppr"), "{log}");
    assert!(
        log.contains("calling ivanov@example.com"),
        "ivanov's phone was not called:\n{log}"
    );
    let Phone { mut child, .. } = phone;
    let _ = child.kill();
    let _ = child.wait();
    assert!(pages.join("user.png").is_file() && pages.join("user-after.png").is_file());
}

/// Logs in as `name` in headless Chromium (tests/console/drive.py), saves
/// the console as `prefix`.html/png in `pages`, presses the first button
/// of the first row of class `row`, and saves what came back as
/// `prefix`-after.
fn drive(chromium: &Path, pbxd: &Pbxd, name: &str, password: &str, pages: &Path, prefix: &str, row: &str) {
    let driven = Command::new("python3")
        .arg(repository().join("tests/console/drive.py"))
        .arg(chromium)
        .arg(format!("http://{}", pbxd.http))
        .args([name, password])
        .arg(pages)
        .args([prefix, row])
        .output()
        .expect("python3 runs");
    assert!(
        driven.status.success(),
        "the driver failed: {}\n{}",
        String::from_utf8_lossy(&driven.stdout),
        String::from_utf8_lossy(&driven.stderr)
    );
}

/// An administrator's console in a real browser: the operator (made a
/// domain administrator) sees two live calls, one to petrov's phone
/// (rung by his rules, no task) and one to a program that waits as long
/// as the call lasts (with its task, waiting for input), the phones
/// registered, the domain's programs, its call queue's figures and a
/// Parlay X call handling rule the administrator set. The
/// operator presses "End
/// call" on the first: pbxd hangs up both its legs, the caller and
/// petrov's phone each get a BYE.
#[test]
fn an_administrator_sees_a_live_call_and_ends_it() {
    let (Some(sipp_program), Some(chromium), Some(curl_program)) = (
        pbx_test_peers::sipp(),
        pbx_test_peers::chromium(),
        pbx_test_peers::curl(),
    ) else {
        return;
    };
    let environment = repository().join("tests/sipp/env");
    let pbxd = Pbxd::start_logging(
        "console-admin",
        &[
            format!("environments.server={}", environment.display()),
            "domains.\"example.com\".accounts.operator.domain_admin=true".into(),
            IN_HOURS.into(),
            PATIENT.into(),
        ],
        LOG_FILTER,
    );
    let ports = media_ports(3);
    let phone = Phone::register(&sipp_program, &pbxd, "petrov", "petrov-demo", ports[0]);
    let call = |target: &str, port: u16| {
        sipp_command_with_media(
            &sipp_program,
            "uac_answered_then_bye.xml",
            &pbxd,
            port,
            &["-s", target],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp runs")
    };
    let to_petrov = call("petrov", ports[1]);
    pbxd.wait_for(10, |log| {
        log.contains("petrov answered") || log.contains("connected")
    });
    std::thread::sleep(Duration::from_millis(500));
    let to_program = call("wait%23petrov", ports[2]);
    pbxd.wait_for(10, |log| log.contains("start wait.sppr"));
    // A Parlay X call handling rule the administrator set for ivanov.
    let (status, body) = common::curl(
        &curl_program,
        &pbxd,
        &[
            "--digest",
            "-u",
            "operator@example.com:operator-demo",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"address": "ivanov", "rules": {"blockList": ["5559999"]}}"#,
        ],
        "/api/parlay/setRules",
    );
    assert_eq!(status, 200, "{body}");
    let pages = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    drive(
        &chromium,
        &pbxd,
        "operator@example.com",
        "operator-demo",
        &pages,
        "admin",
        "live",
    );
    let console = std::fs::read_to_string(pages.join("admin.html")).unwrap();
    let live: Vec<&str> = console
        .split("<tr")
        .filter(|row| row.contains("class=\"live\""))
        .collect();
    assert_eq!(live.len(), 2, "{console}");
    assert!(
        live[0].contains("5550000@outside.test") && live[0].contains("petrov@example.com"),
        "{}",
        live[0]
    );
    assert!(live[1].contains("wait.sppr"), "{}", live[1]);
    let task = console
        .split("<tr")
        .find(|row| row.contains("class=\"task\"") && row.contains("wait.sppr"))
        .unwrap_or_else(|| panic!("no task on the page: {console}"));
    assert!(
        task.contains("waiting for input") || task.contains("running"),
        "{task}"
    );
    assert!(
        console.contains("sip:petrov@127.0.0.1"),
        "no registration shown: {console}"
    );
    assert!(
        console.contains("remotecall") && console.contains("pbx"),
        "no programs shown: {console}"
    );
    let handling = console
        .split("<tr")
        .find(|row| row.contains("class=\"handling\""))
        .unwrap_or_else(|| panic!("no Parlay X rule on the page: {console}"));
    assert!(
        handling.contains("ivanov@example.com") && handling.contains("5559999"),
        "{handling}"
    );
    // The demo's call queue, nobody waiting and no agent logged in.
    let queue = console
        .split("<tr")
        .find(|row| row.contains("class=\"queue\""))
        .unwrap_or_else(|| panic!("no call queue on the page: {console}"));
    let cells: Vec<&str> = queue
        .split("<td>")
        .skip(1)
        .filter_map(|cell| cell.split('<').next())
        .collect();
    assert_eq!(cells, ["sales", "0", "0 s", "0", "0"], "{queue}");
    let ended = std::fs::read_to_string(pages.join("admin-after.html")).unwrap();
    assert!(ended.contains("was hung up"), "{ended}");
    // Each side's scenario passes only if pbxd hung up on it.
    assert_passed(&finish_soon(to_petrov), &pbxd);
    let Phone {
        child: petrov_phone, ..
    } = phone;
    assert_passed(&finish_soon(petrov_phone), &pbxd);
    let mut to_program = to_program;
    let _ = to_program.kill();
    let _ = to_program.wait();
}
