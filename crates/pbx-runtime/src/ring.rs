//! Ringing an account (FEATURES.md §4): what happens to a call its rules
//! did not send elsewhere at once. The account's devices ring, with any
//! addresses a `fork` rule added; the first to answer is connected to the
//! caller and the others stop. If all are busy the `busy` rule applies; if
//! none answers in time, the `no answer` rule.
//!
//! No task runs meanwhile: the ringer owns the legs (DESIGN.md §3) until it
//! connects them, or hands the caller to whatever a rule chose.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::address::{self, Destination};
use crate::call::{Leg, LegCommand, LegEvent, LegReport, LegState, Media, OutgoingCall, Status, Target};
use crate::directory::Account;
use crate::observe::Event;
use crate::parlay::{Criterion, Decision};
use crate::queue;
use crate::rules::Action;
use crate::runtime::Runtime;

/// How long phones ring when no `no answer` rule says.
pub const LONGEST_RING: Duration = Duration::from_secs(60);

/// What to ring, and what the rules say to do when it does not work out.
pub(crate) struct Ringing {
    /// Who the called phones see calling (default: the caller's address).
    pub from: Option<String>,
    /// The account called (`None` when a rule's `fork` action rings
    /// addresses on its own).
    pub account: Option<Arc<Account>>,
    /// Devices, numbers and addresses to call.
    pub targets: Vec<Target>,
    pub no_answer: Option<(Duration, Action)>,
    pub busy: Option<Action>,
    /// How many times the call has been routed on already (against loops).
    pub depth: u8,
}

/// Counts the call as routed until dropped, so a runtime waiting for quiet
/// waits for it.
struct Routing(Runtime);

impl Drop for Routing {
    fn drop(&mut self) {
        self.0.registry.end_routing();
    }
}

/// How ringing ended.
enum Outcome {
    /// This branch answered.
    Answered(usize),
    Busy,
    NoAnswer,
    /// The caller hung up first.
    CallerLeft,
}

/// What to call for `targets` (addresses as written): an account's
/// registered devices, a number or address elsewhere as it is.
/// Applications cannot be rung; they are skipped, with a note.
pub(crate) fn expand(runtime: &Runtime, targets: &[String], home: Option<&Arc<Account>>) -> Vec<Target> {
    let mut expanded = Vec::new();
    for target in targets {
        match address::resolve(
            &runtime.directory,
            target,
            home.map(|account| account.domain.as_str()),
            home,
        ) {
            Ok(Destination::Account { account, .. }) => {
                expanded.extend(runtime.devices(&account).into_iter().map(Target::Device))
            }
            Ok(Destination::Outside(number)) => expanded.push(Target::outside(&number)),
            Ok(Destination::App { .. }) => note(runtime, format!("{target}: an application cannot be rung")),
            Err(error) => note(runtime, format!("{target}: {error}")),
        }
    }
    expanded
}

fn note(runtime: &Runtime, what: String) {
    runtime.observer.event(Event::Routing { what });
}

/// Starts ringing on the runtime's local executor: counted as routing from
/// now, so that nobody waiting for quiet misses it.
pub(crate) fn start(runtime: &Runtime, caller: Leg, plan: Ringing) {
    runtime.registry.start_routing();
    let routing = Routing(runtime.clone());
    tokio::task::spawn_local(ring(routing, caller, plan));
}

