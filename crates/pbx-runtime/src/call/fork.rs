//! One outgoing call to several devices at once (an account's phones, for
//! a task's `StartCall`): every device rings; the first to answer wins and
//! the others get CANCEL.
//!
//! The owner holds one leg, the fork's, while the branches ring: it hears
//! the first ringing, and the failure if every branch fails (busy if any
//! was). When a branch answers, that branch's leg is put in the fork leg's
//! successor slot and reports to the owner from then on; the owner takes
//! it in the fork leg's place (`Leg::take_successor`) before it reads the
//! report, so a bridge, a transfer or a hang-up reaches the phone that
//! answered itself, with no relay in between.

use std::sync::{Arc, Mutex};

use super::network::{Network, OutgoingCall, Target};
use super::{
    next_leg_id, CallError, Leg, LegCommand, LegEnd, LegEvent, LegInfo, LegReport, LegSink, LegState, Status,
};
use crate::queue;

/// Places a call from `from` to every target at once; the leg it returns
/// stands for all of them until one answers, and reports to `owner`.
/// `trace` gives each branch its part in the call record.
pub fn place(
    network: &dyn Network,
    from: &str,
    owner: Box<dyn LegSink>,
    targets: Vec<Target>,
    trace: impl Fn(&Target) -> Option<crate::cdr::Trace>,
) -> Result<Leg, CallError> {
    let (sender, reports) = queue::unbounded::<LegReport>();
    let mut branches = Vec::new();
    let mut refused = None;
    for target in targets {
        let placed = network.place_call(OutgoingCall {
            from: from.to_string(),
            trace: trace(&target),
            target,
            owner: Box::new(sender.clone()),
            near: None,
        });
        match placed {
            Ok(leg) => branches.push(leg),
            Err(error) => refused = Some(error),
        }
    }
    if branches.is_empty() {
        return Err(
            refused.unwrap_or_else(|| CallError::new(Status::TEMPORARILY_UNAVAILABLE, "nothing to ring"))
        );
    }
    let info = LegInfo {
        remote_uri: branches[0].info.remote_uri.clone(),
        local_uri: branches[0].info.local_uri.clone(),
        request_uri: branches[0].info.request_uri.clone(),
        transfer_supported: true,
        ..LegInfo::default()
    };
    let successor = Arc::new(Mutex::new(None));
    let (leg, end) = Leg::new(next_leg_id(), info, true, Some(owner));
    tokio::task::spawn_local(ring(end, branches, reports, successor.clone()));
    Ok(leg.with_successor(successor))
}

/// Rings the branches until one answers, all fail, or the owner cancels.
async fn ring(
    mut end: LegEnd,
    mut branches: Vec<Leg>,
    mut reports: queue::Receiver<LegReport>,
    successor: super::Successor,
) {
    let mut rung = false;
    let mut failure: Option<CallError> = None;
    loop {
        tokio::select! {
            command = end.commands.recv() => match command {
                // The owner hung up (or let go of the leg): every branch
                // is cancelled.
                None | Some(LegCommand::Disconnect { .. }) => {
                    for branch in &branches {
                        branch.send(LegCommand::Disconnect { reason: None });
                    }
                    return;
                }
                // Nothing else means anything before an answer.
                Some(_) => {}
            },
            report = reports.recv() => {
                let Some(LegReport { leg, event }) = report else { return };
                let Some(index) = branches.iter().position(|branch| branch.id == leg) else { continue };
                match event {
                    LegEvent::Provisional(status) if !rung => {
                        rung = true;
                        end.owner.report(LegEvent::Provisional(status));
                    }
                    LegEvent::Answered => {
                        let mut winner = branches.swap_remove(index);
                        for other in &branches {
                            other.send(LegCommand::Disconnect { reason: None });
                        }
                        winner.state = LegState::Connected;
                        let id = winner.id;
                        let relay = end.owner.relay();
                        winner.set_owner(Some(end.owner.relay()));
                        if let Ok(mut slot) = successor.lock() {
                            *slot = Some(winner);
                        }
                        relay.report(LegReport { leg: id, event: LegEvent::Answered });
                        return;
                    }
                    LegEvent::Failed(error) => {
                        branches.swap_remove(index);
                        // Busy somewhere is what the caller hears if
                        // nobody answers.
                        if failure.as_ref().is_none_or(|known| !known.status.is_busy()) {
                            failure = Some(error);
                        }
                    }
                    LegEvent::Disconnected => {
                        branches.swap_remove(index);
                    }
                    _ => {}
                }
                if branches.is_empty() {
                    let error = failure.unwrap_or_else(|| CallError::new(Status::TEMPORARILY_UNAVAILABLE, "no phone answered"));
                    end.owner.report(LegEvent::Failed(error));
                    return;
                }
            }
        }
    }
}
