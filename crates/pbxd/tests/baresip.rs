//! `pbxd serve` against a real softphone: baresip 1.0 (Debian's
//! baresip-core) registers as ivanov, calls the callback demo, hears its
//! prompts and sends the number as DTMF; the number is mailed through a
//! real SMTP server. tests/baresip/README.md does the same by hand.

// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use pbx_test_peers::SmtpServer;

mod common;

use common::{baresip, Pbxd};

/// The 16-bit mono samples of a PCM WAV file (its "data" chunk; what follows
/// the header when the chunk's size was not written).
fn wav_samples(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() > 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE",
        "{path:?}"
    );
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = at + 8;
        if id == b"data" {
            let end = if size == 0 || body + size > bytes.len() {
                bytes.len()
            } else {
                body + size
            };
            return bytes[body..end]
                .chunks_exact(2)
                .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
                .collect();
        }
        at = body + size + size % 2;
    }
    panic!("{path:?} has no data chunk");
}

/// The digits the task received, in order, from pbxd's log.
fn digits(log: &str) -> String {
    log.lines()
        .filter(|line| line.contains("Dtmf {"))
        .filter_map(|line| line.split("symbol: '").nth(1)?.chars().next())
        .collect()
}

/// baresip registers as ivanov, dials callback#ivanov, hears the Russian
/// prompts, sends 5551234# as RFC 4733 events; the app mails the number.
#[test]
fn baresip_registers_and_calls_the_callback_demo() {
    let Some(installation) = baresip::installation(&[]) else {
        return;
    };
    let Some(smtp) = SmtpServer::start() else { return };
    // The demo as it comes: pbxd challenges with MD5 only by default,
    // which is what baresip 1.0's libre knows (it gives up on a SHA-256
    // challenge, even beside an MD5 one).
    // The runtime's events at debug: the task, its prompts, digits, mail.
    let pbxd = Pbxd::start_logging(
        "baresip",
        &[format!("smtp.relay={}", smtp.relay())],
        "info,rsipstack=warn,pbx_runtime::observe=debug",
    );
    let account = format!(
        "<sip:ivanov@example.com>;auth_pass=ivanov-demo;outbound=\"sip:{}\";regint=300\n",
        pbxd.sip
    );
    let mut phone = baresip::Phone::start(&installation, "baresip-phone", "", &[], &account);

    let log = pbxd.wait_for_line(10, &["registered account=ivanov@example.com", "bindings=1"]);
    assert!(
        log.contains("registered account=ivanov@example.com"),
        "no registration\n{log}\n{}",
        phone.transcript()
    );

    phone.command("dial", "sip:callback%23ivanov@example.com");
    assert!(
        phone.wait_for_event(10, "CALL_ESTABLISHED"),
        "no call\n{}\n{}",
        pbxd.log(),
        phone.transcript()
    );
    // The first prompt has played; the digits interrupt the second.
    let log = pbxd.wait_for_line(10, &["callbacklater.wav"]);
    assert!(log.contains("callbacklater.wav"), "{log}\n{}", phone.transcript());
    let task_started = log.lines().any(|line| {
        line.contains("callback.sppr") && line.contains("ivanov@example.com") && line.contains("start")
    });
    assert!(task_started, "{log}");
    assert!(log.contains("russian/callbackbusy.wav"), "{log}");

    phone.command("sndcode", "5551234#");
    let log = pbxd.wait_for_line(10, &["Email {", "ivanov@example.com"]);
    assert_eq!(digits(&log), "5551234#", "{log}\n{}", phone.transcript());
    assert!(
        log.lines()
            .any(|line| line.contains("Email {") && line.contains("result: Ok(())")),
        "{log}"
    );
    let messages = smtp.messages(1);
    assert_eq!(messages.len(), 1, "{messages:?}\n{log}");
    assert!(messages[0].contains("To: ivanov@example.com"), "{}", messages[0]);
    assert!(
        messages[0].contains("Subject: Call back:5551234\n"),
        "{}",
        messages[0]
    );

    phone.command("hangup", "");
    let log = pbxd.wait_for_line(10, &["call leg ended"]);
    let received: Vec<u64> = log
        .lines()
        .filter(|line| line.contains("call leg ended"))
        .filter_map(|line| {
            line.split("rtp_received=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        received.len() == 1 && received[0] > 100,
        "{received:?}\n{log}\n{}",
        phone.transcript()
    );

    // What baresip heard: pbxd's prompts, seconds of them, not silence.
    phone.quit();
    let heard = phone
        .heard()
        .unwrap_or_else(|| panic!("no recording\n{}", phone.transcript()));
    let samples = wav_samples(&heard);
    assert!(
        samples.len() > 8000 * 4,
        "{} samples\n{}",
        samples.len(),
        phone.transcript()
    );
    let power = samples
        .iter()
        .map(|&sample| f64::from(sample).powi(2))
        .sum::<f64>()
        / samples.len() as f64;
    let rms = power.sqrt() / 32768.0;
    assert!(rms > 0.01, "what baresip heard is (nearly) silent: RMS {rms:.4}");
}
