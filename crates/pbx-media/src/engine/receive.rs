//! The receiving half of a session: from datagrams to keys, recordings and
//! the audio bridges and conferences forward.
//!
//! Packets pass a small reorder buffer so everything after it sees the
//! stream in sequence order, duplicates dropped. RFC 4733 packets become
//! keys; audio is decoded once and goes to the recording, the in-band
//! detector (both in timestamp order, with the peer's silence-suppression gaps
//! filled) and the playout queue the worker takes one 20 ms frame from per tick.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Counters, EventSender, MediaEvent};
use crate::codec::Codec;
use crate::dtmf::{EventDeduplicator, InbandDetector, TelephoneEvent};
use crate::prompt::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::rtp::RtpPacket;
use crate::wav;

/// 20 ms of 8 kHz audio.
pub(super) type Frame = [i16; FRAME_SAMPLES];

/// Packets held back waiting for a missing one; past this it counts as lost.
const REORDER_DEPTH: usize = 4;
/// A sequence jump larger than this is a restarted stream, not reordering.
const SEQUENCE_RESYNC: i32 = 1000;
/// The playout queue starts giving frames once it holds this many samples,
/// absorbing the jitter between the peer's clock and the worker's ticks.
const PLAYOUT_START: usize = 2 * FRAME_SAMPLES;
/// The playout queue never holds more than this; older audio is dropped.
const PLAYOUT_LIMIT: usize = 6 * FRAME_SAMPLES;
/// Timestamp gaps up to this many samples are recorded as silence; larger
/// ones are a peer's clock jumping, not a pause.
const LARGEST_GAP_RECORDED: u32 = 10 * SAMPLE_RATE;
/// At most this much silence is fed to the in-band detector for a gap: enough
/// to separate two presses.
const LARGEST_GAP_DETECTED: usize = 800;
/// After this long without a packet, the next one starts a new talk spurt:
/// whatever sequence number and event timestamp it carries are taken as
/// new. (Test tools replay recorded packets as they are, and a phone with
/// silence suppression may restart its numbering; neither is reordering.)
const TALK_SPURT_GAP: Duration = Duration::from_millis(250);
/// A new source address replaces the one sending until now only once that
/// one has been silent this long (symmetric RTP with some hijack protection).
const RELATCH_AFTER: Duration = Duration::from_secs(2);

/// What the receiving side needs to know of the session it belongs to.
pub(super) struct ReceiveContext<'a> {
    pub remote_known: bool,
    pub telephone_event: Option<u8>,
    pub events: &'a EventSender,
    pub counters: &'a Counters,
    pub now: Instant,
}

#[derive(Debug, Default)]
pub(super) struct ReceiveState {
    reorder: ReorderBuffer,
    dedup: EventDeduplicator,
    /// Present when in-band detection is on for this session.
    pub detector: Option<InbandDetector>,
    playout: VecDeque<i16>,
    playout_started: bool,
    /// Where the next audio packet's timestamp should be, to spot gaps.
    next_audio_timestamp: Option<u32>,
    ssrc: Option<u32>,
    pub recording: Option<Recording>,
    /// The source address packets are accepted from and sent to.
    pub latched: Option<SocketAddr>,
    latched_heard_at: Option<Instant>,
    /// The last packet, or when the remote was set or hold ended.
    pub last_activity: Option<Instant>,
    inactive_reported: bool,
    /// Scratch space for decoding, kept to avoid an allocation per packet.
    decoded: Vec<i16>,
}

impl ReceiveState {
    /// Takes one datagram that arrived from `source`.
    pub fn on_datagram(&mut self, datagram: &[u8], source: SocketAddr, context: &ReceiveContext<'_>) {
        let Ok(packet) = RtpPacket::parse(datagram) else {
            tracing::trace!(%source, "dropping a datagram that is not RTP");
            return;
        };
        if !self.accept_source(source, context) {
            return;
        }
        context.counters.packets_received.fetch_add(1, Ordering::Relaxed);
        context
            .counters
            .bytes_received
            .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
        let quiet = self
            .last_activity
            .is_some_and(|last| context.now.saturating_duration_since(last) >= TALK_SPURT_GAP);
        self.last_activity = Some(context.now);
        self.inactive_reported = false;
        if self.ssrc != Some(packet.header.ssrc) {
            // A new stream: its sequence and timestamps start afresh.
            self.ssrc = Some(packet.header.ssrc);
            self.reorder = ReorderBuffer::default();
            self.dedup.reset();
            self.next_audio_timestamp = None;
        } else if quiet {
            self.reorder = ReorderBuffer::default();
            self.dedup.reset();
        }
        self.reorder.push(&packet);
        while let Some(index) = self.reorder.next_ready() {
            let slot = &self.reorder.slots[index];
            let (payload_type, timestamp) = (slot.payload_type, slot.timestamp);
            if Some(payload_type) == context.telephone_event {
                if let Ok(event) = TelephoneEvent::parse(&slot.payload) {
                    if let Some(key) = self.dedup.accept(timestamp, &event) {
                        let _ = context.events.unbounded_send(MediaEvent::Dtmf(key));
                    }
                }
            } else if let Some(codec) = Codec::from_payload_type(payload_type) {
                self.decoded.clear();
                codec.decode(&slot.payload, &mut self.decoded);
                self.on_audio(timestamp, context);
            }
            let skipped = self.reorder.release(index);
            if skipped > 0 {
                context
                    .counters
                    .packets_lost
                    .fetch_add(u64::from(skipped), Ordering::Relaxed);
            }
        }
    }

