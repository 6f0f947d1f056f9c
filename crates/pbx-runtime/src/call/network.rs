//! The network as the runtime sees it: where an account can be reached,
//! placing a call to a resolved target, and the handle new calls arrive
//! through.

use std::fmt;
use std::net::SocketAddr;

use tokio::sync::mpsc;

use super::{CallError, Leg, LegId, LegSink};
use crate::address::Destination;
use crate::directory::Account;

/// How a device's signalling travels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
    /// TCP with TLS (`sip.tls_listen`): the phone is called over its own
    /// connection, and offered SRTP.
    Tls,
}

/// One place an account can be called now: a registered phone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The account it is registered for (`name@domain`).
    pub account: String,
    /// The URI the phone asked to be called at (its Contact).
    pub contact: String,
    /// Where to send to reach it (where its registration came from, for a
    /// phone behind NAT); `None` when the contact itself says.
    pub address: Option<SocketAddr>,
    pub transport: Transport,
    /// The physical phone's account when the device is reached as a
    /// virtual line logged in on it (hot desk): the phone is rung for
    /// `account`, and shown that line.
    pub via: Option<String>,
}

/// Where an outgoing call goes, resolved by the runtime: the network
/// looks nothing up again but the route to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A registered device of an account.
    Device(Device),
    /// A number beyond the server, for a trunk.
    Number(String),
    /// An address elsewhere (`user@host`).
    Address(String),
}

impl Target {
    /// The target for a destination outside the server (`Destination::Outside`).
    pub fn outside(text: &str) -> Target {
        if text.contains('@') {
            Target::Address(text.trim_start_matches("sip:").to_string())
        } else {
            Target::Number(text.to_string())
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Device(device) => f.write_str(&device.account),
            Target::Number(number) => f.write_str(number),
            Target::Address(address) => f.write_str(address),
        }
    }
}

/// A call for the network to place.
pub struct OutgoingCall {
    /// Who the called party sees calling: an address (`name@domain`) or a
    /// URI.
    pub from: String,
    pub target: Target,
    /// Where the new leg's events go.
    pub owner: Box<dyn LegSink>,
    /// A leg this one will likely be connected with (the caller a ringer
    /// rings for), so the network can keep their media together.
    pub near: Option<LegId>,
    /// The new leg's part in a call record: the network puts it on the
    /// leg as soon as it makes it.
    pub trace: Option<crate::cdr::Trace>,
}

impl fmt::Debug for OutgoingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingCall")
            .field("from", &self.from)
            .field("target", &self.target)
            .field("near", &self.near)
            .finish()
    }
}

/// The outside world of calls.
pub trait Network: Send + Sync {
    /// Places a call; the leg reports to the call's owner (ringing,
    /// answered, failed). Must be called on a shard (a task's thread): the
    /// leg's network end runs there.
    fn place_call(&self, call: OutgoingCall) -> Result<Leg, CallError>;

    /// Where `account` can be called now: its registered devices. Empty
    /// when none is registered.
    fn devices(&self, account: &Account) -> Vec<Device>;

    /// Stops taking and placing calls (shutdown, once calls have ended).
    fn close(&self) {}
}

/// A call that arrived, and where addressing said it goes (resolved once,
/// by the network that took it, which needed to know to authenticate).
#[derive(Debug)]
pub struct IncomingCall {
    pub leg: Leg,
    pub destination: Destination,
}

/// The handle a network hands new calls to the runtime through. Each shard
/// has its own, so a call's task runs on the shard that owns its dialog.
#[derive(Clone, Debug)]
pub struct IncomingCalls(mpsc::UnboundedSender<IncomingCall>);

impl IncomingCalls {
    /// A handle and the queue the runtime takes the calls from.
    pub fn channel() -> (IncomingCalls, mpsc::UnboundedReceiver<IncomingCall>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (IncomingCalls(sender), receiver)
    }

    /// Hands a call over; it comes back when the runtime has stopped.
    pub fn deliver(&self, call: IncomingCall) -> Result<(), Box<IncomingCall>> {
        self.0.send(call).map_err(|error| Box::new(error.0))
    }
}
