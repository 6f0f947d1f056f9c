//! The call seam between tasks and the network (DESIGN.md §3).
//!
//! A [`Leg`] is one call leg, held by the task (or the ringer) that owns
//! it; it sends [`LegCommand`]s to the network's end of the leg, a
//! [`LegEnd`], which reports what the peer does as [`LegEvent`]s to the
//! owner. What crosses is typed and resolved: a [`Status`] rather than a
//! code in a string, a [`Target`] the runtime resolved once, a
//! `SocketAddr`. Two networks implement it: the simulated one (`sim`),
//! used by `pbxd run` and the tests, and SIP/RTP (`pbx-sip`). Scripts
//! cannot tell them apart.
//!
//! *Invariants:* a leg has exactly one owner at a time (its events go to
//! one sink, which moves with the leg); a leg's network end ends when the
//! owner drops the `Leg` (hang-up) or the peer goes; leg IDs are unique in
//! the process, whatever shard made them.

pub mod fork;
mod network;
mod status;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pbx_media::prompt::Prompt;
use tokio::sync::oneshot;

use crate::address::Destination;
use crate::directory::Account;
use crate::queue;

pub use network::{Device, IncomingCall, IncomingCalls, Network, OutgoingCall, Target, Transport};
pub use status::{CallError, Status};

/// Identifies a leg, unique in the process.
pub type LegId = u64;

/// A new leg ID (shared by every network and shard of the process).
pub fn next_leg_id() -> LegId {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed) + 1
}

/// Where the outcome of a request goes: `Ok`, or a reason for the script.
pub type Reply = oneshot::Sender<Result<(), String>>;

/// What a task may be doing with its call (CGPL.md §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegState {
    /// A call request is pending.
    Incoming,
    /// A provisional response was sent (media may flow).
    Provisioned,
    /// Answered.
    Connected,
    /// Over.
    Disconnected,
}

/// What is known about the call when it arrives or is placed.
#[derive(Clone, Debug, Default)]
pub struct LegInfo {
    /// The other side's URI (`From` of an incoming call).
    pub remote_uri: String,
    /// This side's URI.
    pub local_uri: String,
    /// The Request-URI of the pending request.
    pub request_uri: String,
    /// Where the peer's signalling came from.
    pub remote_addr: Option<std::net::SocketAddr>,
    /// The account the caller proved to be, if any.
    pub authenticated: Option<Arc<Account>>,
    /// The account whose settings the caller's call has when not its own:
    /// the virtual line logged in last on the phone (hot desk).
    pub acting_as: Option<Arc<Account>>,
    pub call_id: String,
    /// Headers of the pending request, as received.
    pub headers: Headers,
    /// Whether the peer takes transfers (SIP: it allows REFER).
    pub transfer_supported: bool,
}

impl LegInfo {
    /// The account whose settings apply to what the caller dials (class
    /// of service, caller ID, speed dials): a virtual line logged in on
    /// the phone, or the account the caller proved to be.
    pub fn settings(&self) -> Option<&Arc<Account>> {
        self.acting_as.as_ref().or(self.authenticated.as_ref())
    }
}

/// The headers of a request as received, kept as one string of
/// `Name: value` lines: scripts read them rarely, by name, and a call
/// should not carry two allocations per header for that.
#[derive(Clone, Debug, Default)]
pub struct Headers(String);

impl Headers {
    /// Headers from name and value pairs; a line break in either is
    /// dropped (it would end the line).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Headers {
        let mut text = String::new();
        for (name, value) in pairs {
            let clean = |part: &str| part.trim().replace(['\r', '\n'], "");
            text.push_str(&clean(name));
            text.push_str(": ");
            text.push_str(&clean(value));
            text.push('\n');
        }
        Headers(text)
    }

    /// The value of the first header called `name` (case ignored).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.lines().find_map(|line| {
            let (found, value) = line.split_once(": ")?;
            found.eq_ignore_ascii_case(name).then_some(value)
        })
    }
}