    /// Symmetric RTP: decides whether packets from `source` are the peer's.
    fn accept_source(&mut self, source: SocketAddr, context: &ReceiveContext<'_>) -> bool {
        if !context.remote_known {
            return true;
        }
        let stale = self
            .latched_heard_at
            .is_none_or(|heard| context.now.saturating_duration_since(heard) >= RELATCH_AFTER);
        if self.latched != Some(source) {
            if self.latched.is_some() && !stale {
                tracing::debug!(%source, "dropping RTP from a second source");
                return false;
            }
            tracing::debug!(%source, "sending RTP where the peer sends from");
            self.latched = Some(source);
        }
        self.latched_heard_at = Some(context.now);
        true
    }

    /// Takes the samples in `self.decoded`, which start at `timestamp`.
    fn on_audio(&mut self, timestamp: u32, context: &ReceiveContext<'_>) {
        let gap = match self.next_audio_timestamp {
            Some(expected) => {
                let gap = timestamp.wrapping_sub(expected);
                if gap <= LARGEST_GAP_RECORDED {
                    gap as usize
                } else {
                    0
                }
            }
            None => 0,
        };
        self.next_audio_timestamp = Some(timestamp.wrapping_add(self.decoded.len() as u32));
        let mut recording_full = false;
        if let Some(recording) = &mut self.recording {
            recording.push_silence(gap);
            recording.push(&self.decoded);
            recording_full = recording.is_full();
        }
        if recording_full {
            if let Some(recording) = self.recording.take() {
                recording.finish();
            }
        }
        if let Some(detector) = &mut self.detector {
            let mut keys = Vec::new();
            if gap > 0 {
                keys.extend(detector.feed(&[0; LARGEST_GAP_DETECTED][..gap.min(LARGEST_GAP_DETECTED)]));
            }
            keys.extend(detector.feed(&self.decoded));
            for key in keys {
                let _ = context.events.unbounded_send(MediaEvent::Dtmf(key));
            }
        }
        self.playout.extend(self.decoded.iter().copied());
        if self.playout.len() > PLAYOUT_LIMIT {
            let excess = self.playout.len() - PLAYOUT_LIMIT;
            self.playout.drain(..excess);
        }
    }

    /// The 20 ms of the peer's audio for this tick, if it is sending.
    pub fn next_frame(&mut self) -> Option<Frame> {
        if !self.playout_started {
            if self.playout.len() < PLAYOUT_START {
                return None;
            }
            self.playout_started = true;
        }
        if self.playout.is_empty() {
            self.playout_started = false;
            return None;
        }
        let mut frame = [0; FRAME_SAMPLES];
        let available = self.playout.len().min(FRAME_SAMPLES);
        for (slot, sample) in frame.iter_mut().zip(self.playout.drain(..available)) {
            *slot = sample;
        }
        Some(frame)
    }

    /// Reports `Inactive` once when the peer has been silent too long.
    pub fn check_inactivity(
        &mut self,
        now: Instant,
        timeout: Duration,
        watching: bool,
        events: &EventSender,
    ) {
        if !watching || self.inactive_reported {
            return;
        }
        if let Some(last) = self.last_activity {
            if now.saturating_duration_since(last) >= timeout {
                self.inactive_reported = true;
                let _ = events.unbounded_send(MediaEvent::Inactive);
            }
        }
    }

    /// Restarts the inactivity clock and symmetric-RTP learning (new remote, end of hold).
    pub fn restart_watch(&mut self, now: Instant, forget_source: bool) {
        self.last_activity = Some(now);
        self.inactive_reported = false;
        if forget_source {
            self.latched = None;
            self.latched_heard_at = None;
        }
    }
}

/// A recording in progress.
#[derive(Debug)]
pub(super) struct Recording {
    samples: Vec<i16>,
    limit: usize,
    reply: oneshot::Sender<Vec<u8>>,
}

impl Recording {
    pub fn new(limit: Duration, reply: oneshot::Sender<Vec<u8>>) -> Recording {
        let limit =
            (limit.as_micros() * u128::from(SAMPLE_RATE) / 1_000_000).min(usize::MAX as u128) as usize;
        Recording {
            samples: Vec::new(),
            limit,
            reply,
        }
    }

    fn push(&mut self, samples: &[i16]) {
        let room = self.limit - self.samples.len();
        self.samples
            .extend_from_slice(&samples[..samples.len().min(room)]);
    }

    fn push_silence(&mut self, count: usize) {
        let room = self.limit - self.samples.len();
        self.samples.resize(self.samples.len() + count.min(room), 0);
    }

