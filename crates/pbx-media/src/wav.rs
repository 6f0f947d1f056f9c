//! WAV files: reading what a prompt is (format, rate, length) and writing
//! recordings. A malformed file is an error value, never a panic.

use std::time::Duration;

/// The sample encoding of a WAV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Linear PCM, 8 (unsigned) or 16 bits.
    Pcm,
    /// ITU-T G.711 A-law.
    Alaw,
    /// ITU-T G.711 µ-law.
    Ulaw,
}

/// What a WAV file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WavInfo {
    pub encoding: Encoding,
    pub channels: u16,
    pub sample_rate: u32,
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
}

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
                    Encoding::Pcm => bits == 8 || bits == 16,
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

/// A 16-bit mono PCM WAV file of `samples` at `sample_rate`.
pub fn pcm16_mono(samples: &[i16], sample_rate: u32) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes());
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
