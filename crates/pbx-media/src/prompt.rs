//! Prompts: audio decoded once, encoded once, and shared by every call.
//!
//! A [`Prompt`] holds 8 kHz samples and their PCMU and PCMA encodings, cut
//! logically into 20 ms frames of 160 bytes, so sending a prompt packet copies
//! a frame and never encodes. The [`PromptCache`] decodes each file once per
//! version (path, modification time and length) and hands out the same
//! `Arc<Prompt>` to every call that plays it.

use std::collections::HashMap;
use std::f64::consts::PI;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::codec::Codec;
use crate::wav::{self, WavError};

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// The sample rate of every prompt.
pub const SAMPLE_RATE: u32 = 8000;
/// How long one frame plays.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);
/// Generated tones are cut to this length, to bound memory; play a shorter
/// tone with a `limit` to loop it for longer.
pub const MAXIMUM_TONE_LENGTH: Duration = Duration::from_secs(600);
/// The peak amplitude of a generated tone (all its waves together), -6 dBFS.
const TONE_PEAK: f64 = 16384.0;

/// Audio ready to send: 8 kHz samples and their G.711 encodings.
#[derive(Clone, Debug)]
pub struct Prompt {
    /// The samples, without the padding of the last frame.
    samples: Arc<[i16]>,
    /// `frames() * 160` bytes each; the last frame is padded with silence.
    pcmu: Arc<[u8]>,
    pcma: Arc<[u8]>,
}

impl Prompt {
    /// A prompt of 8 kHz samples; encodes them once for both codecs.
    pub fn from_samples(samples: Vec<i16>) -> Prompt {
        let frames = samples.len().div_ceil(FRAME_SAMPLES);
        let mut padded = samples.clone();
        padded.resize(frames * FRAME_SAMPLES, 0);
        let encode = |codec: Codec| {
            let mut bytes = Vec::with_capacity(padded.len());
            codec.encode(&padded, &mut bytes);
            Arc::from(bytes)
        };
        Prompt {
            pcmu: encode(Codec::Pcmu),
            pcma: encode(Codec::Pcma),
            samples: Arc::from(samples),
        }
    }

    /// Decodes a WAV file (see [`wav::decode_to_8k`]).
    pub fn from_wav(bytes: &[u8]) -> Result<Prompt, WavError> {
        Ok(Prompt::from_samples(wav::decode_to_8k(bytes)?))
    }

    /// Sine waves mixed, as CG/PL `PlayTone` makes them. A frequency of 0 is
    /// silence, and so is one of 4000 Hz or more, which 8 kHz audio cannot
    /// carry. `ratio` is the amplitude of the second wave relative to the
    /// first's 100 (default 100, clamped to 1..=10000); further waves are as
    /// loud as the first. The sum peaks at -6 dBFS. `length` is cut to
    /// [`MAXIMUM_TONE_LENGTH`].
    pub fn tone(frequencies: &[u32], ratio: Option<u32>, length: Duration) -> Prompt {
        let length = length.min(MAXIMUM_TONE_LENGTH);
        let count = (length.as_micros() * u128::from(SAMPLE_RATE) / 1_000_000) as usize;
        let ratio = f64::from(ratio.unwrap_or(100).clamp(1, 10_000)) / 100.0;
        let waves: Vec<(f64, f64)> = frequencies
            .iter()
            .enumerate()
            .map(|(index, &frequency)| {
                let weight = if index == 1 { ratio } else { 1.0 };
                (f64::from(frequency), weight)
            })
            .collect();
        let total_weight: f64 = waves.iter().map(|(_, weight)| weight).sum();
        let audible: Vec<(f64, f64)> = waves
            .into_iter()
            .filter(|&(frequency, _)| frequency > 0.0 && frequency < f64::from(SAMPLE_RATE) / 2.0)
            .map(|(frequency, weight)| {
                (
                    2.0 * PI * frequency / f64::from(SAMPLE_RATE),
                    TONE_PEAK * weight / total_weight,
                )
            })
            .collect();
        let samples = (0..count)
            .map(|index| {
                let value: f64 = audible
                    .iter()
                    .map(|(step, amplitude)| amplitude * (step * index as f64).sin())
                    .sum();
                value.round() as i16
            })
            .collect();
        Prompt::from_samples(samples)
    }

    /// Silence of `length` (cut to [`MAXIMUM_TONE_LENGTH`]).
    pub fn silence(length: Duration) -> Prompt {
        Prompt::tone(&[], None, length)
    }

    /// How long the prompt plays, without the padding of its last frame.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples.len() as u64 * 1_000_000 / u64::from(SAMPLE_RATE))
    }

    /// The 8 kHz samples.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// How many 20 ms frames the prompt takes.
    pub fn frames(&self) -> usize {
        self.samples.len().div_ceil(FRAME_SAMPLES)
    }

    /// Frame `index` (160 bytes) in `codec`; empty past the end.
    pub fn frame(&self, codec: Codec, index: usize) -> &[u8] {
        let bytes = match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        };
        let start = index.saturating_mul(FRAME_SAMPLES);
        bytes
            .get(start..start.saturating_add(FRAME_SAMPLES))
            .unwrap_or(&[])
    }

    /// The samples of frame `index`: 160, fewer in the last frame, none past the end.
    pub fn frame_samples(&self, index: usize) -> &[i16] {
        let start = index.saturating_mul(FRAME_SAMPLES).min(self.samples.len());
        let end = start.saturating_add(FRAME_SAMPLES).min(self.samples.len());
        &self.samples[start..end]
    }
}

