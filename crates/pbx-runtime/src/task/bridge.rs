//! CGPL.md §7.4: bridges, mixers and transfers between tasks.
//!
//! Each is a handshake: one task asks (`StartBridge`, `StartTransfer`) and
//! waits; the other gets a special event and answers (`AcceptBridge`,
//! `AttachMixer`, `RejectBridge`, `AcceptTransfer`, `RejectTransfer`). The
//! asking task passes a [`LegHandle`] so the answering one can connect the
//! two legs' media or join their peers; each task keeps owning its own leg
//! (DESIGN.md §3) until a transfer takes both away.

use pbx_lang::builtins::HostFn;
use pbx_lang::value::{Array, TaskId, Value};
use pbx_lang::HostOutcome;
use tokio::sync::oneshot;

use super::host::{arg, destination, done, error_string, event_sender, fail, null, text_arg, TaskHost};
use super::ops::Op;
use super::TaskInput;
use crate::call::{LegCommand, LegEvent, LegReport, LegState, MixerCommand, MuteMode};
use crate::observe::Event;

impl TaskHost {
    fn has_call(&self) -> bool {
        matches!(
            self.state(),
            LegState::Incoming | LegState::Provisioned | LegState::Connected
        )
    }

    fn note(&self, what: String) {
        self.event(Event::Call { task: self.id, what });
    }

    // ------------------------------------------------------------ asking

    pub(super) fn start_bridge(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let Value::Task(target) = arg(args, 0) else {
            return error_string("the argument must be a task handle");
        };
        if !self.has_call() {
            return error_string("this task has no call to bridge");
        }
        if !self.mixer.is_empty() {
            return error_string("a task with a mixer cannot bridge");
        }
        HostOutcome::Wait(Op::StartBridge(*target))
    }

    /// `StartBridge`: asks `target` and waits; on success an unanswered call
    /// is answered and the media is the other task's business.
    pub(super) async fn bridge_with(&mut self, target: TaskId) -> Value {
        let (reply, answer) = oneshot::channel();
        let leg = self.call.as_ref().map(|leg| leg.handle());
        let input = TaskInput::StartBridge {
            from: self.id,
            leg,
            reply,
        };
        if !self.runtime.registry.send(target, input) {
            return Value::str("no such task");
        }
        if let Err(reason) = self.wait_for(answer).await {
            return Value::from(reason);
        }
        if matches!(self.state(), LegState::Incoming | LegState::Provisioned) {
            let answered = self.accept_call().await;
            if !answered.is_null() {
                return answered;
            }
        }
        self.bridged_with = Some(target);
        self.note(format!("bridged with task {}", target.0));
        Value::Null
    }

    /// Waits for another task's answer, taking in what arrives meanwhile;
    /// losing the call ends the wait.
    async fn wait_for(&mut self, mut answer: oneshot::Receiver<Result<(), String>>) -> Result<(), String> {
        loop {
            tokio::select! {
                result = &mut answer => return result.unwrap_or_else(|_| Err("the other task ended".into())),
                input = self.receiver.recv() => {
                    match input {
                        Some(input) => self.absorb(input),
                        None => return Err("the task is ending".into()),
                    }
                    if !self.has_call() {
                        return Err("the call was disconnected".into());
                    }
                    if self.stop_requested {
                        return Err("the task is ending".into());
                    }
                }
            }
        }
    }

    pub(super) fn start_transfer(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let Value::Task(target) = arg(args, 0) else {
            return error_string("the argument must be a task handle");
        };
        if self.state() != LegState::Connected {
            return error_string("this task has no connected call to transfer");
        }
        HostOutcome::Wait(Op::StartTransfer(*target))
    }

    /// `StartTransfer`: asks `target` to take this task's peer; on success
    /// the peer talks to the other task's peer and this task's call is over.
    pub(super) async fn transfer_to_task(&mut self, target: TaskId) -> Value {
        let Some(leg) = self.call.as_ref().map(|leg| leg.handle()) else {
            return Value::str("this task has no call to transfer");
        };
        let (reply, answer) = oneshot::channel();
        let input = TaskInput::StartTransfer {
            from: self.id,
            leg,
            reply,
        };
        if !self.runtime.registry.send(target, input) {
            return Value::str("no such task");
        }
        match self.wait_for(answer).await {
            Ok(()) => {
                self.lose_call(format!("the peer was transferred to task {}'s peer", target.0));
                Value::Null
            }
            Err(reason) => Value::from(reason),
        }
    }

