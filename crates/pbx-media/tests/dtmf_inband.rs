//! In-band DTMF detection on audio made by sox, as it would arrive in a call
//! (through G.711 and back).
// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::sox;
use pbx_media::dtmf::{self, InbandDetector};
use pbx_media::{wav, Codec};

/// Audio made by sox (`synth` arguments, joined by `:`), passed through µ-law
/// the way a call carries it, in 20 ms packets.
fn detect(chains: &[String]) -> Vec<char> {
    let bytes = sox(&format!("-n -r 8000 -b 16 -c 1 {{out}} {}", chains.join(" : ")));
    let samples = wav::decode_to_8k(&bytes).unwrap();
    let mut encoded = Vec::new();
    Codec::Pcmu.encode(&samples, &mut encoded);
    let mut detector = InbandDetector::new();
    let mut keys = Vec::new();
    for packet in encoded.chunks(160) {
        let mut decoded = Vec::new();
        Codec::Pcmu.decode(packet, &mut decoded);
        keys.extend(detector.feed(&decoded));
    }
    keys
}

/// A key of `seconds`, at `volume` (1 = full scale), followed by `pause` seconds of silence.
fn key(symbol: char, seconds: f64, volume: f64, pause: f64) -> String {
    let (row, column) = dtmf::frequencies_for_symbol(symbol).unwrap();
    format!("synth {seconds} sin {row} sin {column} remix - vol {volume} pad 0 {pause}")
}

#[test]
fn finds_a_dialled_number() {
    let chains: Vec<String> = "5551234#"
        .chars()
        .map(|symbol| key(symbol, 0.1, 0.5, 0.1))
        .collect();
    assert_eq!(detect(&chains).iter().collect::<String>(), "5551234#");
}

#[test]
fn finds_every_key_short_and_quiet() {
    // 50 ms tones with 50 ms pauses at about -20 dBm0 each.
    let chains: Vec<String> = "0123456789*#ABCD"
        .chars()
        .map(|symbol| key(symbol, 0.05, 0.12, 0.05))
        .collect();
    assert_eq!(detect(&chains).iter().collect::<String>(), "0123456789*#ABCD");
}

#[test]
fn a_long_press_is_one_key() {
    assert_eq!(detect(&[key('7', 3.0, 0.5, 0.1)]), vec!['7']);
}

#[test]
fn a_single_tone_is_not_a_key() {
    assert!(detect(&["synth 1 sin 697 vol 0.5".to_string()]).is_empty());
    assert!(detect(&["synth 1 sin 1209 vol 0.5".to_string()]).is_empty());
}

#[test]
fn noise_and_speech_like_sound_are_not_keys() {
    assert!(detect(&["synth 3 whitenoise vol 0.5".to_string()]).is_empty());
    assert!(detect(&["synth 3 pinknoise vol 0.7".to_string()]).is_empty());
    // A buzzy voice: harmonics of 150 Hz fall on 750 and 1200 Hz, near the
    // tones of '4', but spread their energy over many frequencies.
    assert!(detect(&["synth 3 sawtooth 150 vol 0.5".to_string()]).is_empty());
    // A gliding vowel-like square wave.
    assert!(detect(&["synth 3 square 100-300 vol 0.5".to_string()]).is_empty());
}

#[test]
fn wrong_twist_is_not_a_key() {
    // '1' with the column tone 15 dB below the row tone.
    assert!(detect(&["synth 0.5 sin 697 sin 1209 remix 1v0.5,2v0.09".to_string()]).is_empty());
    // ...and 10 dB above it.
    assert!(detect(&["synth 0.5 sin 697 sin 1209 remix 1v0.1,2v0.32".to_string()]).is_empty());
    // Within the limits it is a key.
    assert_eq!(
        detect(&["synth 0.5 sin 697 sin 1209 remix 1v0.4,2v0.25".to_string()]),
        vec!['1']
    );
}
