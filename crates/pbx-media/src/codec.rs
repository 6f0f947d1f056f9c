//! G.711 µ-law (PCMU) and A-law (PCMA), written from ITU-T G.711.
//!
//! Both laws turn a linear sample into one byte made of a sign, a 3-bit
//! segment (a power-of-two range) and a 4-bit step within that segment, so
//! quiet sounds keep more precision than loud ones. Decoding goes through a
//! 256-entry table built at compile time; encoding is a few shifts, which is
//! cheap enough for bridging and mixing where audio is re-encoded every packet.

/// An audio codec pbxd speaks on RTP. Both are 8 kHz, one byte per sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static RTP payload type 0.
    Pcmu,
    /// G.711 A-law, static RTP payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(&self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name used in SDP `a=rtpmap`.
    pub fn name(&self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The codec a static payload type stands for, if pbxd speaks it.
    pub fn from_payload_type(payload_type: u8) -> Option<Codec> {
        match payload_type {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The byte this codec uses for digital silence, used to pad frames.
    pub fn silence_byte(&self) -> u8 {
        match self {
            Codec::Pcmu => encode_ulaw(0),
            Codec::Pcma => encode_alaw(0),
        }
    }

    /// Appends the encoding of `samples` (16-bit linear, 8 kHz) to `out`.
    pub fn encode(&self, samples: &[i16], out: &mut Vec<u8>) {
        out.reserve(samples.len());
        match self {
            Codec::Pcmu => out.extend(samples.iter().map(|&sample| encode_ulaw(sample))),
            Codec::Pcma => out.extend(samples.iter().map(|&sample| encode_alaw(sample))),
        }
    }

    /// The 16-bit linear sample one byte stands for.
    pub fn decode_one(&self, byte: u8) -> i16 {
        match self {
            Codec::Pcmu => ULAW_TO_LINEAR[usize::from(byte)],
            Codec::Pcma => ALAW_TO_LINEAR[usize::from(byte)],
        }
    }

    /// Appends the 16-bit linear samples `bytes` stand for to `out`.
    pub fn decode(&self, bytes: &[u8], out: &mut Vec<i16>) {
        let table = match self {
            Codec::Pcmu => &ULAW_TO_LINEAR,
            Codec::Pcma => &ALAW_TO_LINEAR,
        };
        out.reserve(bytes.len());
        out.extend(bytes.iter().map(|&byte| table[usize::from(byte)]));
    }
}

/// µ-law adds this bias to the magnitude so that every segment starts at a
/// power of two; it is taken off again when decoding.
const ULAW_BIAS: i32 = 0x84;
/// The largest magnitude µ-law can represent once biased (14-bit range, scaled to 16 bits).
const ULAW_CLIP: i32 = 32635;

/// Encodes one 16-bit linear sample as µ-law.
pub fn encode_ulaw(sample: i16) -> u8 {
    let negative = sample < 0;
    let magnitude = i32::from(sample).abs().min(ULAW_CLIP) + ULAW_BIAS;
    // The biased magnitude lies in 2^7 ..= 2^15; the segment is how many
    // doublings above 2^7 its highest set bit is.
    let highest_bit = 31 - magnitude.leading_zeros() as i32;
    let segment = (highest_bit - 7).clamp(0, 7);
    let step = (magnitude >> (segment + 3)) & 0x0F;
    let code = ((segment << 4) | step) as u8 | if negative { 0x80 } else { 0 };
    // µ-law transmits every bit inverted.
    !code
}

const fn decode_ulaw(byte: u8) -> i16 {
    let code = !byte;
    let segment = ((code >> 4) & 0x07) as i32;
    let step = (code & 0x0F) as i32;
    let magnitude = (((step << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    if code & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one 16-bit linear sample as A-law.
pub fn encode_alaw(sample: i16) -> u8 {
    // A-law works on 13-bit samples. Negative values use the one's
    // complement magnitude so that -1 and 0 share the smallest step.
    let linear = i32::from(sample) >> 3;
    let (sign_bit, magnitude) = if linear >= 0 {
        (0x80, linear)
    } else {
        (0x00, !linear)
    };
    let code = if magnitude >= 4096 {
        0x7F
    } else if magnitude < 32 {
        // Segments 0 and 1 share a step size of 2.
        magnitude >> 1
    } else {
        let highest_bit = 31 - magnitude.leading_zeros() as i32;
        let segment = highest_bit - 4;
        (segment << 4) | ((magnitude >> segment) & 0x0F)
    };
    // A-law transmits the even bits inverted.
    (code as u8 | sign_bit) ^ 0x55
}

const fn decode_alaw(byte: u8) -> i16 {
    let code = byte ^ 0x55;
    let segment = ((code >> 4) & 0x07) as i32;
    let step = (code & 0x0F) as i32;
    // Decode to the middle of the step, then scale 13 bits up to 16.
    let magnitude = if segment == 0 {
        (step << 1) | 1
    } else {
        (((step | 0x10) << 1) | 1) << (segment - 1)
    } << 3;
    if code & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

// Each table is built by its own loop: function pointers cannot be called
// in const context.
const ULAW_TO_LINEAR: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut index = 0;
    while index < 256 {
        table[index] = decode_ulaw(index as u8);
        index += 1;
    }
    table
};

const ALAW_TO_LINEAR: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut index = 0;
    while index < 256 {
        table[index] = decode_alaw(index as u8);
        index += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(codec: Codec, samples: &[i16]) -> Vec<i16> {
        let mut bytes = Vec::new();
        codec.encode(samples, &mut bytes);
        assert_eq!(bytes.len(), samples.len());
        let mut decoded = Vec::new();
        codec.decode(&bytes, &mut decoded);
        decoded
    }

    #[test]
    fn known_values_from_g711() {
        assert_eq!(encode_ulaw(0), 0xFF);
        assert_eq!(ULAW_TO_LINEAR[0xFF], 0);
        assert_eq!(ULAW_TO_LINEAR[0x7F], 0);
        assert_eq!(ULAW_TO_LINEAR[0x80], 32124);
        assert_eq!(ULAW_TO_LINEAR[0x00], -32124);
        assert_eq!(encode_ulaw(i16::MAX), 0x80);
        assert_eq!(encode_ulaw(i16::MIN), 0x00);

        assert_eq!(encode_alaw(0), 0xD5);
        assert_eq!(ALAW_TO_LINEAR[0xD5], 8);
        assert_eq!(ALAW_TO_LINEAR[0x55], -8);
        assert_eq!(ALAW_TO_LINEAR[0xAA], 32256);
        assert_eq!(ALAW_TO_LINEAR[0x2A], -32256);
        assert_eq!(encode_alaw(i16::MAX), 0xAA);
        assert_eq!(encode_alaw(i16::MIN), 0x2A);
        assert_eq!(Codec::Pcmu.silence_byte(), 0xFF);
        assert_eq!(Codec::Pcma.silence_byte(), 0xD5);
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for byte in 0..=255u8 {
            let alaw = ALAW_TO_LINEAR[usize::from(byte)];
            assert_eq!(encode_alaw(alaw), byte, "A-law {byte:#04x}");
            let ulaw = ULAW_TO_LINEAR[usize::from(byte)];
            // 0x7F is µ-law's "negative zero"; it decodes to 0 which encodes as 0xFF.
            let expected = if byte == 0x7F { 0xFF } else { byte };
            assert_eq!(encode_ulaw(ulaw), expected, "µ-law {byte:#04x}");
        }
    }

    #[test]
    fn round_trip_error_stays_within_the_step_size() {
        let samples: Vec<i16> = (i16::MIN..=i16::MAX).step_by(7).collect();
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let decoded = round_trip(codec, &samples);
            for (&original, &back) in samples.iter().zip(&decoded) {
                let error = (i32::from(original) - i32::from(back)).abs();
                // Logarithmic coding: the error is a small fraction of the value,
                // and tiny for quiet samples.
                let allowed = (i32::from(original).abs() / 16).max(16) + 8;
                assert!(error <= allowed, "{codec:?}: {original} came back as {back}");
            }
        }
    }

    #[test]
    fn decoding_is_symmetric_around_zero() {
        for byte in 0..=127u8 {
            assert_eq!(
                ULAW_TO_LINEAR[usize::from(byte)],
                -ULAW_TO_LINEAR[usize::from(byte | 0x80)]
            );
            assert_eq!(
                ALAW_TO_LINEAR[usize::from(byte)],
                -ALAW_TO_LINEAR[usize::from(byte | 0x80)]
            );
        }
    }

    #[test]
    fn payload_types_and_names() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::Pcmu.name(), "PCMU");
        assert_eq!(Codec::Pcma.name(), "PCMA");
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(18), None);
    }
}