/// Decoded prompt files, shared by every call. Thread-safe.
///
/// A file is decoded again only when its modification time or length
/// changes; calls still playing the old version keep their `Arc`. Reading and
/// decoding happen outside the lock and block the calling thread, so async
/// callers with large files may want `spawn_blocking`.
#[derive(Debug, Default)]
pub struct PromptCache {
    /// Written by `get` when a file is new or changed; read by every `get`.
    entries: Mutex<HashMap<PathBuf, CachedPrompt>>,
}

#[derive(Debug)]
struct CachedPrompt {
    modified: Option<SystemTime>,
    length: u64,
    prompt: Arc<Prompt>,
}

impl PromptCache {
    /// An empty cache.
    pub fn new() -> PromptCache {
        PromptCache::default()
    }

    /// The prompt in the WAV file at `path`, decoded once per version.
    pub fn get(&self, path: &Path) -> Result<Arc<Prompt>, WavError> {
        let io_error = |error: std::io::Error| WavError::Io(format!("{}: {error}", path.display()));
        // The usual case, a prompt played again, costs one `stat`: no
        // opening, no reading.
        if let Ok(metadata) = std::fs::metadata(path) {
            if let Some(entry) = self.lock().get(path) {
                if entry.modified == metadata.modified().ok() && entry.length == metadata.len() {
                    return Ok(entry.prompt.clone());
                }
            }
        }
        // The metadata and the bytes come from one open file, so a file
        // replaced meanwhile cannot pair new bytes with an old version.
        let mut file = std::fs::File::open(path).map_err(io_error)?;
        let metadata = file.metadata().map_err(io_error)?;
        let modified = metadata.modified().ok();
        let length = metadata.len();
        if let Some(entry) = self.lock().get(path) {
            if entry.modified == modified && entry.length == length {
                return Ok(entry.prompt.clone());
            }
        }
        let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
        file.read_to_end(&mut bytes).map_err(io_error)?;
        let prompt = Arc::new(Prompt::from_wav(&bytes)?);
        self.lock().insert(
            path.to_path_buf(),
            CachedPrompt {
                modified,
                length,
                prompt: prompt.clone(),
            },
        );
        Ok(prompt)
    }

    /// How many files are cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no file is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every file (calls playing them keep their copies).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, CachedPrompt>> {
        // A panic elsewhere while holding the lock cannot leave the map
        // half-updated (each change is one insert), so keep using it.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_160_bytes_and_the_last_is_padded_with_silence() {
        let prompt = Prompt::from_samples(vec![1000; 400]);
        assert_eq!(prompt.frames(), 3);
        assert_eq!(prompt.duration(), Duration::from_millis(50));
        for codec in [Codec::Pcmu, Codec::Pcma] {
            assert_eq!(prompt.frame(codec, 0).len(), 160);
            let last = prompt.frame(codec, 2);
            assert_eq!(last.len(), 160);
            assert!(last[..80].iter().all(|&byte| byte != codec.silence_byte()));
            assert!(last[80..].iter().all(|&byte| byte == codec.silence_byte()));
            assert!(prompt.frame(codec, 3).is_empty());
            assert!(prompt.frame(codec, usize::MAX).is_empty());
        }
        assert_eq!(prompt.frame_samples(2).len(), 80);
        assert!(prompt.frame_samples(3).is_empty());
    }

    #[test]
    fn empty_prompt_has_no_frames() {
        let prompt = Prompt::from_samples(Vec::new());
        assert_eq!(prompt.frames(), 0);
        assert_eq!(prompt.duration(), Duration::ZERO);
        assert!(prompt.frame(Codec::Pcmu, 0).is_empty());
    }

    #[test]
    fn tones_have_the_asked_length_and_mix() {
        let tone = Prompt::tone(&[440], None, Duration::from_secs(1));
        assert_eq!(tone.samples().len(), 8000);
        assert_eq!(tone.frames(), 50);
        let peak = tone
            .samples()
            .iter()
            .map(|sample| sample.unsigned_abs())
            .max()
            .unwrap();
        assert!((16000..=16384).contains(&peak), "peak {peak}");

        // Frequency 0 is silence; a ratio makes the second wave louder.
        let silent = Prompt::tone(&[0], None, Duration::from_millis(100));
        assert!(silent.samples().iter().all(|&sample| sample == 0));
        let one_sided = Prompt::tone(&[0, 1000], Some(300), Duration::from_millis(100));
        let peak = one_sided
            .samples()
            .iter()
            .map(|sample| sample.unsigned_abs())
            .max()
            .unwrap();
        // The silent first wave keeps its share: 300 / 400 of the peak.
        assert!((12000..=12288).contains(&peak), "peak {peak}");
        assert_eq!(Prompt::silence(Duration::from_millis(30)).frames(), 2);
    }

    #[test]
    fn cache_decodes_once_and_again_after_a_change() {
        let directory = std::env::temp_dir().join(format!("pbx-media-cache-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("hello.wav");
        std::fs::write(&path, wav::pcm16_mono(&[100; 800], 8000)).unwrap();
        let cache = PromptCache::new();
        let first = cache.get(&path).unwrap();
        let second = cache.get(&path).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.duration(), Duration::from_millis(100));

        std::fs::write(&path, wav::pcm16_mono(&[100; 1600], 8000)).unwrap();
        let third = cache.get(&path).unwrap();
        assert_eq!(third.duration(), Duration::from_millis(200));
        assert_eq!(cache.len(), 1);

        std::fs::write(&path, b"not a wav file").unwrap();
        assert_eq!(cache.get(&path).unwrap_err(), WavError::NotWav);
        assert!(matches!(
            cache.get(&directory.join("missing.wav")),
            Err(WavError::Io(_))
        ));
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
