//! One session as the worker sees it: its socket, its outgoing RTP stream,
//! what it plays, and its receiving half.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use std::os::fd::AsRawFd;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::receive::{Frame, ReceiveContext, ReceiveState};
use super::{Counters, EventSender, IdMap, IdSet, Played, Route};
use crate::codec::Codec;
use crate::dtmf::{self, EventPackets};
use crate::prompt::{Prompt, FRAME_DURATION, FRAME_SAMPLES};
use crate::srtp::{Protector, SrtpKeys, Unprotector, TAG_LENGTH};

/// Bytes of an RTP header without CSRCs (what `bytes_sent` leaves out).
const RTP_HEADER: usize = 12;
use crate::rtp::RtpHeader;

/// Timestamp units per packet: 20 ms at 8 kHz.
const TIMESTAMP_STEP: u32 = FRAME_SAMPLES as u32;
/// A DTMF key sounds this many packets (100 ms)...
const DTMF_TONE_PACKETS: u16 = 5;
/// ...and the next key waits this many more (60 ms), so the peer sees a pause.
const DTMF_PAUSE_PACKETS: u8 = 3;
/// The power level of sent RFC 4733 events, in -dBm0.
const DTMF_EVENT_VOLUME: u8 = 10;
/// The most datagrams read from one socket per tick; the rest wait for the next.
const READS_PER_TICK: usize = 32;

const PCMU_SILENCE: [u8; FRAME_SAMPLES] = [0xFF; FRAME_SAMPLES];
const PCMA_SILENCE: [u8; FRAME_SAMPLES] = [0xD5; FRAME_SAMPLES];

fn silence(codec: Codec) -> &'static [u8] {
    match codec {
        Codec::Pcmu => &PCMU_SILENCE,
        Codec::Pcma => &PCMA_SILENCE,
    }
}

/// Where and how to send, as negotiated.
#[derive(Clone, Copy, Debug)]
pub(super) struct Remote {
    pub address: SocketAddr,
    pub codec: Codec,
    pub telephone_event: Option<u8>,
}

/// What the worker knows of this tick, shared by every session it sends for.
pub(super) struct Tick<'a> {
    /// What each session's peer sent this tick (none from a peer that holds us).
    pub heard: &'a IdMap<Frame>,
    /// What each conference participant hears.
    pub mixed: &'a IdMap<Frame>,
    /// The sessions whose peer holds them: their bridge partners hear music.
    pub peer_held: &'a IdSet,
    /// The worker's clock: ticks since it started.
    pub clock: u64,
    /// The engine's music on hold, for sessions without music of their own.
    pub music: Option<&'a Arc<Prompt>>,
}

/// The frame of `music` the clock is at. Every session of a worker that
/// plays music sends the same frame in a tick: music costs no decoding
/// and no state per call, and a listener who comes back hears it on from
/// where the clock is, not from the start.
pub(super) fn music_frame_index(music: &Prompt, clock: u64) -> usize {
    let frames = music.frames().max(1) as u64;
    (clock % frames) as usize
}

/// A session's own music, else the engine's; none when neither has a frame.
pub(super) fn chosen_music<'a>(
    own: Option<&'a Arc<Prompt>>,
    engine: Option<&'a Arc<Prompt>>,
) -> Option<&'a Prompt> {
    own.or(engine)
        .map(|music| &**music)
        .filter(|music| music.frames() > 0)
}

/// Buffers the worker lends every session in turn, so sending allocates nothing.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    pub datagram: Vec<u8>,
    samples: Vec<i16>,
    encoded: Vec<u8>,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            datagram: vec![0; 2048],
            samples: Vec::new(),
            encoded: Vec::with_capacity(FRAME_SAMPLES),
        }
    }
}

/// A session's socket: registered with its worker's poller once the worker
/// has it, so a tick reads only sockets that have something (an idle
/// socket costs no system call); detached (read at every tick) while it
/// moves between workers, or where there is no poller.
///
/// The worker asks its poller what became readable once per tick, without
/// waiting: arriving packets never wake the worker's thread (on an
/// executor's reactor, each burst of packets did). Registered for reading
/// only: a UDP socket takes a datagram or drops it, sending never waits.
#[derive(Debug)]
enum Socket {
    Detached(UdpSocket),
    Attached {
        socket: UdpSocket,
        /// The poller said so, and it has not been read empty since.
        readable: bool,
    },
    /// Only while being switched.
    Gone,
}

