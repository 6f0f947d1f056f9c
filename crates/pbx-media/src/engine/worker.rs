//! The worker: one task, one 20 ms interval, every session.
//!
//! Commands from session handles are applied as they come, between ticks;
//! packets move only on ticks. The worker owns every session's state, so
//! nothing on the packet path takes a lock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use super::mixer::Mixers;
use super::receive::{Frame, Recording};
use super::session::{Remote, Scratch, SessionState};
use super::{MediaConfig, MuteMode, Played};
use crate::codec::Codec;
use crate::dtmf::InbandDetector;
use crate::prompt::{Prompt, FRAME_DURATION};

/// What a session handle asks of the worker.
#[derive(Debug)]
pub(super) enum Command {
    Open(Box<SessionState>),
    Close {
        id: u64,
    },
    SetRemote {
        id: u64,
        remote: SocketAddr,
        codec: Codec,
        telephone_event: Option<u8>,
    },
    SetActive {
        id: u64,
        active: bool,
    },
    Play {
        id: u64,
        prompt: Arc<Prompt>,
        limit: Option<Duration>,
        reply: oneshot::Sender<Played>,
    },
    Stop {
        id: u64,
    },
    Record {
        id: u64,
        limit: Duration,
        reply: oneshot::Sender<Vec<u8>>,
    },
    SendDtmf {
        id: u64,
        symbol: char,
    },
    Bridge {
        id: u64,
        other: Option<u64>,
    },
    MixerAttach {
        id: u64,
        other: u64,
    },
    MixerDetach {
        id: u64,
        other: u64,
    },
    MixerMute {
        id: u64,
        other: u64,
        mode: MuteMode,
    },
    Hold {
        id: u64,
        on: bool,
    },
}

/// How late a tick may be and still be made up (five frames).
const LONGEST_CATCH_UP: std::time::Duration = std::time::Duration::from_millis(100);

/// Each 20 ms tick is cut into this many slots. Every stream's packets are
/// made at the start of the tick and sent in the stream's own slot (its
/// session ID decides which): a thousand streams are not sent all at
/// once, one after the other, but a hundred at a time every 2 ms, each
/// stream always at the same point of the tick, so it keeps its 20 ms grid.
const SLOTS: u32 = 10;

/// Runs until every engine and session handle is dropped.
pub(super) async fn run(config: MediaConfig, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut worker = Worker::new(config);
    let mut ticks = tokio::time::interval(FRAME_DURATION / SLOTS);
    let mut slot = 0;
    // A tick that comes late is made up at once, so every stream stays on
    // its 20 ms grid (a receiver's jitter buffer takes two packets close
    // together; it cannot take a stream that slipped a frame for good).
    // After a long stall, though, a burst would flood the peers: then the
    // grid starts again from now and the missed packets are not sent.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    loop {
        // With no session the clock stops: an idle pbxd does not wake.
        let idle = worker.sessions.is_empty();
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                Some(command) => {
                    worker.apply(command);
                    if idle && !worker.sessions.is_empty() {
                        ticks.reset();
                        slot = 0;
                    }
                }
                None => break,
            },
            scheduled = ticks.tick(), if !idle => {
                let now = Instant::now();
                if now.saturating_duration_since(scheduled) > LONGEST_CATCH_UP {
                    ticks.reset();
                }
                if slot == 0 {
                    worker.tick(now);
                }
                worker.flush(slot);
                slot = (slot + 1) % SLOTS;
            }
        }
    }
    for (_, session) in worker.sessions.drain() {
        session.close();
    }
}

struct Worker {
    config: MediaConfig,
    sessions: HashMap<u64, SessionState>,
    mixers: Mixers,
    /// What each session's peer sent this tick (filled then read within a tick).
    heard: HashMap<u64, Frame>,
    /// What each conference participant hears this tick.
    mixed: HashMap<u64, Frame>,
    scratch: Scratch,
    /// The sessions with packets to send, by slot of the tick.
    due: [Vec<u64>; SLOTS as usize],
}

impl Worker {
    fn new(config: MediaConfig) -> Worker {
        Worker {
            config,
            sessions: HashMap::new(),
            mixers: Mixers::default(),
            heard: HashMap::new(),
            mixed: HashMap::new(),
            scratch: Scratch::new(),
            due: Default::default(),
        }
    }

    fn tick(&mut self, now: Instant) {
        self.heard.clear();
        self.mixed.clear();
        for (&id, session) in &mut self.sessions {
            session.receive(now, &mut self.scratch.datagram);
            session.check_inactivity(now, self.config.inactivity_timeout);
            if let Some(frame) = session.receive.next_frame() {
                self.heard.insert(id, frame);
            }
        }
        self.mixers.mix(&self.heard, &mut self.mixed);
        for (&id, session) in &mut self.sessions {
            session.send_tick(&self.heard, &self.mixed, &mut self.scratch);
            if session.has_queued() {
                self.due[(id % u64::from(SLOTS)) as usize].push(id);
            }
        }
    }

