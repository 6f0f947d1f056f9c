//! The call abstraction between tasks and the network (DESIGN.md §3).
//!
//! A [`Leg`] is one call leg: a handle the owning task sends
//! [`LegCommand`]s through. What happens on the leg comes back to its owner
//! as [`TaskInput`](crate::task::TaskInput) (DTMF, progress, hang-up).
//! Two networks implement it: the simulated one (`sim`), used by `pbxd run`
//! and the tests, and SIP/RTP (to come). Scripts cannot tell them apart.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pbx_lang::value::IpEndpoint;
use tokio::sync::{mpsc, oneshot};

use crate::task::TaskInput;

/// Identifies a leg.
pub type LegId = u64;

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
    pub remote_ip: Option<IpEndpoint>,
    /// The authenticated address of the caller, if any.
    pub authenticated: Option<String>,
    pub call_id: String,
    /// Headers of the pending request, as received.
    pub headers: Vec<(String, String)>,
    /// Whether the peer takes transfers (SIP: it allows REFER).
    pub transfer_supported: bool,
}

/// Audio to play.
#[derive(Clone, Debug)]
pub enum Media {
    /// A WAV file from an environment.
    File {
        path: PathBuf,
        shown: String,
        bytes: Arc<[u8]>,
        length: Duration,
    },
    /// A WAV datablock (`Play(data)`).
    Data { bytes: Arc<[u8]>, length: Duration },
    /// Sine tones (`PlayTone`), or silence when `frequencies` is empty.
    Tone { frequencies: Vec<u32>, length: Duration },
}

impl Media {
    /// How long it plays once.
    pub fn length(&self) -> Duration {
        match self {
            Media::File { length, .. } | Media::Data { length, .. } | Media::Tone { length, .. } => *length,
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

/// The usual reason phrase of a SIP final response code (RFC 3261 §21).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match code / 100 {
            4 => "Request Failure",
            5 => "Server Failure",
            _ => "Global Failure",
        },
    }
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

/// What a task asks of its leg.
#[derive(Debug)]
pub enum LegCommand {
    /// Send a provisional response; `media` opens the media channel early.
    Provision { code: u16, reason: String, media: bool },
    /// Answer.
    Accept { reply: Reply },
    /// Refuse a pending call.
    Reject { code: u16, reason: String },
    /// Send the caller elsewhere (302).
    Redirect { targets: Vec<String> },
    /// Ring `targets` too while the task keeps the pending call; if one of
    /// them answers first, the caller talks to it and the task is told
    /// (`TaskInput::AnsweredElsewhere`).
    Fork { targets: Vec<String> },
    /// Hang up (BYE, or CANCEL for an unanswered outgoing call).
    Disconnect { reason: Option<(u16, String)> },
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
    /// Put the peer on hold, or take it off.
    Hold(bool),
    /// Connect this leg's media with another leg's (both ways), or, with
    /// `None`, give it back its own media channel. Signalling stays with
    /// the owner.
    Bridge(Option<LegHandle>),
    /// Work the mixer of this leg's media channel.
    Mixer(MixerCommand),
    /// Blind transfer (SIP REFER): the peer calls `target`; the reply comes
    /// when it is known whether that call was answered. On success the leg
    /// is over for the task.
    Transfer { target: String, reply: Reply },
    /// Attended transfer: connect this leg's peer with `other`'s peer
    /// directly (SIP REFER with Replaces); on success both legs are over
    /// for their tasks.
    Join { other: LegHandle, reply: Reply },
}

/// Another task's reach into a leg it does not own, passed in the bridge,
/// mixer and transfer handshakes: enough to connect media or join peers,
/// never ownership (DESIGN.md §3).
#[derive(Clone, Debug)]
pub struct LegHandle {
    pub id: LegId,
    commands: mpsc::UnboundedSender<LegCommand>,
}

impl LegHandle {
    /// Sends a command to the leg's network side.
    pub fn send(&self, command: LegCommand) {
        let _ = self.commands.send(command);
    }
}

/// Who receives what happens on a leg: its owning task. Shared between the
/// handle and the network side, so ownership can move (transfer).
#[derive(Clone, Debug, Default)]
pub struct Owner(Arc<Mutex<Option<mpsc::UnboundedSender<TaskInput>>>>);

impl Owner {
    /// Sends to the owner; nothing happens without one.
    pub fn send(&self, input: TaskInput) {
        if let Ok(owner) = self.0.lock() {
            if let Some(sender) = owner.as_ref() {
                let _ = sender.send(input);
            }
        }
    }

    /// Makes `sender`'s task the owner.
    pub fn set(&self, sender: Option<mpsc::UnboundedSender<TaskInput>>) {
        if let Ok(mut owner) = self.0.lock() {
            *owner = sender;
        }
    }
}

/// A call leg, held by the task that owns it.
#[derive(Debug)]
pub struct Leg {
    pub id: LegId,
    pub info: LegInfo,
    pub state: LegState,
    /// Whether this leg was placed by the task (`StartCall`).
    pub outgoing: bool,
    commands: mpsc::UnboundedSender<LegCommand>,
    owner: Owner,
}

impl Leg {
    /// A leg whose network side listens on `commands` and reports to `owner`.
    pub fn new(
        id: LegId,
        info: LegInfo,
        state: LegState,
        outgoing: bool,
        commands: mpsc::UnboundedSender<LegCommand>,
        owner: Owner,
    ) -> Leg {
        Leg {
            id,
            info,
            state,
            outgoing,
            commands,
            owner,
        }
    }

    /// Sends a command to the network side. A leg whose network side is gone
    /// ignores it (the hang-up has been reported).
    pub fn send(&self, command: LegCommand) {
        let _ = self.commands.send(command);
    }

    /// A handle another task may use to reach this leg's media.
    pub fn handle(&self) -> LegHandle {
        LegHandle {
            id: self.id,
            commands: self.commands.clone(),
        }
    }

    /// Makes `sender`'s task receive what happens on this leg.
    pub fn set_owner(&self, sender: Option<mpsc::UnboundedSender<TaskInput>>) {
        self.owner.set(sender);
    }
}

/// The outside world of calls: places outgoing calls. Incoming calls are
/// handed to the runtime by whoever receives them.
pub trait Network: Send + Sync {
    /// Places a call from `from` (an address) to `to`; what happens is
    /// reported to `owner`. `Err` is a reason to give the script.
    fn place_call(&self, from: &str, to: &str, owner: Owner) -> Result<Leg, String>;

    /// Where the account `address` (`name@domain`) can be called now: its
    /// registered devices. Empty when none is registered.
    fn devices(&self, address: &str) -> Vec<String>;
}
