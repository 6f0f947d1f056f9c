//! Predicates on the events `ReadInput` returns (CGPL.md §7), and the event
//! names the runtime uses to build them.
//!
//! An event is a dictionary `{what = name; sender = task; parameter = x;}`.
//! System events (a hang-up, a response to an outgoing call...) have no
//! `sender`; events between tasks have one.

use super::{arg, function, Builtin};
use crate::value::{OpError, Value};

/// The peer hung up or a pending call was cancelled.
pub const DISCONNECT: &str = "Disconnect";
/// A provisional response to `StartCall`.
pub const CALL_PROVISION: &str = "CallProvision";
/// The final response to `StartCall`: no parameter when connected, an
/// error string when it failed.
pub const CALL_COMPLETED: &str = "CallCompleted";
/// Another task asks to bridge (`StartBridge`).
pub const START_BRIDGE: &str = "StartBridge";
/// The bridge was broken by the other side.
pub const BREAK_BRIDGE: &str = "BreakBridge";
/// Another task asks to transfer (`StartTransfer`).
pub const START_TRANSFER: &str = "StartTransfer";
/// The call was transferred away.
pub const CALL_TRANSFERRED: &str = "CallTransferred";
/// An INFO request arrived.
pub const CALL_INFO: &str = "CallInfo";
/// An instant message arrived.
pub const INSTANT_MESSAGE: &str = "InstantMessage";
/// An XMPP IQ arrived.
pub const XMPP_IQ: &str = "XMPPIQ";

pub(super) const TABLE: &[Builtin] = &[
    function("IsDisconnectEvent", 1, 1, "event", |_, args| {
        system(args, DISCONNECT)
    }),
    function("IsCallProvisionEvent", 1, 1, "event", |_, args| {
        system(args, CALL_PROVISION)
    }),
    function("IsCallCompletedEvent", 1, 1, "event", |_, args| {
        system(args, CALL_COMPLETED)
    }),
    function("IsStartBridgeEvent", 1, 1, "event", |_, args| {
        from_task(args, START_BRIDGE)
    }),
    function("IsBreakBridgeEvent", 1, 1, "event", |_, args| {
        is_named(args, BREAK_BRIDGE)
    }),
    function("IsStartTransferEvent", 1, 1, "event", |_, args| {
        from_task(args, START_TRANSFER)
    }),
    function("IsCallTransferredEvent", 1, 1, "event", |_, args| {
        system(args, CALL_TRANSFERRED)
    }),
    function("IsCallInfoEvent", 1, 1, "event", |_, args| {
        system(args, CALL_INFO)
    }),
    function("IsInstantMessageEvent", 1, 1, "event", |_, args| {
        system(args, INSTANT_MESSAGE)
    }),
    function("IsXMPPIQEvent", 1, 1, "event", |_, args| system(args, XMPP_IQ)),
];

/// The event's name and whether it has a sender, if it is an event.
fn parts(args: &[Value]) -> Option<(Value, bool)> {
    let Value::Dict(event) = arg(args, 0) else {
        return None;
    };
    Some((event.get(b"what"), event.get(b"sender").is_true()))
}

fn named(what: &Value, name: &str) -> bool {
    what.as_str_bytes() == Some(name.as_bytes())
}

fn system(args: &[Value], name: &str) -> Result<Value, OpError> {
    Ok(Value::from_bool(
        parts(args).is_some_and(|(what, sender)| !sender && named(&what, name)),
    ))
}

fn from_task(args: &[Value], name: &str) -> Result<Value, OpError> {
    Ok(Value::from_bool(
        parts(args).is_some_and(|(what, sender)| sender && named(&what, name)),
    ))
}

fn is_named(args: &[Value], name: &str) -> Result<Value, OpError> {
    Ok(Value::from_bool(
        parts(args).is_some_and(|(what, _)| named(&what, name)),
    ))
}
