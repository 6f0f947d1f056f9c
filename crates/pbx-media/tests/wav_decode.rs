//! WAV files of every kind pbxd accepts decode to 8 kHz mono; broken ones are errors.
// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{power, sox};
use pbx_media::wav::{self, WavError};
use pbx_media::Prompt;

/// Zero crossings per second of a decoded 8 kHz signal: twice its frequency.
fn crossings_per_second(samples: &[i16]) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|pair| (pair[0] < 0) != (pair[1] < 0))
        .count();
    crossings as f64 * 8000.0 / samples.len() as f64
}

fn check_one_second_of_440(bytes: &[u8]) -> Vec<i16> {
    let samples = wav::decode_to_8k(bytes).unwrap();
    assert_eq!(samples.len(), 8000);
    let crossings = crossings_per_second(&samples[400..7600]);
    assert!(
        (860.0..=900.0).contains(&crossings),
        "{crossings} crossings a second"
    );
    samples
}

#[test]
fn pcm_16_bit_at_16_khz_is_resampled() {
    let samples = check_one_second_of_440(&sox("-n -r 16000 -b 16 -c 1 {out} synth 1 sin 440 vol 0.5"));
    // A sine of amplitude 16384 has mean power 16384² / 2.
    let level = power(&samples[400..7600]);
    assert!((1.2e8..1.5e8).contains(&level), "power {level}");
}

#[test]
fn pcm_8_bit_24_bit_and_32_bit() {
    for bits in ["8", "24", "32"] {
        let encoding = if bits == "8" { "-e unsigned" } else { "-e signed" };
        let bytes = sox(&format!(
            "-n -r 8000 -b {bits} {encoding} -c 1 {{out}} synth 1 sin 440 vol 0.5"
        ));
        let samples = check_one_second_of_440(&bytes);
        let level = power(&samples[400..7600]);
        assert!((1.2e8..1.5e8).contains(&level), "{bits} bits: power {level}");
    }
}

#[test]
fn ulaw_and_alaw_files() {
    for encoding in ["u-law", "a-law"] {
        let bytes = sox(&format!(
            "-n -r 8000 -e {encoding} -c 1 {{out}} synth 1 sin 440 vol 0.5"
        ));
        let info = wav::info(&bytes).unwrap();
        assert_eq!(
            info.encoding,
            if encoding == "u-law" {
                wav::Encoding::Ulaw
            } else {
                wav::Encoding::Alaw
            }
        );
        let samples = check_one_second_of_440(&bytes);
        let level = power(&samples[400..7600]);
        assert!((1.2e8..1.5e8).contains(&level), "{encoding}: power {level}");
    }
    // A µ-law file at 16 kHz is decoded, then resampled.
    check_one_second_of_440(&sox("-n -r 16000 -e u-law -c 1 {out} synth 1 sin 440 vol 0.5"));
}

#[test]
fn stereo_at_44_1_khz_is_downmixed() {
    // Left: the tone; right: silence. The mix is the tone at half the amplitude.
    let bytes = sox("-n -r 44100 -b 16 -c 2 {out} synth 1 sin 440 sin 0 vol 0.5");
    assert_eq!(wav::info(&bytes).unwrap().channels, 2);
    let samples = check_one_second_of_440(&bytes);
    let level = power(&samples[400..7600]);
    assert!((3.0e7..3.8e7).contains(&level), "power {level}");
}

#[test]
fn hound_written_files_decode() {
    let mut cursor = std::io::Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for index in 0..48000 {
        let value = (f64::from(index) * 2.0 * std::f64::consts::PI * 440.0 / 48000.0).sin() * 1.0e9;
        writer.write_sample(value as i32).unwrap();
        writer.write_sample(value as i32).unwrap();
    }
    writer.finalize().unwrap();
    check_one_second_of_440(&cursor.into_inner());
}

#[test]
fn a_prompt_from_a_file_is_split_in_frames() {
    let prompt = Prompt::from_wav(&sox("-n -r 16000 -b 16 -c 1 {out} synth 0.51 sin 440")).unwrap();
    assert_eq!(prompt.samples().len(), 4080);
    assert_eq!(prompt.frames(), 26);
    assert_eq!(prompt.frame(pbx_media::Codec::Pcmu, 25).len(), 160);
}

#[test]
fn broken_files_are_errors() {
    assert_eq!(wav::decode_to_8k(b""), Err(WavError::NotWav));
    assert_eq!(wav::decode_to_8k(b"RIFF....WAVEjunk"), Err(WavError::NoData));
    let good = sox("-n -r 8000 -b 16 -c 1 {out} synth 0.1 sin 440");
    // Cut inside the header.
    assert!(wav::decode_to_8k(&good[..30]).is_err());
    // Cut inside the data: what is there plays, a half sample is dropped.
    let cut = wav::decode_to_8k(&good[..good.len() - 101]).unwrap();
    assert_eq!(cut.len(), 800 - 51);
    // Absurd sample rates.
    let rate_at = good.windows(4).position(|window| window == b"fmt ").unwrap() + 12;
    for rate in [1u32, 3999, 384_001, u32::MAX] {
        let mut bad = good.clone();
        bad[rate_at..rate_at + 4].copy_from_slice(&rate.to_le_bytes());
        assert_eq!(wav::decode_to_8k(&bad), Err(WavError::SampleRate(rate)));
    }
    // IEEE float is not supported.
    let float = sox("-n -r 8000 -e floating-point -b 32 -c 1 {out} synth 0.1 sin 440");
    assert!(matches!(wav::decode_to_8k(&float), Err(WavError::Encoding(3))));
}
