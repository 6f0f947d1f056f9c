//! DTMF: RFC 4733 telephone-events on RTP, and tones detected in the audio.
//!
//! A key press travels as several RTP packets that share one timestamp: a
//! start packet with the marker bit, updates every 20 ms with a growing
//! duration, and the end packet sent three times. The receiver reports the
//! press once, keyed by that timestamp. Phones that do not negotiate
//! telephone-events send the tones in the audio; [`InbandDetector`] finds them.

mod inband;

pub use inband::InbandDetector;

/// Samples in one 20 ms packet at 8 kHz; event durations are counted in samples.
const SAMPLES_PER_PACKET: u16 = 160;

/// Why a telephone-event payload cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    #[error("a telephone-event payload is 4 bytes; this one has {0}")]
    Truncated(usize),
}

/// One RFC 4733 telephone-event payload (§2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// 0-9, 10 = `*`, 11 = `#`, 12-15 = A-D; other values are other events.
    pub event: u8,
    /// The last packets of the event carry this bit.
    pub end: bool,
    /// Power level in -dBm0, 0..=63 (larger is quieter).
    pub volume: u8,
    /// How long the event has lasted so far, in timestamp units (1/8000 s).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first event of a payload (any further bytes are ignored).
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, DtmfError> {
        let bytes = payload.get(..4).ok_or(DtmfError::Truncated(payload.len()))?;
        Ok(TelephoneEvent {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3F,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    /// The 4-byte payload. The reserved bit is zero; volume is cut to 6 bits.
    pub fn to_bytes(&self) -> [u8; 4] {
        let duration = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            duration[0],
            duration[1],
        ]
    }

    /// The key this event stands for, if it is a DTMF key.
    pub fn symbol(&self) -> Option<char> {
        symbol_for_event(self.event)
    }
}

const SYMBOLS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// The key for an RFC 4733 event code 0-15.
pub fn symbol_for_event(event: u8) -> Option<char> {
    SYMBOLS.get(usize::from(event)).copied()
}

/// The RFC 4733 event code for a key; `a`-`d` are accepted for `A`-`D`.
pub fn event_for_symbol(symbol: char) -> Option<u8> {
    let symbol = symbol.to_ascii_uppercase();
    SYMBOLS
        .iter()
        .position(|&known| known == symbol)
        .map(|index| index as u8)
}

/// Turns the repeated packets of a sender into one report per key press.
///
/// A press is identified by its RTP timestamp. A few recent timestamps are
/// remembered so a late, reordered packet of an earlier press is not taken
/// for a new one.
#[derive(Debug, Default)]
pub struct EventDeduplicator {
    recent_timestamps: [Option<u32>; 4],
    next_slot: usize,
}

impl EventDeduplicator {
    /// Creates a de-duplicator that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the key when this packet is the first seen of a new press.
    pub fn accept(&mut self, timestamp: u32, event: &TelephoneEvent) -> Option<char> {
        let symbol = event.symbol()?;
        if self.recent_timestamps.contains(&Some(timestamp)) {
            return None;
        }
        self.recent_timestamps[self.next_slot] = Some(timestamp);
        self.next_slot = (self.next_slot + 1) % self.recent_timestamps.len();
        Some(symbol)
    }

    /// Forgets every press, for when the sender's stream restarts (new SSRC).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// One packet of an outgoing event, in the order they are sent, one per 20 ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPacket {
    /// The payload to send.
    pub event: TelephoneEvent,
    /// Set on the first packet only.
    pub marker: bool,
}

/// The packets that send one key press of `tone_packets` × 20 ms: the start
/// (with marker), updates with a growing duration, and the final duration
/// sent three times with the end bit. All share the press's RTP timestamp.
#[derive(Clone, Debug)]
pub struct EventPackets {
    event: u8,
    volume: u8,
    tone_packets: u16,
    sent: u16,
}

/// How many times the end packet is sent (RFC 4733 §2.5.1.4 recommends three).
pub const END_PACKET_REPEATS: u16 = 3;

impl EventPackets {
    /// A press of `event` lasting `tone_packets` packets (at least one), at
    /// `volume` -dBm0.
    pub fn new(event: u8, volume: u8, tone_packets: u16) -> EventPackets {
        // The duration field is 16 bits: cap the press near 8 seconds.
        let tone_packets = tone_packets.clamp(1, u16::MAX / SAMPLES_PER_PACKET);
        EventPackets {
            event,
            volume: volume.min(63),
            tone_packets,
            sent: 0,
        }
    }

    /// How many packets the press takes in all.
    pub fn total(&self) -> u16 {
        self.tone_packets + END_PACKET_REPEATS - 1
    }

    /// How many packets are still to be sent.
    pub fn remaining(&self) -> u16 {
        self.total().saturating_sub(self.sent)
    }
}

impl Iterator for EventPackets {
    type Item = EventPacket;

    fn next(&mut self) -> Option<EventPacket> {
        if self.sent >= self.total() {
            return None;
        }
        let index = self.sent;
        self.sent += 1;
        let elapsed_packets = (index + 1).min(self.tone_packets);
        Some(EventPacket {
            event: TelephoneEvent {
                event: self.event,
                end: index + 1 >= self.tone_packets,
                volume: self.volume,
                duration: elapsed_packets * SAMPLES_PER_PACKET,
            },
            marker: index == 0,
        })
    }
}

/// The row and column frequencies of a key (ITU-T Q.23), for sending in-band.
pub fn frequencies_for_symbol(symbol: char) -> Option<(u32, u32)> {
    let event = event_for_symbol(symbol)?;
    let (row, column) = match event {
        1 => (0, 0),
        2 => (0, 1),
        3 => (0, 2),
        12 => (0, 3),
        4 => (1, 0),
        5 => (1, 1),
        6 => (1, 2),
        13 => (1, 3),
        7 => (2, 0),
        8 => (2, 1),
        9 => (2, 2),
        14 => (2, 3),
        10 => (3, 0),
        0 => (3, 1),
        11 => (3, 2),
        _ => (3, 3),
    };
    Some((inband::ROW_FREQUENCIES[row], inband::COLUMN_FREQUENCIES[column]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes_the_payload() {
        let event = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 800,
        };
        let bytes = event.to_bytes();
        assert_eq!(bytes, [11, 0x8A, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&bytes), Ok(event));
        assert_eq!(event.symbol(), Some('#'));
        assert_eq!(TelephoneEvent::parse(&bytes[..3]), Err(DtmfError::Truncated(3)));
        // The reserved bit is ignored on input.
        assert_eq!(TelephoneEvent::parse(&[5, 0x40 | 7, 0, 160]).unwrap().volume, 7);
    }

    #[test]
    fn maps_every_key() {
        let keys = "0123456789*#ABCD";
        for (event, key) in keys.chars().enumerate() {
            assert_eq!(event_for_symbol(key), Some(event as u8));
            assert_eq!(symbol_for_event(event as u8), Some(key));
        }
        assert_eq!(event_for_symbol('b'), Some(13));
        assert_eq!(event_for_symbol('x'), None);
        assert_eq!(symbol_for_event(16), None);
        assert_eq!(frequencies_for_symbol('1'), Some((697, 1209)));
        assert_eq!(frequencies_for_symbol('0'), Some((941, 1336)));
        assert_eq!(frequencies_for_symbol('#'), Some((941, 1477)));
        assert_eq!(frequencies_for_symbol('D'), Some((941, 1633)));
    }

    #[test]
    fn repeated_packets_and_triple_end_give_one_key() {
        let mut dedup = EventDeduplicator::new();
        let keys: Vec<char> = EventPackets::new(5, 10, 5)
            .filter_map(|packet| dedup.accept(1000, &packet.event))
            .collect();
        assert_eq!(keys, vec!['5']);
    }

    #[test]
    fn two_presses_of_the_same_key_give_two_keys() {
        let mut dedup = EventDeduplicator::new();
        let mut keys = Vec::new();
        for timestamp in [1000, 3000] {
            for packet in EventPackets::new(1, 10, 5) {
                keys.extend(dedup.accept(timestamp, &packet.event));
            }
        }
        assert_eq!(keys, vec!['1', '1']);
        // A late end packet of the first press is not a third press.
        let late = TelephoneEvent {
            event: 1,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(dedup.accept(1000, &late), None);
    }

    #[test]
    fn an_event_that_is_not_a_key_is_not_reported() {
        let mut dedup = EventDeduplicator::new();
        let flash = TelephoneEvent {
            event: 16,
            end: false,
            volume: 10,
            duration: 160,
        };
        assert_eq!(dedup.accept(1, &flash), None);
    }

    #[test]
    fn sending_sequence_has_marker_growing_duration_and_three_ends() {
        let packets: Vec<EventPacket> = EventPackets::new(9, 10, 5).collect();
        assert_eq!(packets.len(), 7);
        assert!(packets[0].marker);
        assert!(packets[1..].iter().all(|packet| !packet.marker));
        let durations: Vec<u16> = packets.iter().map(|packet| packet.event.duration).collect();
        assert_eq!(durations, vec![160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = packets.iter().map(|packet| packet.event.end).collect();
        assert_eq!(ends, vec![false, false, false, false, true, true, true]);
        assert_eq!(EventPackets::new(9, 10, 0).count(), 3);
    }
}