    pub fn is_full(&self) -> bool {
        self.samples.len() >= self.limit
    }

    /// Delivers the WAV file; nobody may be waiting any more, which is fine.
    pub fn finish(self) {
        let _ = self.reply.send(wav::pcm16_mono(&self.samples, SAMPLE_RATE));
    }
}

/// A packet held in the reorder buffer. Slots are reused, so their payload
/// buffers are allocated once.
#[derive(Debug, Default)]
struct Slot {
    used: bool,
    sequence: u16,
    timestamp: u32,
    payload_type: u8,
    payload: Vec<u8>,
}

/// Puts packets back in sequence order; drops duplicates and packets older
/// than what was already released; gives up on a missing packet once
/// [`REORDER_DEPTH`] later ones wait.
#[derive(Debug, Default)]
struct ReorderBuffer {
    slots: Vec<Slot>,
    /// The sequence number released next; `None` before the first packet.
    expected: Option<u16>,
}

impl ReorderBuffer {
    fn push(&mut self, packet: &RtpPacket<'_>) {
        let sequence = packet.header.sequence;
        let expected = *self.expected.get_or_insert(sequence);
        let ahead = i32::from(sequence.wrapping_sub(expected) as i16);
        if ahead.abs() > SEQUENCE_RESYNC {
            // The stream jumped: start over from this packet.
            self.slots.iter_mut().for_each(|slot| slot.used = false);
            self.expected = Some(sequence);
        } else if ahead < 0 {
            return;
        }
        if self
            .slots
            .iter()
            .any(|slot| slot.used && slot.sequence == sequence)
        {
            return;
        }
        let index = match self.slots.iter().position(|slot| !slot.used) {
            Some(index) => index,
            None => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.used = true;
        slot.sequence = sequence;
        slot.timestamp = packet.header.timestamp;
        slot.payload_type = packet.header.payload_type;
        slot.payload.clear();
        slot.payload.extend_from_slice(packet.payload);
    }

    /// The slot to hand on next, if any: the expected packet, or, when too
    /// many wait behind a lost one, the oldest waiting.
    fn next_ready(&mut self) -> Option<usize> {
        let expected = self.expected?;
        let mut waiting = 0;
        let mut oldest: Option<(u16, usize)> = None;
        for (index, slot) in self.slots.iter().enumerate().filter(|(_, slot)| slot.used) {
            if slot.sequence == expected {
                return Some(index);
            }
            waiting += 1;
            let distance = slot.sequence.wrapping_sub(expected);
            if oldest.is_none_or(|(best, _)| distance < best) {
                oldest = Some((distance, index));
            }
        }
        if waiting >= REORDER_DEPTH {
            return oldest.map(|(_, index)| index);
        }
        None
    }

    /// Hands slot `index` on; how many packets before it were given up
    /// on (lost, or too late).
    fn release(&mut self, index: usize) -> u16 {
        let Some(slot) = self.slots.get_mut(index) else {
            return 0;
        };
        slot.used = false;
        let skipped = self
            .expected
            .map_or(0, |expected| slot.sequence.wrapping_sub(expected));
        self.expected = Some(slot.sequence.wrapping_add(1));
        skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpHeader;

    fn released(order: &[u16]) -> Vec<u16> {
        released_and_lost(order).0
    }

    /// What the buffer hands on, in order, and how many it gave up on.
    fn released_and_lost(order: &[u16]) -> (Vec<u16>, u64) {
        let mut buffer = ReorderBuffer::default();
        let mut out = Vec::new();
        let mut lost = 0;
        for &sequence in order {
            let packet = RtpPacket {
                header: RtpHeader {
                    sequence,
                    ..RtpHeader::default()
                },
                extension: None,
                payload: &[],
                padding: 0,
            };
            buffer.push(&packet);
            while let Some(index) = buffer.next_ready() {
                out.push(buffer.slots[index].sequence);
                lost += u64::from(buffer.release(index));
            }
        }
        (out, lost)
    }

    #[test]
    fn reorders_and_drops_duplicates() {
        assert_eq!(released(&[10, 12, 11, 13]), vec![10, 11, 12, 13]);
        assert_eq!(released(&[10, 11, 11, 10, 12]), vec![10, 11, 12]);
        assert_eq!(released(&[65534, 0, 65535, 1]), vec![65534, 65535, 0, 1]);
    }

    #[test]
    fn gives_up_on_a_lost_packet() {
        // 11 never comes; once four wait, they are released; a late 11 is dropped.
        assert_eq!(
            released_and_lost(&[10, 12, 13, 14, 15, 11, 16]),
            (vec![10, 12, 13, 14, 15, 16], 1)
        );
        // Reordered, not lost: none counted.
        assert_eq!(released_and_lost(&[10, 12, 11, 13]).1, 0);
    }

    #[test]
    fn restarts_after_a_big_jump() {
        assert_eq!(released(&[10, 11, 30000, 30001]), vec![10, 11, 30000, 30001]);
    }
}