/// Audio to play.
#[derive(Clone, Debug)]
pub enum Media {
    /// A prompt file from an environment, decoded (once per version of
    /// the file, shared by every call that plays it).
    File { prompt: Arc<Prompt>, shown: String },
    /// A WAV datablock (`Play(data)`).
    Data { bytes: Arc<[u8]>, length: Duration },
    /// Sine tones (`PlayTone`), or silence when `frequencies` is empty.
    Tone { frequencies: Vec<u32>, length: Duration },
}

impl Media {
    /// How long it plays once.
    pub fn length(&self) -> Duration {
        match self {
            Media::File { prompt, .. } => prompt.duration(),
            Media::Data { length, .. } | Media::Tone { length, .. } => *length,
        }
    }
}

/// How a played prompt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Played {
    /// How long it played.
    pub length: Duration,
    /// Whether it played to its end.
    pub completed: bool,
}

/// How a participant of a mixer hears and is heard (`MuteMixer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MuteMode {
    /// The others hear it, or (muted) do not.
    Muted(bool),
    /// Marks it special: participants who hear only special ones hear it.
    Special,
    /// It hears only the special participants (a coach whispering).
    HearsSpecial,
    /// It hears no one.
    HearsMute,
    /// It hears everyone again.
    HearsNormal,
}

/// What a task asks of the mixer on its leg's media channel (a conference).
#[derive(Clone, Debug)]
pub enum MixerCommand {
    /// Mix another leg's media in: it hears the mix, the mix hears it.
    Attach(LegHandle),
    /// Take a leg out of the mix; it goes back to its own media channel.
    Detach(LegId),
    Mute {
        leg: LegId,
        mode: MuteMode,
    },
}

/// What the owner asks of its leg.
#[derive(Debug)]
pub enum LegCommand {
    /// Send a provisional response; `media` opens the media channel early.
    Provision { status: Status, media: bool },
    /// Answer.
    Accept { reply: Reply },
    /// Refuse a pending call.
    Reject { status: Status },
    /// Send the caller elsewhere (302 with these addresses as contacts).
    Redirect { targets: Vec<String> },
    /// Ring `targets` too while the task keeps the pending call; if one of
    /// them answers first, the caller talks to it and the owner is told
    /// (`LegEvent::AnsweredElsewhere`).
    Fork { targets: Vec<Target> },
    /// Hang up (BYE, or CANCEL for an unanswered outgoing call), with a
    /// reason when pbxd has one to give.
    Disconnect { reason: Option<Status> },
    /// Play `media`, looping until `limit` when given; the reply says how
    /// far it got. `Stop` ends it early.
    Play {
        media: Media,
        limit: Option<Duration>,
        reply: oneshot::Sender<Played>,
    },
    /// Stop playing or recording.
    Stop,
    /// Record up to `limit`; the reply carries a WAV file.
    Record {
        limit: Duration,
        reply: oneshot::Sender<Vec<u8>>,
    },
    /// Send a DTMF symbol.
    SendDtmf(char),
    /// Put the peer on hold (it hears music on hold), or take it off.
    Hold(bool),
    /// The music this leg's media channel plays: on hold, and with
    /// `when_idle` also whenever it has nothing else to send (CG/PL
    /// `MediaOption("mixMOH")`; in a conference on this channel, everyone
    /// hears it). `prompt` `None` is the server's music on hold.
    Music {
        prompt: Option<Arc<Prompt>>,
        when_idle: bool,
    },
    /// Connect this leg's media with another leg's (both ways), or, with
    /// `None`, give it back its own media channel. Signalling stays with
    /// the owner.
    Bridge(Option<LegHandle>),
    /// Work the mixer of this leg's media channel.
    Mixer(MixerCommand),
    /// Blind transfer (SIP REFER): the peer calls `target`; the reply comes
    /// when it is known whether that call was answered. On success the leg
    /// is over for the owner.
    Transfer { target: Destination, reply: Reply },
    /// Attended transfer: connect this leg's peer with `other`'s peer
    /// directly (SIP REFER with Replaces); on success both legs are over
    /// for their owners.
    Join { other: LegHandle, reply: Reply },
}

