//! Starting a task and the loop that drives it: run the VM, perform what it
//! waits on, resume, until it ends; then release its calls.

use std::collections::HashMap;
use std::sync::Arc;

use pbx_lang::bytecode::Program;
use pbx_lang::value::time::Clock;
use pbx_lang::value::{Portable, TaskId};
use pbx_lang::{Step, TaskOptions, Vm};

use super::host::TaskHost;
use super::input::Queue;
use crate::call::Leg;
use crate::directory::Account;
use crate::observe::Event;
use crate::runtime::Runtime;

/// Instructions a task runs before it lets others run.
const SLICE: u32 = 10_000;

/// What a new task runs.
pub struct Start {
    pub program: Arc<Program>,
    /// The program's name as found in its environment.
    pub shown: String,
    pub entry: u16,
    pub account: Arc<Account>,
    /// The call it handles, if any.
    pub leg: Option<Leg>,
    /// `Vars().startParameter`.
    pub parameters: Portable,
}

/// Starts a task on the current `LocalSet`; returns its ID.
pub fn start(runtime: &Runtime, start: Start) -> TaskId {
    let (id, sender, receiver) = runtime
        .registry
        .register(start.account.address(), start.shown.clone());
    if let Some(leg) = &start.leg {
        leg.set_owner(Some(Box::new(sender.clone())));
    }
    let clock: Arc<dyn Clock> = runtime.clock.clone();
    let options = TaskOptions {
        limits: runtime.limits.clone(),
        clock,
        zone: start.account.zone.clone(),
    };
    let vm = Vm::new(start.program, start.entry, start.parameters.to_value(), options);
    // A task with a call handles that call's record.
    let record = start
        .leg
        .as_ref()
        .and_then(|leg| leg.trace())
        .map(|trace| trace.record());
    if let Some(record) = record {
        runtime.records.handled_by(record, &start.shown, id.0);
        runtime.records.involve(record, &start.account.address());
    }
    runtime.observer.event(Event::TaskStarted {
        task: id,
        program: start.shown.clone(),
        account: start.account.address(),
    });
    if let Some(leg) = &start.leg {
        runtime.observer.event(Event::Call {
            task: id,
            what: format!(
                "incoming call from {} to {}",
                leg.info.remote_uri, leg.info.request_uri
            ),
        });
    }
    let host = TaskHost {
        runtime: runtime.clone(),
        id,
        sender,
        receiver,
        queue: Queue::default(),
        language: start.account.language.clone(),
        account: start.account,
        call: start.leg,
        program: start.shown,
        record,
        interrupt_on_dtmf: true,
        last_play: std::time::Duration::ZERO,
        last_play_completed: false,
        skip_next: std::time::Duration::ZERO,
        bridged_with: None,
        mixer: Vec::new(),
        pending_bridges: HashMap::new(),
        pending_transfers: HashMap::new(),
        options: HashMap::new(),
        stop_requested: false,
    };
    tokio::task::spawn_local(drive(vm, host));
    id
}

/// `spawn Entry(args)`: the same program, another entry, the same account.
pub(crate) fn spawn(
    runtime: &Runtime,
    program: Arc<Program>,
    entry: u16,
    account: Arc<Account>,
    parameters: Vec<Portable>,
) -> TaskId {
    let shown = program
        .functions()
        .get(usize::from(entry))
        .map_or_else(String::new, |function| function.title().to_owned());
    start(
        runtime,
        Start {
            program,
            shown,
            entry,
            account,
            leg: None,
            parameters: if parameters.is_empty() {
                Portable::Null
            } else {
                Portable::Array(parameters)
            },
        },
    )
}

async fn drive(mut vm: Vm, mut host: TaskHost) {
    if host.runtime.breaker.suspended(&host.program) {
        tracing::info!(task = host.id.0, program = %host.program, "refused: the program is suspended (its tasks keep running into limits)");
        refuse(&mut host);
        end(host, "refused: its program is suspended".to_string());
        return;
    }
    let how = loop {
        if host.stop_requested {
            break "stopped by the server".to_string();
        }
        match vm.run(&mut host, SLICE) {
            Step::Yield => tokio::task::yield_now().await,
            Step::Wait(op) => {
                // Boxed: a waiting task holds only what its one wait needs,
                // not room for the largest of all (mail, HTTP).
                let value = Box::pin(host.perform(op)).await;
                vm.resume(value);
            }
            Step::Finished => break "finished".to_string(),
            Step::Failed(diagnostic) => {
                if diagnostic.kind == pbx_lang::diagnostic::ErrorKind::Limit
                    && host.runtime.breaker.ended_at_limit(&host.program)
                {
                    tracing::warn!(
                        program = %host.program,
                        "{} suspended for {} s: {} of its tasks ran into limits within {} s",
                        host.program,
                        crate::breaker::SUSPENSION.as_secs(),
                        crate::breaker::TRIPS,
                        crate::breaker::WINDOW.as_secs()
                    );
                }
                host.runtime.observer.event(Event::Error {
                    task: host.id,
                    diagnostic,
                });
                break "ended by an error".to_string();
            }
        }
    };
    end(host, how);
}

/// A call to a suspended program: 503 while unanswered.
fn refuse(host: &mut TaskHost) {
    // Taken: the task's end must not answer it again (500).
    if let Some(leg) = host.call.take() {
        if matches!(
            leg.state,
            crate::call::LegState::Incoming | crate::call::LegState::Provisioned
        ) && !leg.outgoing
        {
            leg.send(crate::call::LegCommand::Reject {
                status: crate::call::Status::SERVICE_UNAVAILABLE,
            });
        }
    }
}

/// What every task does at its end, however it ended.
fn end(mut host: TaskHost, how: String) {
    // A task's calls end with it (CGPL.md §0.11): an unanswered incoming
    // call gets 500, an answered one BYE; bridges and mixers are broken.
    host.hang_up(None);
    for (_, handshake) in host.pending_bridges.drain().chain(host.pending_transfers.drain()) {
        handshake.answer(Err("the task ended".into()));
    }
    host.runtime.registry.remove(host.id);
    host.runtime
        .observer
        .event(Event::TaskEnded { task: host.id, how });
}