/// Rings, then connects the caller or acts on the rules.
async fn ring(routing: Routing, caller: Leg, plan: Ringing) {
    let runtime = routing.0.clone();
    let (sender, mut inputs) = queue::unbounded();
    caller.set_owner(Some(Box::new(sender.clone())));
    caller.send(LegCommand::Provision {
        status: Status::RINGING,
        media: false,
    });
    // A caller answered already (a script handed the call on) hears the
    // ringing from pbxd.
    let ringback = caller.state == LegState::Connected;
    if ringback {
        let (reply, _) = oneshot::channel();
        caller.send(LegCommand::Play {
            media: ringback_tone(),
            limit: Some(LONGEST_RING),
            reply,
        });
    }
    let from = plan
        .from
        .clone()
        .unwrap_or_else(|| caller.info.remote_uri.trim_start_matches("sip:").to_string());
    let mut branches: Vec<(String, Option<Leg>)> = Vec::new();
    for target in plan.targets {
        let shown = target.to_string();
        let trace = caller.trace().and_then(|trace| {
            let records = trace.records()?;
            let leg = records.outgoing(Some(trace.record()), &from, &shown);
            let account = match &target {
                Target::Device(device) => Some(device.account.as_str()),
                _ => None,
            };
            leg.reaches(account, None);
            Some(leg)
        });
        let call = OutgoingCall {
            from: from.clone(),
            target,
            owner: Box::new(sender.clone()),
            near: Some(caller.id),
            trace: trace.clone(),
        };
        match runtime.network.place_call(call) {
            Ok(leg) => {
                note(&runtime, format!("ringing {shown}"));
                branches.push((shown, Some(leg)));
            }
            Err(reason) => {
                // Not placed at all: the record says why.
                if let Some(trace) = &trace {
                    trace.reported(&LegEvent::Failed(reason.clone()));
                }
                note(&runtime, format!("{shown}: {reason}"));
            }
        }
    }
    let ring_for = plan.no_answer.as_ref().map_or(LONGEST_RING, |(after, _)| *after);
    let deadline = Instant::now() + ring_for;
    let mut busy = 0;
    let outcome = loop {
        let pending = branches.iter().filter(|(_, leg)| leg.is_some()).count();
        if pending == 0 {
            break if busy > 0 {
                Outcome::Busy
            } else {
                Outcome::NoAnswer
            };
        }
        tokio::select! {
            report = inputs.recv() => match report {
                Some(LegReport { leg, event: event @ (LegEvent::Answered | LegEvent::Failed(_)) }) => {
                    let Some(index) = branches.iter().position(|(_, branch)| branch.as_ref().is_some_and(|branch| branch.id == leg)) else { continue };
                    match event {
                        LegEvent::Failed(error) => {
                            if error.status.is_busy() {
                                busy += 1;
                            }
                            note(&runtime, format!("{}: {error}", branches[index].0));
                            branches[index].1 = None;
                        }
                        _ => break Outcome::Answered(index),
                    }
                }
                Some(LegReport { leg, event: LegEvent::Disconnected }) if leg == caller.id => break Outcome::CallerLeft,
                Some(_) => {}
                None => break Outcome::CallerLeft,
            },
            () = tokio::time::sleep_until(deadline) => break Outcome::NoAnswer,
        }
    };
    if ringback {
        caller.send(LegCommand::Stop);
    }
    // Whatever happened, the branches still ringing stop.
    let answered = match outcome {
        Outcome::Answered(index) => branches[index]
            .1
            .take()
            .map(|leg| (branches[index].0.clone(), leg)),
        _ => None,
    };
    for (_, leg) in branches.iter_mut() {
        if let Some(leg) = leg.take() {
            leg.send(LegCommand::Disconnect { reason: None });
        }
    }
    // A Parlay X client watching the account for this is told, or asked
    // (its answer decides, `Continue` leaving it to the rules).
    let criterion = match outcome {
        Outcome::Busy => Some(Criterion::Busy),
        Outcome::NoAnswer => Some(Criterion::NoAnswer),
        _ => None,
    };
    if let (Some(criterion), Some(account)) = (criterion, plan.account.clone()) {
        let who = account.address();
        if !runtime.parlay.watches(&who, criterion).is_empty() {
            match runtime
                .parlay_event(&who, criterion, &caller.info.remote_uri)
                .await
            {
                Decision::Continue => {}
                Decision::EndCall => return refuse(caller, Status::DECLINE),
                Decision::Route(targets) => {
                    return act(
                        &runtime,
                        caller,
                        Some(account),
                        Action::Divert(targets),
                        plan.depth,
                    )
                }
                Decision::Fork(targets) => {
                    return act(&runtime, caller, Some(account), Action::Fork(targets), plan.depth)
                }
            }
        }
    }
    match outcome {
        Outcome::Answered(_) => {
            if let Some((target, leg)) = answered {
                // The connected call goes on in a task of its own, small:
                // this one's room for ringing is freed.
                tokio::task::spawn_local(async move {
                    let runtime = routing.0.clone();
                    connect(&runtime, caller, target, leg, inputs).await;
                    drop(routing);
                });
            }
        }
        Outcome::CallerLeft => note(&runtime, "the caller hung up while it rang".into()),
        Outcome::Busy => match plan.busy.or_else(|| plan.no_answer.map(|(_, action)| action)) {
            Some(action) => {
                note(&runtime, format!("busy: {action}"));
                act(&runtime, caller, plan.account, action, plan.depth);
            }
            None => {
                note(&runtime, "busy".into());
                refuse(caller, Status::BUSY_HERE);
            }
        },
        Outcome::NoAnswer => match plan.no_answer {
            Some((after, action)) => {
                note(&runtime, format!("no answer in {} s: {action}", after.as_secs()));
                act(&runtime, caller, plan.account, action, plan.depth);
            }
            None => {
                note(&runtime, "no answer".into());
                refuse(caller, Status::TEMPORARILY_UNAVAILABLE);
            }
        },
    }
}

