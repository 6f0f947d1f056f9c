//! The media engine: workers that pace RTP for every call.
//!
//! [`MediaEngine::start`] runs `workers` workers (tasks on the current
//! tokio runtime; [`MediaEngine::start_threads`]: a thread each), each with
//! one interval for all of its sessions. Each tick a worker reads the
//! sockets of its sessions that are readable, runs its conference mixers,
//! then makes each session's next packet: a DTMF packet, the bridged
//! partner's audio, the conference mix, a prompt frame, or comfort
//! silence. A worker owns all of its sessions' state; a [`MediaSession`]
//! is a handle that sends it commands over a channel and reads its events,
//! so nothing is locked on the packet path.
//!
//! A new session goes to the worker with the fewest sessions, or next to a
//! session it will likely be bridged with. Sessions that are bridged or
//! mixed together must be on one worker: bridging or mixing sessions of
//! two workers first moves one (its state and socket) to the other's
//! (`Command::Gather`). Each worker measures how late its slots are and how
//! busy it is; the
//! engine's [`MediaEngine::lateness`] and [`MediaEngine::busy_percent`]
//! are what admission control reads.
//!
//! What a session sends, in order of precedence, each tick:
//! 1. a DTMF key being sent ([`MediaSession::send_dtmf`]),
//! 2. when bridged, what the partner's peer sent (prompts are refused while
//!    bridged), or music on hold while the partner's peer holds the call,
//! 3. when in a conference, the mix of the others (plus its own prompt, if playing),
//! 4. its prompt,
//! 5. music on hold, while it holds its peer ([`MediaSession::hold`]: a
//!    peer on hold hears neither its bridge partner nor the conference) or
//!    when asked to play music when idle ([`MediaSession::music_when_idle`]),
//! 6. silence, while "active" (the default once the remote is known): phones
//!    and NATs expect a continuous stream; [`MediaSession::set_active`] turns it off.
//!
//! Nothing is sent before [`MediaSession::set_remote`] or while the peer
//! holds the call ([`MediaSession::peer_hold`]), but prompts keep playing
//! (their time passes) so a task waiting for one is not stuck.
//!
//! Music on hold comes from the worker's clock, not from each call: a
//! worker counts its ticks, and every session of it that plays music
//! sends frame `tick % frames` of it, already encoded (a [`Prompt`]). So
//! music costs no decoding and no state per call, and a prompt that
//! interrupts it leaves it where the clock has gone on to. The music is
//! the session's own ([`MediaSession::set_music`]) or else the engine's
//! ([`MediaEngine::set_music`]).

#[doc(hidden)]
pub mod fuzzing;
mod mixer;
mod receive;
mod session;
mod worker;

/// A map by session ID, hashed by one multiplication: the maps on the
/// packet path are looked up for every session every tick, and the
/// standard hasher (built to resist chosen keys, which these internal IDs
/// are not) costs more than the lookup.
type IdMap<V> = std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

/// A set of session IDs, hashed as [`IdMap`] is.
type IdSet = std::collections::HashSet<u64, std::hash::BuildHasherDefault<IdHasher>>;

#[derive(Clone, Copy, Debug, Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        // Fibonacci hashing: the high bits, which the table uses, vary
        // with every bit of the ID.
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::codec::Codec;
use crate::prompt::Prompt;
use worker::{Command, JoinKind, SessionRef};

/// How the engine treats every session.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    /// A session whose peer sends no RTP this long after the remote was set
    /// reports [`MediaEvent::Inactive`] (the peer vanished). Default 30 s.
    pub inactivity_timeout: Duration,
    /// Detect DTMF tones in the audio when the peer did not negotiate
    /// telephone-events. Default true.
    pub inband_dtmf: bool,
    /// How many workers share the sessions. Default 1.
    pub workers: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            inactivity_timeout: Duration::from_secs(30),
            inband_dtmf: true,
            workers: 1,
        }
    }
}