impl Socket {
    fn recv_from(&mut self, buffer: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        match self {
            Socket::Detached(socket) => socket.recv_from(buffer),
            // No system call unless the poller saw something arrive.
            Socket::Attached { readable: false, .. } => Err(std::io::ErrorKind::WouldBlock.into()),
            Socket::Attached { socket, readable } => {
                let received = socket.recv_from(buffer);
                if matches!(&received, Err(error) if error.kind() == std::io::ErrorKind::WouldBlock) {
                    *readable = false;
                }
                received
            }
            Socket::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    fn send_to(&self, packet: &[u8], destination: SocketAddr) -> std::io::Result<usize> {
        match self {
            Socket::Detached(socket) | Socket::Attached { socket, .. } => socket.send_to(packet, destination),
            Socket::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

/// The outgoing RTP stream and the socket it leaves by.
#[derive(Debug)]
struct Output {
    socket: Socket,
    counters: Arc<Counters>,
    ssrc: u32,
    sequence: u16,
    /// The sampling instant of this tick's packet; moves on 160 every tick,
    /// sent or not, so a pause shows as a timestamp jump.
    timestamp: u32,
    /// Set after a tick without a packet and when a prompt starts: the next
    /// audio packet starts a talk spurt.
    marker_due: bool,
    /// Whether this tick sent a packet.
    sent_this_tick: bool,
    /// This tick's packet (one at most), made at the tick and sent at the
    /// session's slot within it (`flush`), and where it goes. Kept inline,
    /// so sending touches only this state, not buffers elsewhere.
    packet: [u8; LARGEST_PACKET],
    packet_length: usize,
    pending: Option<SocketAddr>,
    /// SRTP's sending side, when the call has keys: each packet is
    /// encrypted and tagged as it is made, so none leaves in clear.
    protector: Option<Box<Protector>>,
}

/// The longest packet a session sends: a header, 20 ms of G.711 and an
/// SRTP tag.
const LARGEST_PACKET: usize = RTP_HEADER + FRAME_SAMPLES + TAG_LENGTH;
/// The longest RTP payload a session sends.
const LARGEST_PAYLOAD: usize = FRAME_SAMPLES;

impl Output {
    fn send(
        &mut self,
        destination: Option<SocketAddr>,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
    ) {
        let Some(destination) = destination else {
            return;
        };
        let length = RTP_HEADER + payload.len();
        if payload.len() > LARGEST_PAYLOAD {
            tracing::warn!(length, "RTP payload too long to send; dropped");
            return;
        }
        // One packet a tick; should a second come, the first leaves now.
        self.flush();
        RtpHeader::write_fixed(
            marker,
            payload_type,
            self.sequence,
            timestamp,
            self.ssrc,
            &mut self.packet[..RTP_HEADER],
        );
        self.packet[RTP_HEADER..length].copy_from_slice(payload);
        self.packet_length = match &mut self.protector {
            Some(protector) => match protector.protect(&mut self.packet, length) {
                Some(protected) => protected,
                None => return,
            },
            None => length,
        };
        self.pending = Some(destination);
        self.sequence = self.sequence.wrapping_add(1);
        self.sent_this_tick = true;
    }

    /// Sends the packet this tick made, if any.
    fn flush(&mut self) {
        let Some(destination) = self.pending.take() else {
            return;
        };
        let packet = &self.packet[..self.packet_length];
        match self.socket.send_to(packet, destination) {
            Ok(_) => {
                self.counters.packets_sent.fetch_add(1, Ordering::Relaxed);
                let tag = if self.protector.is_some() { TAG_LENGTH } else { 0 };
                self.counters
                    .bytes_sent
                    .fetch_add((packet.len() - RTP_HEADER - tag) as u64, Ordering::Relaxed);
            }
            // A full send buffer drops the packet, as the network would.
            Err(error) => tracing::trace!(%destination, %error, "RTP packet not sent"),
        }
    }

    /// Sends one audio packet at this tick's timestamp.
    fn send_audio(&mut self, destination: Option<SocketAddr>, codec: Codec, payload: &[u8]) {
        let marker = std::mem::take(&mut self.marker_due);
        self.send(destination, codec.payload_type(), marker, self.timestamp, payload);
    }
}

/// A prompt being played.
#[derive(Debug)]
struct Playback {
    prompt: Arc<Prompt>,
    next_frame: usize,
    frames_played: u64,
    /// With a limit: how many frames to play, looping.
    frames_allowed: Option<u64>,
    /// The most `Played::length` can say: the limit, or the prompt's length.
    longest: Duration,
    reply: oneshot::Sender<Played>,
}

impl Playback {
    /// Moves past the frame just played; true when the prompt is done.
    fn advance(&mut self) -> bool {
        self.frames_played += 1;
        self.next_frame += 1;
        match self.frames_allowed {
            Some(allowed) => {
                if self.next_frame >= self.prompt.frames() {
                    self.next_frame = 0;
                }
                self.frames_played >= allowed
            }
            None => self.next_frame >= self.prompt.frames(),
        }
    }

    fn finish(self, completed: bool) {
        let played = FRAME_DURATION.saturating_mul(u32::try_from(self.frames_played).unwrap_or(u32::MAX));
        let _ = self.reply.send(Played {
            length: played.min(self.longest),
            completed,
        });
    }
}

/// A DTMF key being sent.
#[derive(Debug)]
enum DtmfInProgress {
    /// RFC 4733: every packet carries the timestamp of the press's start.
    Event {
        packets: EventPackets,
        payload_type: u8,
        timestamp: u32,
    },
    /// Tones in the audio, one frame per tick.
    Tone { prompt: Prompt, next_frame: usize },
}

#[derive(Debug, Default)]
struct DtmfSender {
    queue: VecDeque<char>,
    current: Option<DtmfInProgress>,
    pause_left: u8,
}

/// What the worker keeps for one session.
#[derive(Debug)]
pub(super) struct SessionState {
    pub id: u64,
    /// Which worker has it; switched by the worker that moves it.
    pub route: Arc<Route>,
    output: Output,
    /// Written by the worker; read by the session handle's `next_event`.
    events: EventSender,
    pub remote: Option<Remote>,
    pub active: bool,
    /// We hold the peer (we offered `sendonly`): it hears music instead of
    /// its bridge partner or conference.
    pub holding: bool,
    /// The peer holds us (its SDP said `sendonly` or `inactive`): nothing
    /// is sent to it, what it sends is heard by no one, and its bridge
    /// partner hears music instead.
    pub peer_held: bool,
    /// This session's own music on hold; without it, the engine's.
    pub music: Option<Arc<Prompt>>,
    /// Play music whenever there is nothing else to send (CG/PL
    /// `MediaOption("mixMOH")`), and mix it into the conference this
    /// session hosts.
    pub music_when_idle: bool,
    /// The session whose peer's audio this one sends (both point at each other).
    pub bridge: Option<u64>,
    /// The conference mixer this session is in.
    pub mixer: Option<u64>,
    playback: Option<Playback>,
    dtmf: DtmfSender,
    pub receive: ReceiveState,
    /// The call's SRTP keys, and the receiving side they make: a packet
    /// is authenticated and decrypted before anything else reads it.
    srtp: Option<(SrtpKeys, Box<Unprotector>)>,
}

fn random_u32() -> std::io::Result<u32> {
    getrandom::u32().map_err(|error| std::io::Error::other(format!("no randomness for RTP: {error}")))
}

impl SessionState {
    pub fn new(
        id: u64,
        socket: UdpSocket,
        route: Arc<Route>,
        counters: Arc<Counters>,
        events: EventSender,
    ) -> std::io::Result<SessionState> {
        // RFC 3550 §5.1: random initial sequence and timestamp make
        // known-plaintext attacks on encrypted streams harder; a random SSRC
        // avoids collisions.
        let output = Output {
            socket: Socket::Detached(socket),
            counters,
            ssrc: random_u32()?,
            sequence: random_u32()? as u16,
            timestamp: random_u32()?,
            marker_due: true,
            sent_this_tick: false,
            packet: [0; LARGEST_PACKET],
            packet_length: 0,
            pending: None,
            protector: None,
        };
        Ok(SessionState {
            id,
            route,
            output,
            events,
            remote: None,
            active: true,
            holding: false,
            peer_held: false,
            music: None,
            music_when_idle: false,
            bridge: None,
            mixer: None,
            playback: None,
            dtmf: DtmfSender::default(),
            receive: ReceiveState::default(),
            srtp: None,
        })
    }

    /// Registers the socket with the poller of the worker that now has the
    /// session, under the session's ID. Without a poller the socket is read
    /// on every tick instead.
    pub fn attach(&mut self, poller: Option<&mio::Registry>) {
        let (Some(registry), Socket::Detached(socket)) = (poller, &self.output.socket) else {
            return;
        };
        let fd = socket.as_raw_fd();
        let token = mio::Token(self.id as usize);
        match registry.register(&mut mio::unix::SourceFd(&fd), token, mio::Interest::READABLE) {
            Ok(()) => {
                if let Socket::Detached(socket) = std::mem::replace(&mut self.output.socket, Socket::Gone) {
                    // Whatever arrived before counts as readable.
                    self.output.socket = Socket::Attached {
                        socket,
                        readable: true,
                    };
                }
            }
            Err(error) => tracing::debug!(session = self.id, %error, "RTP socket read at every tick"),
        }
    }

    /// Takes the socket off this worker's poller, before the session moves.
    pub fn detach(&mut self, poller: Option<&mio::Registry>) {
        if let Socket::Attached { socket, .. } = std::mem::replace(&mut self.output.socket, Socket::Gone) {
            if let Some(registry) = poller {
                let _ = registry.deregister(&mut mio::unix::SourceFd(&socket.as_raw_fd()));
            }
            self.output.socket = Socket::Detached(socket);
        }
    }

    /// The worker's poller says the socket has something to read.
    pub fn mark_readable(&mut self) {
        if let Socket::Attached { readable, .. } = &mut self.output.socket {
            *readable = true;
        }
    }

    fn destination(&self) -> Option<SocketAddr> {
        if self.peer_held {
            return None;
        }
        let remote = self.remote.as_ref()?;
        Some(self.receive.latched.unwrap_or(remote.address))
    }

    fn codec(&self) -> Codec {
        self.remote.map_or(Codec::Pcmu, |remote| remote.codec)
    }

    pub fn play(&mut self, prompt: Arc<Prompt>, limit: Option<Duration>, reply: oneshot::Sender<Played>) {
        self.stop_playback();
        if self.bridge.is_some() {
            let _ = reply.send(Played {
                length: Duration::ZERO,
                completed: false,
            });
            return;
        }
        let frames_allowed = limit.map(|limit| limit.as_micros().div_ceil(FRAME_DURATION.as_micros()) as u64);
        if prompt.frames() == 0 || frames_allowed == Some(0) {
            let _ = reply.send(Played {
                length: Duration::ZERO,
                completed: true,
            });
            return;
        }
        let longest = limit.unwrap_or_else(|| prompt.duration());
        self.output.marker_due = true;
        self.playback = Some(Playback {
            prompt,
            next_frame: 0,
            frames_played: 0,
            frames_allowed,
            longest,
            reply,
        });
    }

    /// Ends the prompt, not completed.
    pub fn stop_playback(&mut self) {
        if let Some(playback) = self.playback.take() {
            playback.finish(false);
        }
    }

    pub fn stop_recording(&mut self) {
        if let Some(recording) = self.receive.recording.take() {
            recording.finish();
        }
    }

    pub fn queue_dtmf(&mut self, symbol: char) {
        if dtmf::event_for_symbol(symbol).is_some() {
            self.dtmf.queue.push_back(symbol);
        } else {
            tracing::warn!(session = self.id, ?symbol, "not a DTMF symbol; not sent");
        }
    }

    /// SRTP on with these keys, or off. The keys already in force keep
    /// their state (rollover counters, replay window).
    pub fn set_srtp(&mut self, keys: Option<SrtpKeys>) {
        if self.srtp.as_ref().map(|(current, _)| current) == keys.as_ref() {
            return;
        }
        self.output.protector = keys.as_ref().map(|keys| Box::new(Protector::new(&keys.send)));
        self.srtp = keys.map(|keys| {
            let unprotector = Box::new(Unprotector::new(&keys.receive));
            (keys, unprotector)
        });
    }

    /// Reads what arrived on the socket.
    pub fn receive(&mut self, now: Instant, datagram: &mut [u8]) {
        let context = ReceiveContext {
            remote_known: self.remote.is_some(),
            telephone_event: self.remote.and_then(|remote| remote.telephone_event),
            events: &self.events,
            counters: &self.output.counters,
            now,
        };
        for _ in 0..READS_PER_TICK {
            match self.output.socket.recv_from(datagram) {
                Ok((length, source)) => {
                    let length = match &mut self.srtp {
                        Some((_, unprotector)) => {
                            // RTCP multiplexed on the port (RFC 5761 §4:
                            // payload types 64-95 with the marker) is not
                            // read, and not counted as refused.
                            if length >= 2 && (192..=223).contains(&datagram[1]) {
                                continue;
                            }
                            match unprotector.unprotect(&mut datagram[..length]) {
                                Ok(plain) => plain,
                                Err(error) => {
                                    tracing::trace!(session = self.id, %source, %error, "SRTP packet refused");
                                    self.output.counters.srtp_refused.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                            }
                        }
                        None => length,
                    };
                    self.receive.on_datagram(&datagram[..length], source, &context);
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(error) => {
                    // ICMP errors from earlier sends can surface here; they
                    // say nothing about what arrives.
                    tracing::trace!(session = self.id, %error, "RTP receive error");
                }
            }
        }
    }

    pub fn check_inactivity(&mut self, now: Instant, timeout: Duration) {
        // On hold, either way, the peer may well send nothing.
        let watching = self.remote.is_some() && !self.holding && !self.peer_held;
        self.receive
            .check_inactivity(now, timeout, watching, &self.events);
    }

    /// Whether this tick made packets not sent yet.
    pub fn has_queued(&self) -> bool {
        self.output.pending.is_some()
    }

    /// Sends what this tick made (at the session's slot in the tick).
    pub fn flush(&mut self) {
        self.output.flush();
    }

    /// Makes this tick's packet and moves the stream on by 20 ms; `flush`
    /// sends it.
    pub fn send_tick(&mut self, tick: &Tick<'_>, scratch: &mut Scratch) {
        self.output.sent_this_tick = false;
        let destination = self.destination();
        let codec = self.codec();
        // A peer we hold hears neither its bridge partner nor the
        // conference: its own prompt if one plays, else music.
        let bridge = self.bridge.filter(|_| !self.holding);
        let mixer = self.mixer.filter(|_| !self.holding);
        if !self.send_dtmf(destination, codec) {
            if let Some(partner) = bridge {
                if tick.peer_held.contains(&partner) {
                    // The partner's phone put the call on hold.
                    if !self.send_music(destination, codec, tick) {
                        self.send_silence(destination, codec);
                    }
                } else if let Some(frame) = tick.heard.get(&partner) {
                    scratch.encoded.clear();
                    codec.encode(frame, &mut scratch.encoded);
                    self.output.send_audio(destination, codec, &scratch.encoded);
                } else {
                    // Nothing from the partner this tick (a gap, silence
                    // suppression): silence, not a burst of music.
                    self.send_silence(destination, codec);
                }
            } else if mixer.is_some() {
                self.send_mix(destination, codec, tick.mixed.get(&self.id), scratch);
            } else if let Some(playback) = &mut self.playback {
                let frame = playback.prompt.frame(codec, playback.next_frame);
                self.output.send_audio(destination, codec, frame);
                if playback.advance() {
                    self.complete_playback();
                }
            } else {
                self.send_idle(destination, codec, tick);
            }
        }
        if !self.output.sent_this_tick {
            self.output.marker_due = true;
        }
        self.output.timestamp = self.output.timestamp.wrapping_add(TIMESTAMP_STEP);
    }

    fn complete_playback(&mut self) {
        if let Some(playback) = self.playback.take() {
            playback.finish(true);
        }
    }

    fn send_music(&mut self, destination: Option<SocketAddr>, codec: Codec, tick: &Tick<'_>) -> bool {
        // Borrowed, not cloned: no reference count moves per packet.
        let Some(music) = chosen_music(self.music.as_ref(), tick.music) else {
            return false;
        };
        let frame = music.frame(codec, music_frame_index(music, tick.clock));
        self.output.send_audio(destination, codec, frame);
        true
    }

    /// Nothing else to send: music on hold or when asked to
    /// (`music_when_idle`), else comfort silence.
    fn send_idle(&mut self, destination: Option<SocketAddr>, codec: Codec, tick: &Tick<'_>) {
        let wants_music = self.holding || self.music_when_idle;
        if !(wants_music && self.send_music(destination, codec, tick)) {
            self.send_silence(destination, codec);
        }
    }

    /// Comfort silence, while "active".
    fn send_silence(&mut self, destination: Option<SocketAddr>, codec: Codec) {
        if self.active {
            self.output.send_audio(destination, codec, silence(codec));
        }
    }

    /// A conference participant hears the mix, and its own prompt on top.
    fn send_mix(
        &mut self,
        destination: Option<SocketAddr>,
        codec: Codec,
        mix: Option<&Frame>,
        scratch: &mut Scratch,
    ) {
        scratch.samples.clear();
        scratch
            .samples
            .extend_from_slice(mix.unwrap_or(&[0; FRAME_SAMPLES]));
        let mut finished = false;
        if let Some(playback) = &mut self.playback {
            let prompt_samples = playback.prompt.frame_samples(playback.next_frame);
            for (sample, &extra) in scratch.samples.iter_mut().zip(prompt_samples) {
                *sample = sample.saturating_add(extra);
            }
            finished = playback.advance();
        }
        if finished {
            self.complete_playback();
        }
        scratch.encoded.clear();
        codec.encode(&scratch.samples, &mut scratch.encoded);
        self.output.send_audio(destination, codec, &scratch.encoded);
    }

    /// Sends the next DTMF packet, if a key is being sent; the prompt waits meanwhile.
    fn send_dtmf(&mut self, destination: Option<SocketAddr>, codec: Codec) -> bool {
        if self.dtmf.current.is_none() {
            if self.dtmf.pause_left > 0 {
                self.dtmf.pause_left -= 1;
                return false;
            }
            let Some(symbol) = self.dtmf.queue.pop_front() else {
                return false;
            };
            self.dtmf.current = self.start_dtmf(symbol);
        }
        let finished = match &mut self.dtmf.current {
            None => return false,
            Some(DtmfInProgress::Event {
                packets,
                payload_type,
                timestamp,
            }) => {
                let Some(packet) = packets.next() else {
                    self.dtmf.current = None;
                    return false;
                };
                let payload = packet.event.to_bytes();
                self.output
                    .send(destination, *payload_type, packet.marker, *timestamp, &payload);
                packets.remaining() == 0
            }
            Some(DtmfInProgress::Tone { prompt, next_frame }) => {
                let frame = prompt.frame(codec, *next_frame);
                self.output.send_audio(destination, codec, frame);
                *next_frame += 1;
                *next_frame >= prompt.frames()
            }
        };
        if finished {
            self.dtmf.current = None;
            self.dtmf.pause_left = DTMF_PAUSE_PACKETS;
        }
        true
    }

    fn start_dtmf(&self, symbol: char) -> Option<DtmfInProgress> {
        let event = dtmf::event_for_symbol(symbol)?;
        match self.remote.and_then(|remote| remote.telephone_event) {
            Some(payload_type) => Some(DtmfInProgress::Event {
                packets: EventPackets::new(event, DTMF_EVENT_VOLUME, DTMF_TONE_PACKETS),
                payload_type,
                timestamp: self.output.timestamp,
            }),
            None => {
                let (row, column) = dtmf::frequencies_for_symbol(symbol)?;
                let length = FRAME_DURATION * u32::from(DTMF_TONE_PACKETS);
                Some(DtmfInProgress::Tone {
                    prompt: Prompt::tone(&[row, column], None, length),
                    next_frame: 0,
                })
            }
        }
    }

    /// The session is going away: whoever waits hears how things ended.
    /// The packet this tick made leaves now rather than in its slot: a
    /// call hung up as its prompt ends still gets the prompt's last frame.
    pub fn close(mut self) {
        self.output.flush();
        self.stop_playback();
        self.stop_recording();
    }
}
