//! WAV files: reading what a prompt is (format, rate, length), decoding it to
//! the 8 kHz mono audio calls carry, and writing recordings. A malformed file
//! is an error value, never a panic.

use std::time::Duration;

use crate::codec::Codec;

/// The sample encoding of a WAV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Linear PCM: 8 bits unsigned, or 16, 24 or 32 bits signed.
    Pcm,
    /// ITU-T G.711 A-law.
    Alaw,
    /// ITU-T G.711 µ-law.
    Ulaw,
}

/// What a WAV file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WavInfo {
    /// How samples are coded.
    pub encoding: Encoding,
    /// Interleaved channels (1 = mono).
    pub channels: u16,
    /// Sample frames per second.
    pub sample_rate: u32,
    /// Bits of one sample of one channel.
    pub bits_per_sample: u16,
    /// Where the samples start in the file, and how many bytes they take.
    pub data_offset: usize,
    pub data_len: usize,
}

impl WavInfo {
    /// Bytes of one sample frame (all channels).
    pub fn block_align(&self) -> usize {
        usize::from(self.channels) * usize::from(self.bits_per_sample).div_ceil(8)
    }

    /// How long the audio plays.
    pub fn duration(&self) -> Duration {
        let frames = self.data_len / self.block_align().max(1);
        Duration::from_micros(frames as u64 * 1_000_000 / u64::from(self.sample_rate.max(1)))
    }
}

/// Why a file is not a WAV pbxd can play.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    #[error("not a WAV file (no RIFF/WAVE header)")]
    NotWav,
    #[error("the WAV file is cut short")]
    Truncated,
    #[error("the WAV file has no `fmt ` chunk before its data")]
    NoFormat,
    #[error("the WAV file has no `data` chunk")]
    NoData,
    #[error("unsupported WAV encoding (format tag {0}); use PCM, A-law or µ-law")]
    Encoding(u16),
    #[error("unsupported WAV layout: {0}")]
    Layout(String),
    #[error(
        "sample rate {0} Hz is outside what pbxd plays ({MINIMUM_SAMPLE_RATE}..={MAXIMUM_SAMPLE_RATE} Hz)"
    )]
    SampleRate(u32),
    #[error("cannot resample the audio: {0}")]
    Resample(String),
    #[error("cannot read the file: {0}")]
    Io(String),
}

/// The lowest sample rate a prompt may have: below it speech is not intelligible.
pub const MINIMUM_SAMPLE_RATE: u32 = 4000;
/// The highest sample rate a prompt may have; higher claims are broken headers.
pub const MAXIMUM_SAMPLE_RATE: u32 = 384_000;