/// What a session tells its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// A key pressed by the peer, by RFC 4733 or in-band; once per press.
    Dtmf(char),
    /// No RTP for the inactivity timeout; reported once until RTP flows again.
    Inactive,
}

/// How a prompt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Played {
    /// How long it played (at most the limit, or the prompt's length).
    pub length: Duration,
    /// False when stopped, replaced by a newer prompt, refused or closed.
    pub completed: bool,
}

/// Conference settings for one participant (CG/PL `MuteMixer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MuteMode {
    /// `true`: the others do not hear this participant; `false`: they do again.
    Muted(bool),
    /// Marks the participant special (see `HearsSpecial`).
    Special,
    /// The participant hears only the special participants.
    HearsSpecial,
    /// The participant hears no one.
    HearsMute,
    /// The participant hears everyone again.
    HearsNormal,
}

/// A session's events, for its task. (A light queue: a call holds it for
/// its whole life and it carries a few events.)
#[derive(Debug)]
pub struct MediaEvents(futures_channel::mpsc::UnboundedReceiver<MediaEvent>);

impl MediaEvents {
    /// The next event; `None` once the session is closed.
    pub async fn recv(&mut self) -> Option<MediaEvent> {
        use futures_core::Stream;
        std::future::poll_fn(|context| std::pin::Pin::new(&mut self.0).poll_next(context)).await
    }
}

/// Where a session's worker sends its events.
type EventSender = futures_channel::mpsc::UnboundedSender<MediaEvent>;

/// Packet counters of one session, for tests and statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Packets handed to the socket.
    pub packets_sent: u64,
    /// RTP payload bytes, headers not counted.
    pub bytes_sent: u64,
    /// Packets accepted (well-formed, from the peer).
    pub packets_received: u64,
    /// RTP payload bytes of the accepted packets.
    pub bytes_received: u64,
    /// Packets the peer's sequence numbers say were sent and never came
    /// (or came too late to be played).
    pub packets_lost: u64,
    /// SRTP packets refused: failed authentication, replayed, or too short.
    pub srtp_refused: u64,
}

/// Written by the worker, read by the session handle.
#[derive(Debug, Default)]
struct Counters {
    packets_sent: AtomicU64,
    bytes_sent: AtomicU64,
    packets_received: AtomicU64,
    bytes_received: AtomicU64,
    packets_lost: AtomicU64,
    srtp_refused: AtomicU64,
}

/// The engine's reach into one worker.
#[derive(Debug)]
struct WorkerLink {
    commands: mpsc::UnboundedSender<Command>,
    /// Sessions on the worker: written by the worker, read to place new ones.
    sessions: AtomicUsize,
    /// The 99th percentile of the worker's tick lateness over the last
    /// second, in µs (0 while it has no session). Written by the worker.
    lateness_micros: AtomicU64,
    /// The share of the last second the worker spent on its slots, in
    /// thousandths. Written by the worker.
    busy_permille: AtomicU64,
    /// Slots since the worker started, by lateness (see
    /// [`LATENESS_BUCKETS`]), and their lateness added up, in µs.
    lateness_buckets: [AtomicU64; LATENESS_BUCKETS.len()],
    lateness_sum_micros: AtomicU64,
}

/// The upper bounds of the lateness histogram, in µs; the last takes the
/// rest.
pub const LATENESS_BUCKETS: [u64; 10] = [
    100,
    250,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    u64::MAX,
];

/// How late the media clock's slots have been since the engine started,
/// over every worker.
#[derive(Clone, Debug, Default)]
pub struct LatenessHistogram {
    /// (upper bound in seconds, slots late by no more, counted once) for
    /// each of [`LATENESS_BUCKETS`]; the last bound is `f64::MAX`.
    pub buckets: Vec<(f64, u64)>,
    /// All the slots' lateness, in seconds.
    pub sum_seconds: f64,
    pub count: u64,
}

