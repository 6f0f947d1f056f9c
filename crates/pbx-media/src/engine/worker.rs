//! A worker: one task, one 20 ms interval, every session it has.
//!
//! Commands from session handles are applied as they come, between ticks;
//! packets move only on ticks. The worker owns its sessions' state, so
//! nothing on the packet path takes a lock. Sessions that must be mixed or
//! bridged together are gathered on one worker first (`Command::Gather`).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use super::mixer::Mixers;
use super::receive::{Frame, Recording};
use super::session::{chosen_music, music_frame_index, Remote, Scratch, SessionState, Tick};
use super::{EngineShared, IdMap, IdSet, MediaConfig, MuteMode, Played, Route};
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
    /// SRTP on (keys) or off (`None`) for a session's packets.
    Srtp {
        id: u64,
        keys: Option<crate::srtp::SrtpKeys>,
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
    /// Undoes `id`'s bridge, for both.
    Unbridge {
        id: u64,
    },
    /// Bridges two sessions, or puts the second in the first's mixer; the
    /// two are gathered on one worker first.
    Join {
        kind: JoinKind,
        first: SessionRef,
        second: SessionRef,
        hops: u8,
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
    /// We hold the peer (music), or no longer.
    Hold {
        id: u64,
        on: bool,
    },
    /// The peer holds us (nothing sent; the partner hears music), or no longer.
    PeerHold {
        id: u64,
        on: bool,
    },
    /// The session's own music on hold (`None`: the engine's).
    Music {
        id: u64,
        music: Option<Arc<Prompt>>,
    },
    /// Music whenever the session has nothing else to send.
    MusicWhenIdle {
        id: u64,
        on: bool,
    },
    /// The engine's music on hold, for every session of this worker
    /// without music of its own.
    EngineMusic(Option<Arc<Prompt>>),
    /// Brings `session` to worker `to` (from wherever it is), then
    /// applies `then` there. `hops` bounds the chase of a session that
    /// moves meanwhile.
    Gather {
        session: SessionRef,
        to: usize,
        hops: u8,
        then: Box<Command>,
    },
    /// A session moved here from another worker.
    Adopt(Box<SessionState>),
}

/// How many times a command may chase a session that keeps moving.
const MOST_HOPS: u8 = 8;

/// What a `Join` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum JoinKind {
    /// A media bridge between the two.
    Bridge,
    /// The second joins the first's conference mixer.
    Mix,
}

/// A session as a command that involves two names it: its ID, and where
/// to find it.
#[derive(Clone, Debug)]
pub(super) struct SessionRef {
    pub id: u64,
    pub route: Arc<Route>,
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
pub(super) async fn run(
    config: MediaConfig,
    index: usize,
    engine: Weak<EngineShared>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut worker = Worker::new(config, index, engine);
    let mut ticks = tokio::time::interval(FRAME_DURATION / SLOTS);
    let mut slot = 0;
    // A tick that comes late is made up at once, so every stream stays on
    // its 20 ms grid (a receiver's jitter buffer takes two packets close
    // together; it cannot take a stream that slipped a frame for good).
    // After a long stall, though, a burst would flood the peers: then the
    // grid starts again from now and the missed packets are not sent.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    loop {
        if worker.sessions.is_empty() {
            // With no session the clock stops: an idle pbxd does not wake.
            worker.lateness.clear();
            worker.publish_load(Load::default());
            match commands.recv().await {
                Some(command) => worker.apply(command, &mut commands),
                None => break,
            }
            if !worker.sessions.is_empty() {
                ticks.reset();
                slot = 0;
            }
            continue;
        }
        let scheduled = ticks.tick().await;
        // While the clock runs, commands wait for the next slot (2 ms at
        // most; packets move only on ticks anyway): taken one by one, each
        // would wake this thread.
        loop {
            match commands.try_recv() {
                Ok(command) => worker.apply(command, &mut commands),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    for (_, session) in worker.sessions.drain() {
                        session.close();
                    }
                    return;
                }
            }
        }
        if worker.sessions.is_empty() {
            continue;
        }
        let now = Instant::now();
        let late = now.saturating_duration_since(scheduled);
        if late > LONGEST_CATCH_UP {
            ticks.reset();
        }
        if slot == 0 {
            worker.tick(now);
        }
        worker.flush(slot);
        slot = (slot + 1) % SLOTS;
        let busy = now.elapsed();
        worker.lateness.note(now, late, busy, |load| {
            worker_publish(&worker.engine, index, load)
        });
    }
    for (_, session) in worker.sessions.drain() {
        session.close();
    }
}

