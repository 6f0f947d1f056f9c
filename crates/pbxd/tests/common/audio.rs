//! What a sipp peer heard, from the RTP a capture holds (`capture.rs`):
//! PCMA decoded, loudness, and tones told by their pitch (Goertzel).

use std::fmt::Write as _;

use super::capture::Rtp;

/// A 20 ms frame whose RMS (16-bit samples) is above this is sound; pbxd's
/// silence is a few units, sip-tester's speech hundreds to thousands.
pub const LOUD: f64 = 300.0;

/// G.711 A-law to 16-bit linear.
pub fn alaw_to_linear(byte: u8) -> i16 {
    let value = byte ^ 0x55;
    let mantissa = i16::from(value & 0x0f) << 4;
    let segment = (value & 0x70) >> 4;
    let magnitude = match segment {
        0 => mantissa + 8,
        1 => mantissa + 0x108,
        _ => (mantissa + 0x108) << (segment - 1),
    };
    if value & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let energy: f64 = samples.iter().map(|&sample| f64::from(sample).powi(2)).sum();
    (energy / samples.len() as f64).sqrt()
}

/// The share of a frame's energy at `frequency` Hz (Goertzel): near 1 for
/// a pure tone, small for speech or noise.
pub fn tone_share(samples: &[i16], frequency: f64) -> f64 {
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * frequency / 8000.0).cos();
    let (mut previous, mut before) = (0.0, 0.0);
    let mut energy = 0.0;
    for &sample in samples {
        let sample = f64::from(sample);
        energy += sample * sample;
        let current = sample + coefficient * previous - before;
        before = previous;
        previous = current;
    }
    if energy == 0.0 {
        return 0.0;
    }
    let power = previous * previous + before * before - coefficient * previous * before;
    2.0 * power / (samples.len() as f64 * energy)
}

/// A frame with more of its energy than this at one frequency is a tone:
/// a pure tone through A-law has nearly all of it there, while not one
/// frame of the stock prompts (espeak's speech) has this much.
pub const TONE: f64 = 0.8;

/// A PCMA packet that pbxd sent to a port, decoded.
pub struct Heard {
    pub time: f64,
    pub samples: Vec<i16>,
}

impl Heard {
    pub fn loud(&self) -> bool {
        rms(&self.samples) > LOUD
    }

    /// Whether this is a tone at `frequency` Hz.
    pub fn tone_at(&self, frequency: f64) -> bool {
        self.loud() && tone_share(&self.samples, frequency) > TONE
    }

    /// Whether this is a tone of any pitch (a chime, a beep) rather than
    /// speech or silence.
    pub fn tone(&self) -> bool {
        self.loud() && (20..=340).any(|tens| tone_share(&self.samples, f64::from(tens) * 10.0) > TONE)
    }
}

/// What one sipp peer (by its RTP port) sent and heard in a capture.
pub struct Peer {
    /// When it sent PCMA: the first and last packet.
    pub spoke: Option<(f64, f64)>,
    /// The last RFC 4733 packet it sent.
    pub last_key: Option<f64>,
    pub heard: Vec<Heard>,
}

impl Peer {
    pub fn of(packets: &[Rtp], port: u16) -> Peer {
        let spoke_at: Vec<f64> = packets
            .iter()
            .filter(|packet| packet.source_port == port && packet.payload_type == 8)
            .map(|packet| packet.time)
            .collect();
        let last_key = packets
            .iter()
            .rev()
            .find(|packet| packet.source_port == port && packet.payload_type == 101)
            .map(|packet| packet.time);
        let heard = packets
            .iter()
            .filter(|packet| packet.destination_port == port && packet.payload_type == 8)
            .map(|packet| Heard {
                time: packet.time,
                samples: packet.payload.iter().map(|&byte| alaw_to_linear(byte)).collect(),
            })
            .collect();
        Peer {
            spoke: spoke_at
                .first()
                .zip(spoke_at.last())
                .map(|(&first, &last)| (first, last)),
            last_key,
            heard,
        }
    }

    /// What it heard between `from` and `to`.
    pub fn heard_between(&self, from: f64, to: f64) -> impl Iterator<Item = &Heard> {
        self.heard
            .iter()
            .filter(move |heard| heard.time >= from && heard.time <= to)
    }

    /// The share of loud frames among those heard between `from` and `to`,
    /// and how many there were.
    pub fn loudness_between(&self, from: f64, to: f64) -> (f64, usize) {
        let frames: Vec<&Heard> = self.heard_between(from, to).collect();
        let loud = frames.iter().filter(|heard| heard.loud()).count();
        (loud as f64 / frames.len().max(1) as f64, frames.len())
    }

    /// What it heard, a line per half second from `origin`: the loudest
    /// frame's RMS, and whether there was a tone (for failure messages).
    pub fn describe(&self, origin: f64) -> String {
        // (half second, loudest, tone)
        let mut buckets: Vec<(i64, f64, bool)> = Vec::new();
        for heard in &self.heard {
            let index = ((heard.time - origin) * 2.0).floor() as i64;
            if buckets.last().is_none_or(|bucket| bucket.0 != index) {
                buckets.push((index, 0.0, false));
            }
            if let Some(bucket) = buckets.last_mut() {
                bucket.1 = bucket.1.max(rms(&heard.samples));
                bucket.2 |= heard.tone();
            }
        }
        let mut text = String::new();
        for (index, loudest, tone) in buckets {
            let tone = if tone { " tone" } else { "" };
            writeln!(text, "  {:6.1} s: {loudest:6.0}{tone}", index as f64 / 2.0).unwrap();
        }
        text
    }
}

/// How much of a frame's energy the stock music on hold
/// (stdlib-scripts/moh.wav, made by tools/make-moh) has at 440 and 660 Hz
/// together, at least: its open fifth sounds through every frame (43% of
/// the energy at the least, 69% on average), while speech, silence and
/// other tones have far less there.
pub const MUSIC_SHARE: f64 = 0.3;

impl Heard {
    /// Whether this is a frame of the stock music on hold.
    pub fn music(&self) -> bool {
        self.loud() && tone_share(&self.samples, 440.0) + tone_share(&self.samples, 660.0) > MUSIC_SHARE
    }
}