/// Shared by every handle of one engine. Workers hold it weakly, so the
/// workers stop once every engine and session handle is dropped.
#[derive(Debug)]
struct EngineShared {
    /// Incremented by `open`, decremented when a session handle is dropped.
    open_sessions: AtomicUsize,
    next_session_id: AtomicU64,
    workers: Box<[WorkerLink]>,
}

/// Which worker a session is on. Locked by a handle while it sends a
/// command, and by the worker that moves the session while it switches it,
/// so no command is left behind on the old worker.
#[derive(Debug)]
struct Route(Mutex<usize>);

impl Route {
    fn worker(&self) -> usize {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The media engine: a handle to the workers that pace every session.
#[derive(Clone, Debug)]
pub struct MediaEngine {
    shared: Arc<EngineShared>,
}

impl MediaEngine {
    /// Starts `config.workers` workers as tasks on the current tokio
    /// runtime (tests run them on a paused clock). The workers stop when
    /// the engine and all its sessions are dropped.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn start(config: MediaConfig) -> MediaEngine {
        let (engine, receivers) = MediaEngine::links(config.workers);
        for (index, receiver) in receivers.into_iter().enumerate() {
            tokio::spawn(worker::run(
                config.clone(),
                index,
                Arc::downgrade(&engine.shared),
                receiver,
            ));
        }
        engine
    }

    /// Starts `config.workers` workers, each on a thread of its own with its
    /// own clock (`pbxd-media-N`).
    pub fn start_threads(config: MediaConfig) -> std::io::Result<MediaEngine> {
        let (engine, receivers) = MediaEngine::links(config.workers);
        for (index, receiver) in receivers.into_iter().enumerate() {
            let executor = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let config = config.clone();
            let shared = Arc::downgrade(&engine.shared);
            std::thread::Builder::new()
                .name(format!("pbxd-media-{index}"))
                .spawn(move || executor.block_on(worker::run(config, index, shared, receiver)))?;
        }
        Ok(engine)
    }

    fn links(workers: usize) -> (MediaEngine, Vec<mpsc::UnboundedReceiver<Command>>) {
        let (links, receivers): (Vec<_>, Vec<_>) = (0..workers.max(1))
            .map(|_| {
                let (commands, receiver) = mpsc::unbounded_channel();
                let link = WorkerLink {
                    commands,
                    sessions: AtomicUsize::new(0),
                    lateness_micros: AtomicU64::new(0),
                    busy_permille: AtomicU64::new(0),
                    lateness_buckets: Default::default(),
                    lateness_sum_micros: AtomicU64::new(0),
                };
                (link, receiver)
            })
            .unzip();
        let shared = Arc::new(EngineShared {
            open_sessions: AtomicUsize::new(0),
            next_session_id: AtomicU64::new(0),
            workers: links.into_boxed_slice(),
        });
        (MediaEngine { shared }, receivers)
    }

    /// Opens a session: a UDP socket on `ip`, port chosen by the OS (even if
    /// one comes in a few tries, as RTP custom has it), on the worker with
    /// the fewest sessions.
    pub async fn open(&self, ip: IpAddr) -> std::io::Result<MediaSession> {
        self.open_near(ip, None).await
    }

    /// Opens a session on the worker of `near` (a session it will likely
    /// be bridged with), or on the least busy one.
    pub async fn open_near(&self, ip: IpAddr, near: Option<&MediaSession>) -> std::io::Result<MediaSession> {
        let socket = bind_preferring_even_port(ip)?;
        socket.set_nonblocking(true)?;
        let local_addr = socket.local_addr()?;
        let id = self.shared.next_session_id.fetch_add(1, Ordering::Relaxed) + 1;
        let counters = Arc::new(Counters::default());
        let (events_sender, events) = futures_channel::mpsc::unbounded();
        let worker = match near {
            Some(session) => session.route.worker(),
            None => self.least_busy_worker(),
        };
        let route = Arc::new(Route(Mutex::new(worker)));
        let state = session::SessionState::new(id, socket, route.clone(), counters.clone(), events_sender)?;
        // Counted now, so that sessions opened together spread.
        self.shared.workers[worker]
            .sessions
            .fetch_add(1, Ordering::Relaxed);
        self.shared.workers[worker]
            .commands
            .send(Command::Open(Box::new(state)))
            .map_err(|_| std::io::Error::other("the media engine has stopped"))?;
        self.shared.open_sessions.fetch_add(1, Ordering::Relaxed);
        Ok(MediaSession {
            id,
            local_addr,
            route,
            events: Mutex::new(Some(MediaEvents(events))),
            counters,
            shared: self.shared.clone(),
        })
    }

    /// The music on hold of every session that has none of its own
    /// (`None`: silence). Each worker plays it from its own clock.
    pub fn set_music(&self, music: Option<Arc<Prompt>>) {
        for link in self.shared.workers.iter() {
            let _ = link.commands.send(Command::EngineMusic(music.clone()));
        }
    }

    fn least_busy_worker(&self) -> usize {
        self.shared
            .workers
            .iter()
            .enumerate()
            .min_by_key(|(_, link)| link.sessions.load(Ordering::Relaxed))
            .map_or(0, |(index, _)| index)
    }

    /// How many sessions are open (handles not yet dropped).
    pub fn open_sessions(&self) -> usize {
        self.shared.open_sessions.load(Ordering::Relaxed)
    }

    /// How many workers there are.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// Sessions on each worker, in worker order.
    pub fn sessions_per_worker(&self) -> Vec<usize> {
        self.shared
            .workers
            .iter()
            .map(|link| link.sessions.load(Ordering::Relaxed))
            .collect()
    }

    /// How late the media clock's slots have been since the start, over
    /// every worker (windows of a second, added as each ends).
    pub fn lateness_histogram(&self) -> LatenessHistogram {
        let mut histogram = LatenessHistogram {
            buckets: LATENESS_BUCKETS
                .iter()
                .map(|&bound| {
                    let seconds = if bound == u64::MAX {
                        f64::MAX
                    } else {
                        bound as f64 / 1e6
                    };
                    (seconds, 0)
                })
                .collect(),
            ..LatenessHistogram::default()
        };
        for link in self.shared.workers.iter() {
            for (bucket, count) in histogram.buckets.iter_mut().zip(&link.lateness_buckets) {
                bucket.1 += count.load(Ordering::Relaxed);
            }
            histogram.sum_seconds += link.lateness_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        }
        histogram.count = histogram.buckets.iter().map(|(_, count)| count).sum();
        histogram
    }

    /// How late the latest clock runs: the highest of the workers' 99th
    /// percentile of tick lateness over the last second.
    pub fn lateness(&self) -> Duration {
        let micros = self
            .shared
            .workers
            .iter()
            .map(|link| link.lateness_micros.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        Duration::from_micros(micros)
    }

    /// How busy the busiest worker was over the last second: the share of
    /// its time spent sending and receiving, in per cent.
    pub fn busy_percent(&self) -> u64 {
        self.shared
            .workers
            .iter()
            .map(|link| link.busy_permille.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
            / 10
    }
}

fn bind_preferring_even_port(ip: IpAddr) -> std::io::Result<UdpSocket> {
    let mut socket = UdpSocket::bind(SocketAddr::new(ip, 0))?;
    for _ in 0..4 {
        if socket.local_addr()?.port() % 2 == 0 {
            break;
        }
        socket = UdpSocket::bind(SocketAddr::new(ip, 0))?;
    }
    Ok(socket)
}

/// One call leg's media: a socket and what the worker does with it.
/// Dropping it closes the socket: a prompt playing ends (not completed), a
/// recording delivers what it has, bridges and conferences let go of it.
#[derive(Debug)]
pub struct MediaSession {
    id: u64,
    local_addr: SocketAddr,
    route: Arc<Route>,
    /// Written by the worker; read by `next_event`, or taken out by
    /// `take_events` when the session is shared behind an `Arc`. The lock is
    /// only taken by `take_events`; `next_event` has `&mut self`.
    events: Mutex<Option<MediaEvents>>,
    counters: Arc<Counters>,
    shared: Arc<EngineShared>,
}

impl MediaSession {
    /// Unique within its engine.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The address to put in SDP.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn command(&self, command: Command) {
        // The route stays locked while sending, so a worker moving this
        // session finds every command sent before the move in its queue.
        // The worker is gone only when the runtime shuts down; then there is
        // no one left to care, and oneshot senders inside are dropped.
        let worker = self.route.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(link) = self.shared.workers.get(*worker) {
            let _ = link.commands.send(command);
        }
    }

    /// Where to send and how, as SDP negotiated. `telephone_event` is the
    /// RFC 4733 payload type, if negotiated. Symmetric RTP: the first packets
    /// from the peer decide where to send from then on (a phone behind NAT);
    /// another source takes over only after the first is silent for 2 s.
    /// Calling it again (re-INVITE) keeps the stream's SSRC and sequence.
    pub fn set_remote(&self, remote: SocketAddr, codec: Codec, telephone_event: Option<u8>) {
        self.command(Command::SetRemote {
            id: self.id,
            remote,
            codec,
            telephone_event,
        });
    }

    /// Protects this session's RTP with SRTP (RFC 3711, SDES keys), or
    /// stops (`None`). Takes effect before a `set_remote` called after it:
    /// call it first, and no packet leaves in clear. Once on, a received
    /// packet that fails authentication (or is replayed) is dropped and
    /// counted (`SessionStats::srtp_refused`). The same keys again (a
    /// re-INVITE) keep the streams' rollover counters and replay windows.
    pub fn set_srtp(&self, keys: Option<crate::srtp::SrtpKeys>) {
        self.command(Command::Srtp { id: self.id, keys });
    }

    /// Whether to send silence when nothing else is sent (default true).
    pub fn set_active(&self, active: bool) {
        self.command(Command::SetActive { id: self.id, active });
    }

    /// Plays `prompt`; with a `limit`, loops it until the limit (a limit
    /// shorter than the prompt cuts it). The receiver learns how long it played
    /// and whether it completed; `stop()`, a newer play, a bridge or closing
    /// end it early. Refused (not completed, length 0) while bridged.
    pub fn play(&self, prompt: Arc<Prompt>, limit: Option<Duration>) -> oneshot::Receiver<Played> {
        let (reply, receiver) = oneshot::channel();
        self.command(Command::Play {
            id: self.id,
            prompt,
            limit,
            reply,
        });
        receiver
    }

    /// Stops the prompt and the recording.
    pub fn stop(&self) {
        self.command(Command::Stop { id: self.id });
    }

    /// Records what the peer sends, up to `limit`; the receiver gets a WAV
    /// file (8 kHz 16-bit mono) when the limit is reached, or on `stop()`, a
    /// newer `record` or close. Gaps in the peer's timestamps (silence
    /// suppression) are recorded as silence; time when nothing at all arrives is not.
    pub fn record(&self, limit: Duration) -> oneshot::Receiver<Vec<u8>> {
        let (reply, receiver) = oneshot::channel();
        self.command(Command::Record {
            id: self.id,
            limit,
            reply,
        });
        receiver
    }

    /// Sends one DTMF key (`0-9 * # A-D`): RFC 4733 events if negotiated,
    /// else tones in the audio. Takes about 100 ms, plus 60 ms before the next
    /// key; keys queue. Other symbols are ignored.
    pub fn send_dtmf(&self, symbol: char) {
        self.command(Command::SendDtmf { id: self.id, symbol });
    }

    /// Media bridge: what this session receives is sent to `other`'s peer and
    /// vice versa, transcoded if needed, with each session's own SSRC,
    /// sequence and timestamps so each peer sees one continuous stream. `None`
    /// undoes it for both. Bridging stops prompts and leaves conferences.
    pub fn bridge(&self, other: Option<&MediaSession>) {
        match other {
            None => self.command(Command::Unbridge { id: self.id }),
            Some(other) => self.command(Command::Join {
                kind: JoinKind::Bridge,
                first: self.reference(),
                second: other.reference(),
                hops: 0,
            }),
        }
    }

    fn reference(&self) -> SessionRef {
        SessionRef {
            id: self.id,
            route: self.route.clone(),
        }
    }

    /// Conference: adds `other` to this session's mixer (made on first use;
    /// this session is in it too). Every participant hears the sum of the
    /// others. A session is in one mixer at most; attaching moves it.
    pub fn mixer_attach(&self, other: &MediaSession) {
        self.command(Command::Join {
            kind: JoinKind::Mix,
            first: self.reference(),
            second: other.reference(),
            hops: 0,
        });
    }

    /// Takes the participant `other_id` out of this session's mixer.
    pub fn mixer_detach(&self, other_id: u64) {
        self.command(Command::MixerDetach {
            id: self.id,
            other: other_id,
        });
    }

    /// Changes how the participant `other_id` (this session's own id
    /// included) is heard and hears, in this session's mixer.
    pub fn mixer_mute(&self, other_id: u64, mode: MuteMode) {
        self.command(Command::MixerMute {
            id: self.id,
            other: other_id,
            mode,
        });
    }

    /// We hold the peer (`true`; SIP: we offered `sendonly`) or let it
    /// go (`false`). Held, the peer hears music on hold instead of its
    /// bridge partner or conference (a prompt still plays over it). The
    /// peer may stay silent meanwhile, so inactivity is not reported.
    pub fn hold(&self, on: bool) {
        self.command(Command::Hold { id: self.id, on });
    }

    /// The peer holds us (`true`; SIP: its SDP said `sendonly` or
    /// `inactive`) or no longer (`false`). Meanwhile nothing is sent to
    /// it, no one hears what it sends (a conference gets nothing from it),
    /// its bridge partner hears music on hold, and inactivity is not
    /// reported.
    pub fn peer_hold(&self, on: bool) {
        self.command(Command::PeerHold { id: self.id, on });
    }

    /// This session's own music on hold, over the engine's; `None` goes
    /// back to the engine's.
    pub fn set_music(&self, music: Option<Arc<Prompt>>) {
        self.command(Command::Music { id: self.id, music });
    }

    /// Whether to play music on hold whenever there is nothing else to
    /// send (no prompt, no bridge); in a conference this session hosts
    /// (its mixer), the music is mixed into what everyone hears. Off by
    /// default.
    pub fn music_when_idle(&self, on: bool) {
        self.command(Command::MusicWhenIdle { id: self.id, on });
    }

    /// The next thing that happened; `None` once the engine has stopped
    /// (or the events were taken by `take_events`).
    pub async fn next_event(&mut self) -> Option<MediaEvent> {
        let events = self.events.get_mut().unwrap_or_else(PoisonError::into_inner);
        match events {
            Some(receiver) => receiver.recv().await,
            None => None,
        }
    }

    /// Takes the event queue out of the session, for a session shared behind
    /// an `Arc` (where `next_event`'s `&mut self` is not available). Only the
    /// first call gets it; afterwards `next_event` returns `None`.
    pub fn take_events(&self) -> Option<MediaEvents> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Packets and bytes sent and received so far.
    pub fn stats(&self) -> SessionStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SessionStats {
            packets_sent: read(&self.counters.packets_sent),
            bytes_sent: read(&self.counters.bytes_sent),
            packets_received: read(&self.counters.packets_received),
            bytes_received: read(&self.counters.bytes_received),
            packets_lost: read(&self.counters.packets_lost),
            srtp_refused: read(&self.counters.srtp_refused),
        }
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        self.shared.open_sessions.fetch_sub(1, Ordering::Relaxed);
        self.command(Command::Close { id: self.id });
    }
}