    pub(super) fn transfer_call(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let target = destination(arg(args, 0));
        let Some(target) = target else {
            return fail("TransferCall: the destination must be an address");
        };
        match self.call.as_ref() {
            Some(leg) if leg.state == LegState::Connected && leg.info.transfer_supported => {
                HostOutcome::Wait(Op::Transfer(target))
            }
            Some(leg) if leg.state == LegState::Connected => error_string("the peer does not take transfers"),
            _ => error_string("this task has no connected call to transfer"),
        }
    }

    /// `TransferCall`: the peer calls `target` itself (blind transfer).
    pub(super) async fn transfer(&mut self, target: String) -> Value {
        let Some(leg) = self.call.as_ref() else {
            return Value::str("this task has no call to transfer");
        };
        let destination = match crate::address::resolve(
            &self.runtime.directory,
            &target,
            Some(&self.account.domain),
            Some(&self.account),
        ) {
            Ok(destination) => destination,
            Err(error) => {
                self.note(format!("transfer to {target} failed: {error}"));
                return Value::from(format!("`{target}` cannot be reached"));
            }
        };
        let (reply, answer) = oneshot::channel();
        leg.send(LegCommand::Transfer {
            target: destination,
            reply,
        });
        match self.wait_for(answer).await {
            Ok(()) => {
                self.lose_call(format!("the peer was transferred to {target}"));
                Value::Null
            }
            Err(reason) => {
                self.note(format!("transfer to {target} failed: {reason}"));
                Value::from(reason)
            }
        }
    }

    /// The call left this task through a transfer: nothing to hang up.
    fn lose_call(&mut self, what: String) {
        if let Some(leg) = self.call.as_mut() {
            leg.state = LegState::Disconnected;
        }
        if let Some(peer) = self.bridged_with.take() {
            self.runtime
                .registry
                .send(peer, TaskInput::BreakBridge { from: self.id });
        }
        self.note(what);
    }

    pub(super) fn start_bridged_call(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let target = destination(arg(args, 0));
        let Some(target) = target else {
            return fail("StartBridgedCall: the destination must be an address");
        };
        let Some(from) = event_sender(arg(args, 1)) else {
            return fail("StartBridgedCall: the second argument must be a StartBridge event");
        };
        if self.has_call() {
            return error_string("the task already has a call");
        }
        if !self.pending_bridges.contains_key(&from) {
            return error_string("that task no longer asks to bridge");
        }
        HostOutcome::Wait(Op::StartBridgedCall { target, from })
    }