/// What happens on a leg, as its owner hears it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegEvent {
    /// The peer pressed a key.
    Dtmf(char),
    /// An outgoing call rings (or has early media).
    Provisional(Status),
    /// An outgoing call was answered.
    Answered,
    /// An outgoing call failed: its final response, or why it was not placed.
    Failed(CallError),
    /// The peer hung up, or a pending incoming call was cancelled.
    Disconnected,
    /// A target the pending call was forked to answered it: the caller talks
    /// to `by`, and the owner no longer has the call.
    AnsweredElsewhere { by: String },
}

/// A [`LegEvent`] and the leg it happened on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegReport {
    pub leg: LegId,
    pub event: LegEvent,
}

/// Where a leg's owner takes its events: a task's input queue, the ringer's,
/// or the network's own (a forked branch).
pub trait LegSink: Send + Sync + 'static {
    /// Delivers a report; false when the owner is gone.
    fn report(&self, report: LegReport) -> bool;
}

impl<T> LegSink for queue::Sender<T>
where
    T: From<LegReport> + Send + 'static,
{
    fn report(&self, report: LegReport) -> bool {
        self.send(T::from(report)).is_ok()
    }
}

/// The owner of a leg, shared by the leg and its network end so that
/// ownership can move (a transfer, a ringer handing the caller to a task).
#[derive(Clone)]
pub struct Owner(Arc<OwnerInner>);

struct OwnerInner {
    leg: LegId,
    /// Written when ownership moves; read for every event (never on the
    /// packet path).
    sink: Mutex<Option<Box<dyn LegSink>>>,
    /// The leg's part in its call record (set once, right after the leg
    /// is made); it goes with the last end of the leg.
    trace: Mutex<Option<crate::cdr::Trace>>,
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner").field("leg", &self.0.leg).finish()
    }
}

impl Owner {
    fn new(leg: LegId, sink: Option<Box<dyn LegSink>>) -> Owner {
        Owner(Arc::new(OwnerInner {
            leg,
            sink: Mutex::new(sink),
            trace: Mutex::new(None),
        }))
    }

    /// The leg's call record, if it is kept.
    pub fn trace(&self) -> Option<crate::cdr::Trace> {
        self.0.trace.lock().ok()?.clone()
    }

    /// Puts the leg in a call record (once).
    pub fn set_trace(&self, trace: Option<crate::cdr::Trace>) {
        if let (Ok(mut kept), Some(trace)) = (self.0.trace.lock(), trace) {
            kept.get_or_insert(trace);
        }
    }

    /// pbxd answered the leg (an incoming call): for its record.
    pub fn answered(&self) {
        if let Some(trace) = self.trace() {
            trace.answered();
        }
    }

    /// Tells the owner what happened; nothing happens without one.
    pub fn report(&self, event: LegEvent) {
        if let Some(trace) = self.trace() {
            trace.reported(&event);
        }
        if let Ok(sink) = self.0.sink.lock() {
            if let Some(sink) = sink.as_ref() {
                sink.report(LegReport {
                    leg: self.0.leg,
                    event,
                });
            }
        }
    }

    /// A sink that passes another leg's reports, as they are, to this
    /// leg's owner: a fork's answered branch taking the fork's place.
    pub fn relay(&self) -> Box<dyn LegSink> {
        Box::new(Relay(self.clone()))
    }

    /// An owner of the same leg that reports to no one: for a network end
    /// whose leg no longer belongs to its owner (a fork answered elsewhere).
    pub fn detached(&self) -> Owner {
        Owner::new(self.0.leg, None)
    }

    fn set(&self, sink: Option<Box<dyn LegSink>>) {
        if let Ok(mut owner) = self.0.sink.lock() {
            *owner = sink;
        }
    }
}

/// See [`Owner::relay`].
struct Relay(Owner);

impl LegSink for Relay {
    fn report(&self, report: LegReport) -> bool {
        if let Ok(sink) = self.0 .0.sink.lock() {
            if let Some(sink) = sink.as_ref() {
                return sink.report(report);
            }
        }
        false
    }
}