    /// Sends the packets of the streams whose slot this is.
    fn flush(&mut self, slot: u32) {
        let Some(due) = self.due.get_mut(slot as usize) else {
            return;
        };
        for id in due.drain(..) {
            if let Some(session) = self.sessions.get_mut(&id) {
                session.flush();
            }
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Open(session) => {
                self.sessions.insert(session.id, *session);
            }
            Command::Close { id } => self.close(id),
            Command::SetRemote {
                id,
                remote,
                codec,
                telephone_event,
            } => {
                let inband = self.config.inband_dtmf && telephone_event.is_none();
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.remote = Some(Remote {
                        address: remote,
                        codec,
                        telephone_event,
                    });
                    session.receive.restart_watch(Instant::now(), true);
                    match (&session.receive.detector, inband) {
                        (None, true) => session.receive.detector = Some(InbandDetector::new()),
                        (Some(_), false) => session.receive.detector = None,
                        _ => {}
                    }
                }
            }
            Command::SetActive { id, active } => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.active = active;
                }
            }
            Command::Play {
                id,
                prompt,
                limit,
                reply,
            } => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.play(prompt, limit, reply);
                }
            }
            Command::Stop { id } => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.stop_playback();
                    session.stop_recording();
                }
            }
            Command::Record { id, limit, reply } => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.stop_recording();
                    let recording = Recording::new(limit, reply);
                    if recording.is_full() {
                        recording.finish();
                    } else {
                        session.receive.recording = Some(recording);
                    }
                }
            }
            Command::SendDtmf { id, symbol } => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.queue_dtmf(symbol);
                }
            }
            Command::Bridge { id, other } => self.bridge(id, other),
            Command::MixerAttach { id, other } => self.mixer_attach(id, other),
            Command::MixerDetach { id, other } => {
                let mixer = self.sessions.get(&id).and_then(|session| session.mixer);
                let other_mixer = self.sessions.get(&other).and_then(|session| session.mixer);
                if mixer.is_some() && mixer == other_mixer {
                    self.leave_mixer(other);
                }
            }
            Command::MixerMute { id, other, mode } => {
                let mixer = self.sessions.get(&id).and_then(|session| session.mixer);
                let other_mixer = self.sessions.get(&other).and_then(|session| session.mixer);
                if let (Some(mixer), true) = (mixer, mixer == other_mixer) {
                    self.mixers.set_mode(mixer, other, mode);
                }
            }
            Command::Hold { id, on } => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    if session.held && !on {
                        // The peer may have been silent on hold; give it time again.
                        session.receive.restart_watch(Instant::now(), false);
                    }
                    session.held = on;
                }
            }
        }
    }

    fn close(&mut self, id: u64) {
        self.unbridge(id);
        self.leave_mixer(id);
        if let Some(session) = self.sessions.remove(&id) {
            session.close();
        }
    }

    fn unbridge(&mut self, id: u64) {
        let Some(partner) = self
            .sessions
            .get_mut(&id)
            .and_then(|session| session.bridge.take())
        else {
            return;
        };
        if let Some(partner) = self.sessions.get_mut(&partner) {
            if partner.bridge == Some(id) {
                partner.bridge = None;
            }
        }
    }

    fn bridge(&mut self, id: u64, other: Option<u64>) {
        self.unbridge(id);
        let Some(other) = other else {
            return;
        };
        if other == id || !self.sessions.contains_key(&id) || !self.sessions.contains_key(&other) {
            tracing::warn!(session = id, other, "cannot bridge: no such session");
            return;
        }
        self.unbridge(other);
        for (this, partner) in [(id, other), (other, id)] {
            self.leave_mixer(this);
            if let Some(session) = self.sessions.get_mut(&this) {
                session.stop_playback();
                session.bridge = Some(partner);
            }
        }
    }

    fn mixer_attach(&mut self, id: u64, other: u64) {
        if id == other || !self.sessions.contains_key(&id) || !self.sessions.contains_key(&other) {
            return;
        }
        for session in [id, other] {
            self.unbridge(session);
        }
        let own_mixer = self.sessions.get(&id).and_then(|session| session.mixer);
        let other_mixer = self.sessions.get(&other).and_then(|session| session.mixer);
        if own_mixer.is_some() && own_mixer == other_mixer {
            return;
        }
        self.leave_mixer(other);
        let mixer = match own_mixer {
            Some(mixer) => mixer,
            None => self.mixers.create(id),
        };
        self.mixers.add(mixer, other);
        for session in [id, other] {
            if let Some(session) = self.sessions.get_mut(&session) {
                session.mixer = Some(mixer);
            }
        }
    }

    fn leave_mixer(&mut self, id: u64) {
        let Some(mixer) = self
            .sessions
            .get_mut(&id)
            .and_then(|session| session.mixer.take())
        else {
            return;
        };
        for orphan in self.mixers.remove(mixer, id) {
            if let Some(session) = self.sessions.get_mut(&orphan) {
                session.mixer = None;
            }
        }
    }
}