/// How a worker kept up over the last second.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Load {
    /// The 99th percentile of how late its slots were, in µs.
    pub late_micros: u64,
    /// The share of the time it was working on its slots, in thousandths.
    pub busy_permille: u64,
    /// How many slots were late by at most each of
    /// [`super::LATENESS_BUCKETS`] (the last: any), each counted once.
    pub buckets: [u64; super::LATENESS_BUCKETS.len()],
    /// The slots' lateness added up, in µs.
    pub sum_micros: u64,
}

/// How late a worker's slots are and how much of its time they take, over
/// one-second windows. Lateness shows a clock that already fails to keep
/// up (or a host that did not run it); the busy share rises with the load
/// well before that.
#[derive(Debug, Default)]
struct Lateness {
    window_start: Option<Instant>,
    /// This window's lateness of each slot, in µs.
    samples: Vec<u32>,
    /// This window's time spent on slots.
    busy: Duration,
}

impl Lateness {
    /// Notes a slot `late` that took `busy`; at the end of a window,
    /// publishes what it saw.
    fn note(&mut self, now: Instant, late: Duration, busy: Duration, publish: impl FnOnce(Load)) {
        let start = *self.window_start.get_or_insert(now);
        self.samples
            .push(u32::try_from(late.as_micros()).unwrap_or(u32::MAX));
        self.busy += busy;
        let window = now.saturating_duration_since(start);
        if window >= Duration::from_secs(1) {
            let rank = (self.samples.len() * 99 / 100).min(self.samples.len() - 1);
            let p99 = *self.samples.select_nth_unstable(rank).1;
            let busy_permille = (self.busy.as_micros() * 1000 / window.as_micros().max(1)).min(1000);
            let mut buckets = [0u64; super::LATENESS_BUCKETS.len()];
            let mut sum_micros = 0u64;
            for &late in &self.samples {
                sum_micros += u64::from(late);
                let bucket = super::LATENESS_BUCKETS
                    .iter()
                    .position(|&bound| u64::from(late) <= bound)
                    .unwrap_or(buckets.len() - 1);
                buckets[bucket] += 1;
            }
            publish(Load {
                late_micros: u64::from(p99),
                busy_permille: busy_permille as u64,
                buckets,
                sum_micros,
            });
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.samples.clear();
        self.busy = Duration::ZERO;
        self.window_start = None;
    }
}

fn worker_publish(engine: &Weak<EngineShared>, index: usize, load: Load) {
    if let Some(link) = engine
        .upgrade()
        .as_ref()
        .and_then(|engine| engine.workers.get(index))
    {
        link.lateness_micros.store(load.late_micros, Ordering::Relaxed);
        link.busy_permille.store(load.busy_permille, Ordering::Relaxed);
        for (total, count) in link.lateness_buckets.iter().zip(load.buckets) {
            total.fetch_add(count, Ordering::Relaxed);
        }
        link.lateness_sum_micros
            .fetch_add(load.sum_micros, Ordering::Relaxed);
    }
}

struct Worker {
    config: MediaConfig,
    /// This worker's place in the engine's list.
    index: usize,
    engine: Weak<EngineShared>,
    lateness: Lateness,
    /// Boxed: the map's table (up to twice as many slots as sessions)
    /// holds pointers, not 700-byte states.
    sessions: IdMap<Box<SessionState>>,
    mixers: Mixers,
    /// What each session's peer sent this tick (filled then read within a tick).
    heard: IdMap<Frame>,
    /// What each conference participant hears this tick.
    mixed: IdMap<Frame>,
    /// The sessions whose peer holds them, this tick.
    peer_held: IdSet,
    /// Ticks since the worker started: where in the music every session
    /// that plays it is.
    clock: u64,
    /// The engine's music on hold (`MediaEngine::set_music`).
    music: Option<Arc<Prompt>>,
    scratch: Scratch,
    /// The sessions with packets to send, by slot of the tick.
    due: [Vec<u64>; SLOTS as usize],
    /// What tells which sessions' sockets have something to read; none
    /// if the system would not give one (then every socket is read at
    /// every tick).
    poller: Option<Poller>,
}

/// The worker's own readiness poller, asked once per tick without waiting.
struct Poller {
    poll: mio::Poll,
    events: mio::Events,
}

/// Readiness events taken per call; more are taken in further calls.
const EVENTS_PER_POLL: usize = 1024;

impl Worker {
    fn new(config: MediaConfig, index: usize, engine: Weak<EngineShared>) -> Worker {
        Worker {
            config,
            index,
            engine,
            lateness: Lateness::default(),
            sessions: IdMap::default(),
            mixers: Mixers::default(),
            heard: IdMap::default(),
            mixed: IdMap::default(),
            peer_held: IdSet::default(),
            clock: 0,
            music: None,
            scratch: Scratch::new(),
            due: Default::default(),
            poller: match mio::Poll::new() {
                Ok(poll) => Some(Poller {
                    poll,
                    events: mio::Events::with_capacity(EVENTS_PER_POLL),
                }),
                Err(error) => {
                    tracing::warn!(%error, "media worker: no readiness poller; every socket is read at every tick");
                    None
                }
            },
        }
    }