/// Where a fork (one call to several devices) puts the branch that
/// answered, for the leg's owner to take in place of the fork's leg.
pub type Successor = Arc<Mutex<Option<Leg>>>;

/// Another owner's reach into a leg it does not own, passed in the bridge,
/// mixer and transfer handshakes: enough to connect media or join peers,
/// never ownership (DESIGN.md §3).
#[derive(Clone, Debug)]
pub struct LegHandle {
    pub id: LegId,
    commands: queue::Sender<LegCommand>,
}

impl LegHandle {
    /// Sends a command to the leg's network end.
    pub fn send(&self, command: LegCommand) {
        let _ = self.commands.send(command);
    }
}

/// The commands the owner sends a leg, in order.
pub type LegCommands = queue::Receiver<LegCommand>;

/// A call leg, held by its owner. Dropping it hangs the call up: the
/// network end sees its command queue close.
#[derive(Debug)]
pub struct Leg {
    pub id: LegId,
    pub info: LegInfo,
    pub state: LegState,
    /// Whether this leg was placed by pbxd (`StartCall`, ringing).
    pub outgoing: bool,
    commands: queue::Sender<LegCommand>,
    owner: Owner,
    /// A fork's: the branch that answered, once one has.
    successor: Option<Successor>,
}

/// The network's end of a leg: the owner's commands, and where to report
/// what the peer does.
#[derive(Debug)]
pub struct LegEnd {
    pub id: LegId,
    pub commands: LegCommands,
    pub owner: Owner,
}

impl Leg {
    /// A new leg and its network end. `owner` receives the leg's events
    /// from the start (an outgoing call's); an incoming leg gets its owner
    /// when the runtime gives it to a task.
    pub fn new(id: LegId, info: LegInfo, outgoing: bool, owner: Option<Box<dyn LegSink>>) -> (Leg, LegEnd) {
        let (commands, receiver) = queue::unbounded();
        let owner = Owner::new(id, owner);
        let leg = Leg {
            id,
            info,
            state: LegState::Incoming,
            outgoing,
            commands,
            owner: owner.clone(),
            successor: None,
        };
        let end = LegEnd {
            id,
            commands: receiver,
            owner,
        };
        (leg, end)
    }

    /// The leg's call record, if it is kept.
    pub fn trace(&self) -> Option<crate::cdr::Trace> {
        self.owner.trace()
    }

    /// Puts the leg in a call record (once); the record can then hang
    /// it up (an administrator ending the call).
    pub fn set_trace(&self, trace: Option<crate::cdr::Trace>) {
        if let Some(trace) = &trace {
            if self.owner.trace().is_none() {
                trace.reach(self.handle());
            }
        }
        self.owner.set_trace(trace);
    }

    /// Sends a command to the network end. A leg whose network end is gone
    /// ignores it (the hang-up has been reported).
    pub fn send(&self, command: LegCommand) {
        if let (LegCommand::Reject { status }, Some(trace)) = (&command, self.trace()) {
            // pbxd refused the call: its record says with what.
            trace.reported(&LegEvent::Failed(CallError {
                status: status.clone(),
                detail: None,
            }));
        }
        let _ = self.commands.send(command);
    }

    /// A handle another owner may use to reach this leg's media.
    pub fn handle(&self) -> LegHandle {
        LegHandle {
            id: self.id,
            commands: self.commands.clone(),
        }
    }

    /// Makes this leg a fork's: when a branch answers, it is put in
    /// `successor`, and the owner takes it in this leg's place
    /// ([`Leg::take_successor`]).
    pub fn with_successor(mut self, successor: Successor) -> Leg {
        self.successor = Some(successor);
        self
    }

    /// The leg that takes this one's place (a fork's branch that
    /// answered), once there is one.
    pub fn take_successor(&self) -> Option<Leg> {
        self.successor.as_ref()?.lock().ok()?.take()
    }

    /// Makes `sink` receive what happens on this leg from now on.
    pub fn set_owner(&self, sink: Option<Box<dyn LegSink>>) {
        self.owner.set(sink);
    }
}