/// The ring-back tone: 425 Hz for a second, four seconds of silence.
fn ringback_tone() -> Media {
    static TONE: std::sync::OnceLock<Arc<[u8]>> = std::sync::OnceLock::new();
    let bytes = TONE.get_or_init(|| {
        let samples: Vec<i16> = (0..5 * 8000)
            .map(|index| {
                if index < 8000 {
                    let phase = 2.0 * std::f64::consts::PI * 425.0 * f64::from(index) / 8000.0;
                    (phase.sin() * 6000.0) as i16
                } else {
                    0
                }
            })
            .collect();
        Arc::from(pbx_media::wav::pcm16_mono(&samples, 8000))
    });
    Media::Data {
        bytes: bytes.clone(),
        length: Duration::from_secs(5),
    }
}

/// Answers the caller, connects it with the branch that answered, and
/// hangs up either side when the other does.
async fn connect(
    runtime: &Runtime,
    caller: Leg,
    target: String,
    callee: Leg,
    mut inputs: queue::Receiver<LegReport>,
) {
    let (reply, answer) = oneshot::channel();
    caller.send(LegCommand::Accept { reply });
    if let Err(reason) = answer.await.unwrap_or_else(|_| Err("the caller is gone".into())) {
        note(
            runtime,
            format!("{target} answered, but the caller could not be: {reason}"),
        );
        callee.send(LegCommand::Disconnect { reason: None });
        return;
    }
    caller.send(LegCommand::Bridge(Some(callee.handle())));
    callee.send(LegCommand::Bridge(Some(caller.handle())));
    note(runtime, format!("{target} answered; connected"));
    while let Some(report) = inputs.recv().await {
        match report {
            LegReport {
                leg,
                event: LegEvent::Disconnected,
            } if leg == caller.id => {
                callee.send(LegCommand::Disconnect { reason: None });
                note(runtime, "the caller hung up".into());
                return;
            }
            LegReport {
                leg,
                event: LegEvent::Disconnected,
            } if leg == callee.id => {
                caller.send(LegCommand::Disconnect { reason: None });
                note(runtime, format!("{target} hung up"));
                return;
            }
            _ => {}
        }
    }
}

fn refuse(caller: Leg, status: Status) {
    caller.send(LegCommand::Reject { status });
}

/// Does what a rule said once ringing did not work out.
fn act(runtime: &Runtime, caller: Leg, account: Option<Arc<Account>>, action: Action, depth: u8) {
    if let Err(error) = runtime.act(caller, account, action, depth + 1) {
        note(runtime, error.to_string());
    }
}