    fn tick(&mut self, now: Instant) {
        self.take_readiness();
        self.clock = self.clock.wrapping_add(1);
        self.heard.clear();
        self.mixed.clear();
        self.peer_held.clear();
        for (&id, session) in &mut self.sessions {
            session.receive(now, &mut self.scratch.datagram);
            session.check_inactivity(now, self.config.inactivity_timeout);
            // Taken even from a peer that holds us, so none is left over
            // for when it comes back; but no one hears it meanwhile.
            let frame = session.receive.next_frame();
            if session.peer_held {
                self.peer_held.insert(id);
            } else if let Some(frame) = frame {
                self.heard.insert(id, frame);
            }
        }
        let (sessions, clock, music) = (&self.sessions, self.clock, self.music.as_ref());
        self.mixers.mix(
            &self.heard,
            |host| {
                // A conference's host that plays music when idle has it
                // mixed into what everyone hears.
                let host = sessions.get(&host).filter(|host| host.music_when_idle)?;
                let music = chosen_music(host.music.as_ref(), music)?;
                Some(music.frame_samples(music_frame_index(music, clock)))
            },
            &mut self.mixed,
        );
        let tick = Tick {
            heard: &self.heard,
            mixed: &self.mixed,
            peer_held: &self.peer_held,
            clock: self.clock,
            music: self.music.as_ref(),
        };
        for (&id, session) in &mut self.sessions {
            session.send_tick(&tick, &mut self.scratch);
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

    fn publish_load(&self, load: Load) {
        worker_publish(&self.engine, self.index, load);
    }

    /// Sends a command to another worker (or this one, to the back of its
    /// queue).
    fn send_to(&self, worker: usize, command: Command) {
        if let Some(link) = self
            .engine
            .upgrade()
            .as_ref()
            .and_then(|engine| engine.workers.get(worker))
        {
            let _ = link.commands.send(command);
        }
    }

    /// Counts a session in or out of this worker.
    fn count(&self, change: isize) {
        if let Some(link) = self
            .engine
            .upgrade()
            .as_ref()
            .and_then(|engine| engine.workers.get(self.index))
        {
            if change > 0 {
                link.sessions.fetch_add(change.unsigned_abs(), Ordering::Relaxed);
            } else {
                link.sessions.fetch_sub(change.unsigned_abs(), Ordering::Relaxed);
            }
        }
    }

    fn registry(&self) -> Option<&mio::Registry> {
        self.poller.as_ref().map(|poller| poller.poll.registry())
    }

    /// Marks the sessions whose sockets have become readable.
    fn take_readiness(&mut self) {
        let Some(poller) = &mut self.poller else {
            return;
        };
        loop {
            if let Err(error) = poller.poll.poll(&mut poller.events, Some(Duration::ZERO)) {
                if error.kind() != std::io::ErrorKind::Interrupted {
                    tracing::warn!(%error, "media worker: readiness poll failed");
                }
                return;
            }
            let mut count = 0;
            for event in poller.events.iter() {
                count += 1;
                if let Some(session) = self.sessions.get_mut(&(event.token().0 as u64)) {
                    session.mark_readable();
                }
            }
            if count < EVENTS_PER_POLL {
                return;
            }
        }
    }

    fn adopt(&mut self, mut session: Box<SessionState>) {
        session.attach(self.registry());
        self.sessions.insert(session.id, session);
    }

    fn apply(&mut self, command: Command, queue: &mut mpsc::UnboundedReceiver<Command>) {
        match command {
            // `open` counted it already.
            Command::Open(session) => self.adopt(session),
            Command::Adopt(session) => {
                self.count(1);
                self.adopt(session);
            }
            Command::Gather {
                session,
                to,
                hops,
                then,
            } => self.gather(session, to, hops, *then, queue),
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
            Command::Srtp { id, keys } => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.set_srtp(keys);
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
            Command::Unbridge { id } => self.unbridge(id),
            Command::Join {
                kind,
                first,
                second,
                hops,
            } => self.join(kind, first, second, hops),
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
                    if session.holding && !on && !session.peer_held {
                        // The peer may have been silent on hold; give it time again.
                        session.receive.restart_watch(Instant::now(), false);
                    }
                    session.holding = on;
                }
            }
            Command::PeerHold { id, on } => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    if session.peer_held && !on && !session.holding {
                        session.receive.restart_watch(Instant::now(), false);
                    }
                    session.peer_held = on;
                }
            }
            Command::Music { id, music } => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.music = music;
                }
            }
            Command::MusicWhenIdle { id, on } => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.music_when_idle = on;
                }
            }
            Command::EngineMusic(music) => self.music = music,
        }
    }

    fn close(&mut self, id: u64) {
        self.unbridge(id);
        self.leave_mixer(id);
        if let Some(session) = self.sessions.remove(&id) {
            self.count(-1);
            session.close();
        }
    }

    /// `Command::Join`: both here, it is done; otherwise they meet where
    /// the anchor is (the mixer's session; of a bridge, the one with the
    /// lower ID, so two bridges asked at once do not swap them forever).
    fn join(&mut self, kind: JoinKind, first: SessionRef, second: SessionRef, hops: u8) {
        if hops > MOST_HOPS {
            tracing::warn!(
                session = first.id,
                other = second.id,
                "media sessions kept moving; not joined"
            );
            return;
        }
        if self.sessions.contains_key(&first.id) && self.sessions.contains_key(&second.id) {
            match kind {
                JoinKind::Bridge => self.bridge(first.id, second.id),
                JoinKind::Mix => self.mixer_attach(first.id, second.id),
            }
            return;
        }
        let (anchor, mover) = match kind {
            JoinKind::Bridge if second.id < first.id => (second.clone(), first.clone()),
            _ => (first.clone(), second.clone()),
        };
        let again = Command::Join {
            kind,
            first,
            second,
            hops: hops + 1,
        };
        if self.sessions.contains_key(&anchor.id) {
            if kind == JoinKind::Bridge {
                // Bridged from now on, though its partner is on its way:
                // a prompt asked meanwhile is refused, as it would be once
                // the partner is here.
                self.unbridge(anchor.id);
                self.leave_mixer(anchor.id);
                if let Some(session) = self.sessions.get_mut(&anchor.id) {
                    session.stop_playback();
                    session.bridge = Some(mover.id);
                }
            }
            let gather = Command::Gather {
                to: self.index,
                hops: hops + 1,
                then: Box::new(again),
                session: mover.clone(),
            };
            self.send_to(mover.route.worker(), gather);
        } else {
            self.send_to(anchor.route.worker(), again);
        }
    }

    /// `Command::Gather`: brings `session` to worker `to`, then `then`.
    fn gather(
        &mut self,
        session: SessionRef,
        to: usize,
        hops: u8,
        then: Command,
        queue: &mut mpsc::UnboundedReceiver<Command>,
    ) {
        if hops > MOST_HOPS {
            tracing::warn!(session = session.id, "media session kept moving; command dropped");
            return;
        }
        if !self.sessions.contains_key(&session.id) {
            // It moved since it was looked up: follow it (a session that
            // is nowhere has been closed).
            let now_at = session.route.worker();
            if now_at != self.index {
                let again = Command::Gather {
                    session,
                    to,
                    hops: hops + 1,
                    then: Box::new(then),
                };
                self.send_to(now_at, again);
            }
            return;
        }
        if to == self.index {
            self.apply(then, queue);
        } else {
            self.move_session(session.id, to, then, queue);
        }
    }

    /// Moves session `id` to worker `to`: it leaves its bridge and mixer
    /// here; its route is switched while every command already queued for
    /// it is taken along, in order, after `then`.
    fn move_session(
        &mut self,
        id: u64,
        to: usize,
        then: Command,
        queue: &mut mpsc::UnboundedReceiver<Command>,
    ) {
        self.unbridge(id);
        self.leave_mixer(id);
        let Some(mut session) = self.sessions.remove(&id) else {
            return;
        };
        self.count(-1);
        session.detach(self.registry());
        let route = session.route.clone();
        // Locked until everything queued for it is on its way.
        let mut guard = route.0.lock().unwrap_or_else(PoisonError::into_inner);
        *guard = to;
        // Everything sent before the switch is in the queue now.
        let mut taken_along = Vec::new();
        let mut others = Vec::new();
        while let Ok(command) = queue.try_recv() {
            if command_session(&command) == Some(id) {
                taken_along.push(command);
            } else {
                others.push(command);
            }
        }
        self.send_to(to, Command::Adopt(session));
        self.send_to(to, then);
        for command in taken_along {
            self.send_to(to, command);
        }
        drop(guard);
        for command in others {
            self.apply(command, queue);
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

    fn bridge(&mut self, id: u64, other: u64) {
        self.unbridge(id);
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

/// The session a command is for (the one whose handle sent it).
fn command_session(command: &Command) -> Option<u64> {
    match command {
        Command::Open(session) | Command::Adopt(session) => Some(session.id),
        Command::Close { id }
        | Command::SetRemote { id, .. }
        | Command::Srtp { id, .. }
        | Command::SetActive { id, .. }
        | Command::Play { id, .. }
        | Command::Stop { id }
        | Command::Record { id, .. }
        | Command::SendDtmf { id, .. }
        | Command::Unbridge { id }
        | Command::MixerDetach { id, .. }
        | Command::MixerMute { id, .. }
        | Command::Hold { id, .. }
        | Command::PeerHold { id, .. }
        | Command::Music { id, .. }
        | Command::MusicWhenIdle { id, .. } => Some(*id),
        Command::EngineMusic(_) => None,
        Command::Join { first, .. } => Some(first.id),
        Command::Gather { session, .. } => Some(session.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_reports_its_p99_lateness_and_busy_share() {
        let mut lateness = Lateness::default();
        let start = Instant::now();
        let mut published = Vec::new();
        // 501 slots 2 ms apart: each took 1.4 ms; 10 of them (2%) were
        // 30 ms late, the rest on time.
        for slot in 0..=500u32 {
            let now = start + Duration::from_millis(2) * slot;
            let late = if slot % 50 == 7 {
                Duration::from_millis(30)
            } else {
                Duration::ZERO
            };
            lateness.note(now, late, Duration::from_micros(1400), |load| {
                published.push(load)
            });
        }
        let [load] = published.as_slice() else {
            panic!("one window, one report: {published:?}");
        };
        assert_eq!(load.late_micros, 30_000);
        assert_eq!(load.busy_permille, 701);
    }
}