    /// `StartBridgedCall`: calls `target` for the task that asked to bridge,
    /// relaying ringing to its caller; answered, the two are bridged. If the
    /// call fails the request stays to be answered another way; if the
    /// asking task goes, the call is cancelled.
    pub(super) async fn call_for(&mut self, target: String, from: TaskId) -> Value {
        let Some(mut handshake) = self.pending_bridges.remove(&from) else {
            return Value::str("that task no longer asks to bridge");
        };
        let leg = match self.place_call(&target) {
            Ok(leg) => leg,
            Err(reason) => {
                self.pending_bridges.insert(from, handshake);
                return Value::from(reason);
            }
        };
        self.call = Some(leg);
        let outcome = loop {
            tokio::select! {
                () = handshake.reply.closed() => break Err(None),
                input = self.receiver.recv() => {
                // A fork's answered branch takes the fork leg's place.
                self.adopt_successor();
                let id = self.call.as_ref().map(|leg| leg.id);
                match input {
                    Some(TaskInput::Leg(LegReport { leg, event: LegEvent::Provisional(status) })) if Some(leg) == id => {
                        if let Some(caller) = &handshake.leg {
                            caller.send(LegCommand::Provision { status, media: false });
                        }
                    }
                    Some(TaskInput::Leg(LegReport { leg, event: LegEvent::Answered })) if Some(leg) == id => break Ok(None),
                    Some(TaskInput::Leg(LegReport { leg, event: LegEvent::Failed(error) })) if Some(leg) == id => {
                        break Ok(Some(error.to_string()))
                    }
                    Some(input) => {
                        self.absorb(input);
                        if self.stop_requested {
                            break Err(Some("the task is ending".to_string()));
                        }
                    }
                    None => break Err(Some("the task is ending".to_string())),
                }
                }
            }
        };
        match outcome {
            Ok(None) => {
                if let Some(leg) = self.call.as_mut() {
                    leg.state = LegState::Connected;
                    if let Some(caller) = &handshake.leg {
                        leg.send(LegCommand::Bridge(Some(caller.clone())));
                        caller.send(LegCommand::Bridge(Some(leg.handle())));
                    }
                }
                handshake.answer(Ok(()));
                self.bridged_with = Some(from);
                self.note(format!("{target} answered; bridged with task {}", from.0));
                Value::Null
            }
            Ok(Some(error)) => {
                if let Some(leg) = self.call.as_mut() {
                    leg.state = LegState::Disconnected;
                }
                self.note(format!("{target}: {error}"));
                self.pending_bridges.insert(from, handshake);
                Value::from(error)
            }
            Err(reason) => {
                self.hang_up(None);
                match reason {
                    Some(reason) => Value::from(reason),
                    None => {
                        // The asking task went: as if it had broken the bridge.
                        self.absorb(TaskInput::BreakBridge { from });
                        Value::str("the other task ended")
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------ answering

    pub(super) fn accept_bridge(&mut self, args: &[Value], mixer: bool) -> HostOutcome<Op> {
        let name = if mixer { "AttachMixer" } else { "AcceptBridge" };
        let Some(from) = event_sender(arg(args, 0)) else {
            return fail(format!("{name}: the argument must be a StartBridge event"));
        };
        let Some(handshake) = self.pending_bridges.remove(&from) else {
            return error_string("that task no longer asks to bridge");
        };
        if !matches!(self.state(), LegState::Connected | LegState::Provisioned) {
            handshake.answer(Err("the other task has no connected call".into()));
            return error_string("this task has no connected call");
        }
        // A task with a conference attaches rather than bridges.
        if mixer || !self.mixer.is_empty() {
            if let (Some(own), Some(theirs)) = (&self.call, &handshake.leg) {
                own.send(LegCommand::Mixer(MixerCommand::Attach(theirs.clone())));
            }
            let attached = handshake.leg.as_ref().map(|leg| leg.id);
            handshake.answer(Ok(()));
            self.mixer.push((from, attached));
            self.note(format!(
                "task {} joined the mixer ({} attached)",
                from.0,
                self.mixer.len()
            ));
            return null();
        }
        if self.bridged_with.is_some() {
            handshake.answer(Err("the other task is bridged already".into()));
            return error_string("this task is bridged already");
        }
        if let (Some(own), Some(theirs)) = (&self.call, &handshake.leg) {
            own.send(LegCommand::Bridge(Some(theirs.clone())));
            theirs.send(LegCommand::Bridge(Some(own.handle())));
        }
        handshake.answer(Ok(()));
        self.bridged_with = Some(from);
        self.note(format!("bridged with task {}", from.0));
        null()
    }

    pub(super) fn reject_bridge(&mut self, args: &[Value]) -> HostOutcome<Op> {
        self.refuse(args, HostFn::RejectBridge)
    }

    pub(super) fn reject_transfer(&mut self, args: &[Value]) -> HostOutcome<Op> {
        self.refuse(args, HostFn::RejectTransfer)
    }

    /// `RejectBridge`/`RejectTransfer`: the asking task gets `error`.
    fn refuse(&mut self, args: &[Value], which: HostFn) -> HostOutcome<Op> {
        let (pending, kind) = match which {
            HostFn::RejectTransfer => (&mut self.pending_transfers, "StartTransfer"),
            _ => (&mut self.pending_bridges, "StartBridge"),
        };
        let Some(from) = event_sender(arg(args, 0)) else {
            return fail(format!("the argument must be a {kind} event"));
        };
        let reason = text_arg(args, 1).unwrap_or_else(|| "rejected".into());
        match pending.remove(&from) {
            Some(handshake) => {
                handshake.answer(Err(reason));
                null()
            }
            None => error_string(format!("that task no longer asks ({kind})")),
        }
    }

    pub(super) fn accept_transfer(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let Some(from) = event_sender(arg(args, 0)) else {
            return fail("AcceptTransfer: the argument must be a StartTransfer event");
        };
        if !self.pending_transfers.contains_key(&from) {
            return error_string("that task no longer asks to transfer");
        }
        if self.state() != LegState::Connected {
            if let Some(handshake) = self.pending_transfers.remove(&from) {
                handshake.answer(Err("the other task has no connected call".into()));
            }
            return error_string("this task has no connected call");
        }
        HostOutcome::Wait(Op::AcceptTransfer(from))
    }

    /// `AcceptTransfer`: the two peers are joined and both tasks lose their
    /// calls.
    pub(super) async fn join_peers(&mut self, from: TaskId) -> Value {
        let (Some(handshake), Some(leg)) = (self.pending_transfers.remove(&from), self.call.as_ref()) else {
            return Value::str("that task no longer asks to transfer");
        };
        let Some(other) = handshake.leg.clone() else {
            handshake.answer(Err("the other task has no call".into()));
            return Value::str("the other task has no call");
        };
        let (reply, answer) = oneshot::channel();
        leg.send(LegCommand::Join { other, reply });
        let result = answer.await.unwrap_or_else(|_| Err("the call is gone".into()));
        handshake.answer(result.clone());
        match result {
            Ok(()) => {
                self.lose_call(format!("joined its peer with task {}'s peer", from.0));
                Value::Null
            }
            Err(reason) => Value::from(reason),
        }
    }

    pub(super) fn break_bridge(&mut self) -> HostOutcome<Op> {
        match self.bridged_with.take() {
            Some(peer) => {
                if let Some(leg) = &self.call {
                    leg.send(LegCommand::Bridge(None));
                }
                self.runtime
                    .registry
                    .send(peer, TaskInput::BreakBridge { from: self.id });
                self.note(format!("bridge with task {} broken", peer.0));
                null()
            }
            None => error_string("the call is not bridged"),
        }
    }

    // ------------------------------------------------------------ mixer

    pub(super) fn detach(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let chosen = |task: &TaskId| match arg(args, 0) {
            Value::Task(one) => one == task,
            _ => true,
        };
        let (detached, kept) = std::mem::take(&mut self.mixer)
            .into_iter()
            .partition::<Vec<_>, _>(|(task, _)| chosen(task));
        self.mixer = kept;
        for (task, leg) in detached {
            if let (Some(own), Some(leg)) = (&self.call, leg) {
                own.send(LegCommand::Mixer(MixerCommand::Detach(leg)));
            }
            self.runtime
                .registry
                .send(task, TaskInput::BreakBridge { from: self.id });
            self.note(format!("task {} left the mixer", task.0));
        }
        null()
    }

    pub(super) fn mixer_attached(&self) -> HostOutcome<Op> {
        if self.mixer.is_empty() {
            return null();
        }
        done(Value::Array(Array::from_vec(
            self.mixer.iter().map(|(task, _)| Value::Task(*task)).collect(),
        )))
    }

    /// `MuteMixer(task|null, flag)`: a flag mutes or unmutes; the strings
    /// `special`, `hearsSpecial`, `hearsMute` and `hearsNormal` set how the
    /// participant hears and is heard.
    pub(super) fn mute(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let mode = match text_arg(args, 1) {
            Some(word) => match word.to_ascii_lowercase().as_str() {
                "special" => MuteMode::Special,
                "hearsspecial" => MuteMode::HearsSpecial,
                "hearsmute" => MuteMode::HearsMute,
                "hearsnormal" => MuteMode::HearsNormal,
                _ => MuteMode::Muted(arg(args, 1).is_true()),
            },
            None => MuteMode::Muted(arg(args, 1).is_true()),
        };
        let targets: Vec<(TaskId, Option<u64>)> = match arg(args, 0) {
            // A procedure: a task not attached is left alone.
            Value::Task(task) => self
                .mixer
                .iter()
                .filter(|(attached, _)| attached == task)
                .copied()
                .collect(),
            _ => self.mixer.clone(),
        };
        for (task, leg) in targets {
            if let (Some(own), Some(leg)) = (&self.call, leg) {
                own.send(LegCommand::Mixer(MixerCommand::Mute { leg, mode }));
            }
            let what = match mode {
                MuteMode::Muted(true) => "muted".to_string(),
                MuteMode::Muted(false) => "unmuted".to_string(),
                other => format!("set to {other:?}"),
            };
            self.note(format!("task {} {what} in the mixer", task.0));
        }
        null()
    }
}