fn u16_at(bytes: &[u8], at: usize) -> Result<u16, WavError> {
    let slice = bytes.get(at..at + 2).ok_or(WavError::Truncated)?;
    Ok(u16::from_le_bytes([slice[0], slice[1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, WavError> {
    let slice = bytes.get(at..at + 4).ok_or(WavError::Truncated)?;
    Ok(u32::from_le_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

/// Reads the header of a WAV file.
pub fn info(bytes: &[u8]) -> Result<WavInfo, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let mut at = 12;
    let mut format: Option<(Encoding, u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32_at(bytes, at + 4)? as usize;
        let body = at + 8;
        match id {
            b"fmt " => {
                let tag = u16_at(bytes, body)?;
                let channels = u16_at(bytes, body + 2)?;
                let rate = u32_at(bytes, body + 4)?;
                let bits = u16_at(bytes, body + 14)?;
                // WAVE_FORMAT_EXTENSIBLE keeps the real tag in its sub-format.
                let tag = if tag == 0xFFFE {
                    u16_at(bytes, body + 24)?
                } else {
                    tag
                };
                let encoding = match tag {
                    1 => Encoding::Pcm,
                    6 => Encoding::Alaw,
                    7 => Encoding::Ulaw,
                    other => return Err(WavError::Encoding(other)),
                };
                if channels == 0 || rate == 0 {
                    return Err(WavError::Layout("no channels or no sample rate".into()));
                }
                let bits_ok = match encoding {
                    Encoding::Pcm => matches!(bits, 8 | 16 | 24 | 32),
                    Encoding::Alaw | Encoding::Ulaw => bits == 8,
                };
                if !bits_ok {
                    return Err(WavError::Layout(format!("{bits} bits per sample")));
                }
                format = Some((encoding, channels, rate, bits));
            }
            b"data" => {
                let Some((encoding, channels, sample_rate, bits_per_sample)) = format else {
                    return Err(WavError::NoFormat);
                };
                // A header written before the length was known may claim more
                // than the file holds; play what is there.
                let data_len = size.min(bytes.len() - body);
                return Ok(WavInfo {
                    encoding,
                    channels,
                    sample_rate,
                    bits_per_sample,
                    data_offset: body,
                    data_len,
                });
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body.checked_add(size + (size & 1)).ok_or(WavError::Truncated)?;
    }
    Err(WavError::NoData)
}

/// Decodes a WAV file (PCM 8/16/24/32-bit, A-law or µ-law, any channel count,
/// any rate from [`MINIMUM_SAMPLE_RATE`] to [`MAXIMUM_SAMPLE_RATE`]) to 16-bit
/// mono samples at 8 kHz: channels are averaged, other rates resampled.
pub fn decode_to_8k(bytes: &[u8]) -> Result<Vec<i16>, WavError> {
    let info = info(bytes)?;
    if !(MINIMUM_SAMPLE_RATE..=MAXIMUM_SAMPLE_RATE).contains(&info.sample_rate) {
        return Err(WavError::SampleRate(info.sample_rate));
    }
    let data = bytes
        .get(info.data_offset..info.data_offset + info.data_len)
        .ok_or(WavError::Truncated)?;
    let sample_bytes = usize::from(info.bits_per_sample).div_ceil(8);
    let channels = i64::from(info.channels);
    // A trailing partial frame (a file cut mid-sample) is dropped.
    let mono: Vec<i16> = data
        .chunks_exact(info.block_align().max(1))
        .map(|frame| {
            let sum: i64 = frame
                .chunks_exact(sample_bytes.max(1))
                .map(|sample| i64::from(linear_sample(info.encoding, sample)))
                .sum();
            (sum / channels) as i16
        })
        .collect();
    crate::resample::to_8k(&mono, info.sample_rate)
}

/// One sample as 16-bit linear audio. `bytes` is one sample of the file's width.
fn linear_sample(encoding: Encoding, bytes: &[u8]) -> i16 {
    match (encoding, bytes) {
        (Encoding::Ulaw, [byte]) => Codec::Pcmu.decode_one(*byte),
        (Encoding::Alaw, [byte]) => Codec::Pcma.decode_one(*byte),
        // 8-bit WAV is unsigned, centred on 128.
        (Encoding::Pcm, [byte]) => (i16::from(*byte) - 128) << 8,
        (Encoding::Pcm, [low, high]) => i16::from_le_bytes([*low, *high]),
        // Wider samples keep their most significant 16 bits.
        (Encoding::Pcm, [_, middle, high]) => i16::from_le_bytes([*middle, *high]),
        (Encoding::Pcm, [_, _, upper, high]) => i16::from_le_bytes([*upper, *high]),
        _ => 0,
    }
}

/// A 16-bit mono PCM WAV file of `samples` at `sample_rate`.
pub fn pcm16_mono(samples: &[i16], sample_rate: u32) -> Vec<u8> {
    // Lengths and byte rates that do not fit the header's 32 bits saturate
    // rather than wrap; such a file is broken either way, but not misleading.
    let data_len = u32::try_from(samples.len().saturating_mul(2)).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&sample_rate.saturating_mul(2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes() {
        let file = pcm16_mono(&vec![0; 8000], 8000);
        let info = info(&file).unwrap();
        assert_eq!(info.encoding, Encoding::Pcm);
        assert_eq!(info.sample_rate, 8000);
        assert_eq!(info.duration(), Duration::from_secs(1));
    }

    #[test]
    fn refuses_broken_files_without_panicking() {
        assert_eq!(info(b""), Err(WavError::NotWav));
        assert_eq!(info(b"RIFF\0\0\0\0WAVE"), Err(WavError::NoData));
        let mut file = pcm16_mono(&[1, 2, 3], 8000);
        file.truncate(30);
        assert_eq!(info(&file), Err(WavError::Truncated));
        let mut file = pcm16_mono(&[1, 2, 3], 8000);
        file[20] = 3; // IEEE float
        assert_eq!(info(&file), Err(WavError::Encoding(3)));
        let mut file = pcm16_mono(&[1, 2, 3], 8000);
        file[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(info(&file).is_err());
    }
}
