//! The built-ins that need the server (CGPL.md §6.8–§7), bound to a task:
//! those that answer at once return their value; those that wait describe
//! an [`Op`] the task's loop performs (`ops.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pbx_lang::builtins::{Ctx, HostFn};
use pbx_lang::bytecode::Program;
use pbx_lang::value::{text, Array, Bytes, Dict, OpError, Portable, TaskId, Value};
use pbx_lang::{Host, HostOutcome};
use pbx_media::wav;

use super::input::{Queue, QueuedEvent};
use super::ops::Op;
use super::TaskInput;
use crate::call::{
    Leg, LegCommand, LegEvent, LegHandle, LegId, LegReport, LegState, Media, MixerCommand, OutgoingCall,
    Reply, Status, Target,
};
use crate::directory::Account;
use crate::env::Kind;
use crate::observe::Event;
use crate::runtime::Runtime;
use crate::{address, http, mail};

/// Longest a single `PlayFile`/`PlayTone` may ask to play, and `Record` to
/// record: an hour.
const LONGEST_MEDIA: Duration = Duration::from_secs(3600);

/// The per-task state the built-ins work on.
pub(crate) struct TaskHost {
    pub runtime: Runtime,
    pub id: TaskId,
    /// This task's own input queue sender (given to legs it creates).
    pub sender: super::InputSender,
    pub receiver: super::InputQueue,
    pub queue: Queue,
    /// The account the task runs for (`Impersonate` changes it).
    pub account: Arc<Account>,
    /// The prompt language; `None` is English.
    pub language: Option<String>,
    /// The task's call, if any.
    pub call: Option<Leg>,
    /// The program, as shown (for call records).
    pub program: String,
    /// The call record this task's calls go in (its incoming call's, or
    /// that of the first call it placed).
    pub record: Option<i64>,
    pub interrupt_on_dtmf: bool,
    /// How long the last prompt played, and whether it completed.
    pub last_play: Duration,
    pub last_play_completed: bool,
    /// `SetPlayPosition`: skipped at the start of the next prompt.
    pub skip_next: Duration,
    /// The task whose call is bridged with this one's.
    pub bridged_with: Option<TaskId>,
    /// Tasks attached to this task's mixer (a conference), with their legs.
    pub mixer: Vec<(TaskId, Option<LegId>)>,
    /// `StartBridge` requests waiting for this task's answer.
    pub pending_bridges: HashMap<TaskId, Handshake>,
    /// `StartTransfer` requests waiting for this task's answer.
    pub pending_transfers: HashMap<TaskId, Handshake>,
    /// Set by `SignalOption` and `MediaOption`.
    pub options: HashMap<String, Portable>,
    /// Whether the runtime asked the task to end.
    pub stop_requested: bool,
}

/// A request of another task (bridge, transfer) waiting for an answer.
pub(crate) struct Handshake {
    /// The asking task's leg, to connect with.
    pub leg: Option<LegHandle>,
    pub reply: Reply,
}

impl Handshake {
    /// Gives the asking task its answer.
    pub fn answer(self, result: Result<(), String>) {
        let _ = self.reply.send(result);
    }
}

pub(super) fn arg(args: &[Value], index: usize) -> &Value {
    const NULL: &Value = &Value::Null;
    args.get(index).unwrap_or(NULL)
}

pub(super) fn text_arg(args: &[Value], index: usize) -> Option<String> {
    arg(args, index)
        .as_str_bytes()
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

pub(super) fn error_string(message: impl Into<String>) -> HostOutcome<Op> {
    HostOutcome::Done(Value::from(message.into()))
}

pub(super) fn done(value: Value) -> HostOutcome<Op> {
    HostOutcome::Done(value)
}

pub(super) fn null() -> HostOutcome<Op> {
    HostOutcome::Done(Value::Null)
}

pub(super) fn fail(message: impl Into<String>) -> HostOutcome<Op> {
    HostOutcome::Fail(OpError::call(message))
}

/// Milliseconds to a duration, capped.
fn millis(value: &Value) -> Option<Duration> {
    value
        .as_num()
        .filter(|ms| *ms > 0)
        .map(|ms| Duration::from_millis(ms as u64).min(LONGEST_MEDIA))
}

impl TaskHost {
    pub(super) fn event(&self, event: Event) {
        self.runtime.observer.event(event);
    }

    pub(super) fn domain(&self) -> &str {
        &self.account.domain
    }

    pub(super) fn state(&self) -> LegState {
        self.call.as_ref().map_or(LegState::Disconnected, |leg| leg.state)
    }

    /// Takes what arrived into the queues and the task's state.
    pub fn absorb(&mut self, input: TaskInput) {
        match input {
            TaskInput::Leg(report) => self.absorb_leg(report),
            TaskInput::Event {
                name,
                sender,
                parameter,
            } => {
                self.event(Event::TaskEvent {
                    task: self.id,
                    name: name.clone(),
                    from: sender,
                });
                self.queue.events.push_back(QueuedEvent {
                    name,
                    sender,
                    parameter,
                });
            }
            TaskInput::StartBridge { from, leg, reply } => {
                self.pending_bridges.insert(from, Handshake { leg, reply });
                self.queue_from(from, pbx_lang::builtins::events::START_BRIDGE);
            }
            TaskInput::StartTransfer { from, leg, reply } => {
                self.pending_transfers.insert(
                    from,
                    Handshake {
                        leg: Some(leg),
                        reply,
                    },
                );
                self.queue_from(from, pbx_lang::builtins::events::START_TRANSFER);
            }
            TaskInput::BreakBridge { from } => {
                if self.bridged_with == Some(from) {
                    self.bridged_with = None;
                    if let Some(leg) = &self.call {
                        leg.send(LegCommand::Bridge(None));
                    }
                }
                if let Some(index) = self.mixer.iter().position(|(task, _)| *task == from) {
                    let (_, attached) = self.mixer.remove(index);
                    if let (Some(leg), Some(attached)) = (&self.call, attached) {
                        leg.send(LegCommand::Mixer(MixerCommand::Detach(attached)));
                    }
                }
                self.queue_from(from, pbx_lang::builtins::events::BREAK_BRIDGE);
            }
            TaskInput::Stop => self.stop_requested = true,
        }
    }

    /// What happened on the task's call: DTMF, progress, the end.
    fn absorb_leg(&mut self, report: LegReport) {
        self.adopt_successor();
        let task = self.id;
        let Some(call) = self.call.as_mut().filter(|call| call.id == report.leg) else {
            // A leg the task let go of (a transfer, a fork answered
            // elsewhere) may still say something: it is not the task's.
            return;
        };
        match report.event {
            LegEvent::Dtmf(symbol) => {
                self.event(Event::Dtmf { task, symbol });
                self.queue.dtmf.push_back(symbol);
            }
            LegEvent::Disconnected => {
                if call.state != LegState::Disconnected {
                    let pending = call.state != LegState::Connected;
                    call.state = LegState::Disconnected;
                    self.runtime.observer.event(Event::Call {
                        task,
                        what: if pending {
                            "the call was cancelled".into()
                        } else {
                            "the peer hung up".into()
                        },
                    });
                    self.queue.events.push_back(QueuedEvent::system(
                        pbx_lang::builtins::events::DISCONNECT,
                        Portable::Null,
                    ));
                }
            }
            LegEvent::Provisional(status) => {
                call.state = LegState::Provisioned;
                self.queue.events.push_back(QueuedEvent::system(
                    pbx_lang::builtins::events::CALL_PROVISION,
                    Portable::Num(i64::from(status.code())),
                ));
            }
            LegEvent::Answered | LegEvent::Failed(_) => {
                let error = match report.event {
                    LegEvent::Failed(error) => Some(error.to_string()),
                    _ => None,
                };
                call.state = if error.is_none() {
                    LegState::Connected
                } else {
                    LegState::Disconnected
                };
                self.queue.events.push_back(QueuedEvent::system(
                    pbx_lang::builtins::events::CALL_COMPLETED,
                    error.map_or(Portable::Null, |error| Portable::str(&error)),
                ));
            }
            LegEvent::AnsweredElsewhere { by } => {
                call.state = LegState::Disconnected;
                self.runtime.observer.event(Event::Call {
                    task,
                    what: format!("{by} answered the forked call"),
                });
                self.queue.events.push_back(QueuedEvent::system(
                    pbx_lang::builtins::events::DISCONNECT,
                    Portable::Null,
                ));
            }
        }
    }

    /// Takes the phone that answered a fork in the fork leg's place: it
    /// reports to this task from then on (`call::fork`).
    pub(super) fn adopt_successor(&mut self) {
        let Some(next) = self.call.as_ref().and_then(Leg::take_successor) else {
            return;
        };
        if self.state() == LegState::Disconnected {
            // The task let go of the call before the answer reached it:
            // the phone that answered is hung up.
            next.send(LegCommand::Disconnect { reason: None });
            return;
        }
        self.call = Some(next);
    }

    /// Queues a special event (`StartBridge`…) from another task.
    fn queue_from(&mut self, from: TaskId, name: &str) {
        self.event(Event::TaskEvent {
            task: self.id,
            name: name.into(),
            from: Some(from),
        });
        self.queue.events.push_back(QueuedEvent {
            name: name.into(),
            sender: Some(from),
            parameter: Portable::Null,
        });
    }

    /// Takes everything already waiting in the channel.
    pub fn drain(&mut self) {
        while let Some(input) = self.receiver.try_recv() {
            self.absorb(input);
        }
    }

    // ------------------------------------------------------------ §6.8

    fn preferences(&self, args: &[Value]) -> HostOutcome<Op> {
        let Some(key) = text_arg(args, 0) else {
            return fail("GetAccountPreferences: the key must be a string");
        };
        let (account, key) = match self.other_account(&key) {
            Ok(found) => found,
            Err(message) => return error_string(message),
        };
        if key.is_empty() {
            let entries = account
                .preferences()
                .into_iter()
                .map(|(key, value)| (Bytes::from(key.as_str()), value))
                .collect();
            return done(Portable::Dict(entries, false).to_value());
        }
        done(account.preference(&key).to_value())
    }

    /// `~user/key` names another account's preference (for the `pbx`
    /// account, which acts for every account of its domain).
    fn other_account(&self, key: &str) -> Result<(Arc<Account>, String), String> {
        let Some(rest) = key.strip_prefix('~') else {
            return Ok((self.account.clone(), key.to_string()));
        };
        let (user, key) = rest.split_once('/').unwrap_or((rest, ""));
        Ok((self.account_acted_for(user, "preferences")?, key.to_string()))
    }

    /// The account `user` (or `user@domain`), if this task's account may
    /// act for it; else why not (`what`: what the task wanted of it).
    pub(super) fn account_acted_for(&self, user: &str, what: &str) -> Result<Arc<Account>, String> {
        let (user, domain) = user.split_once('@').unwrap_or((user, self.domain()));
        let account = self
            .runtime
            .directory
            .find(user, domain)
            .ok_or_else(|| format!("unknown account {user}@{domain}"))?;
        if !self.account.may_act_for(&account) {
            return Err(format!("no right to another account's {what}"));
        }
        Ok(account)
    }

    fn set_preferences(&self, args: &[Value]) -> HostOutcome<Op> {
        let Some(key) = text_arg(args, 1) else {
            return fail("SetAccountPreferences: the key must be a string");
        };
        let (account, key) = match self.other_account(&key) {
            Ok(found) => found,
            Err(message) => return error_string(message),
        };
        let value = match arg(args, 0).to_portable() {
            Ok(value) => value,
            Err(error) => return HostOutcome::Fail(error),
        };
        let settings = match (key.is_empty(), value) {
            (true, Portable::Dict(entries, _)) => entries
                .into_iter()
                .map(|(key, value)| (key.to_str_lossy().into_owned(), value))
                .collect(),
            (true, _) => return error_string("an empty key needs a dictionary of preferences"),
            (false, value) => vec![(key, value)],
        };
        // Kept in the store too: they outlast a restart.
        for (key, value) in settings {
            if let Err(error) = self
                .runtime
                .storage
                .keep_preference(&account.address(), &key, &value)
            {
                return error_string(error.to_string());
            }
            account.set_preference(&key, value);
        }
        null()
    }

    fn route_address(&self, args: &[Value]) -> HostOutcome<Op> {
        let Some(target) = text_arg(args, 0) else {
            return error_string("the address must be a string");
        };
        let dict = Dict::new();
        let set = |key: &str, value: &str| {
            let _ = dict.set(Bytes::from(key), Value::str(value));
        };
        match address::resolve(
            &self.runtime.directory,
            &target,
            Some(self.domain()),
            Some(&self.account),
        ) {
            Ok(address::Destination::App { app, account, .. }) => {
                set("module", "PBX");
                set("host", &account.domain);
                set("object", &format!("{app}#{}", account.name));
            }
            Ok(address::Destination::Account { account, .. }) => {
                set("module", "LOCAL");
                set("host", &account.domain);
                set("object", &account.name);
            }
            Ok(address::Destination::Outside(number)) => {
                set("module", "SIP");
                set("host", "");
                set("object", &number);
            }
            Err(error) => return error_string(error.to_string()),
        }
        done(Value::Dict(dict))
    }

    fn impersonate(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let Some(target) = text_arg(args, 0) else {
            return error_string("the address must be a string");
        };
        match address::resolve(
            &self.runtime.directory,
            &target,
            Some(self.domain()),
            Some(&self.account),
        ) {
            Ok(address::Destination::Account { account, .. } | address::Destination::App { account, .. }) => {
                if !self.account.may_act_for(&account) {
                    return error_string("no right to impersonate another account");
                }
                self.language = account.language.clone();
                self.account = account;
                null()
            }
            Ok(address::Destination::Outside(_)) => error_string("not a local account"),
            Err(error) => error_string(error.to_string()),
        }
    }

    // ------------------------------------------------------------ media

    /// The prompt `PlayFile(name)` plays, or why not. A name that would
    /// leave the environment is an error of the script (`Err(Ok)`); a file
    /// that cannot be played is `Err(Err(reason))`.
    pub(super) fn prompt(&self, name: &str) -> Result<Option<Media>, Result<OpError, String>> {
        let found = self
            .runtime
            .environments
            .find(self.domain(), self.language.as_deref(), name, Kind::Audio)
            .map_err(|error| Ok(OpError::call(format!("PlayFile: {error}"))))?;
        let Some(found) = found else { return Ok(None) };
        let prompt = self
            .runtime
            .prompts
            .get(&found.path)
            .map_err(|error| Err(format!("{}: {error}", found.shown)))?;
        Ok(Some(Media::File {
            prompt,
            shown: found.shown,
        }))
    }

    /// Whether playing should not even start (CGPL.md §7.3).
    fn play_suppressed(&mut self) -> bool {
        self.drain();
        !matches!(self.state(), LegState::Connected | LegState::Provisioned)
            || (self.interrupt_on_dtmf && !self.queue.dtmf.is_empty())
            || !self.queue.events.is_empty()
    }

    fn play(&mut self, media: Media, limit: Option<Duration>) -> HostOutcome<Op> {
        if self.play_suppressed() {
            self.last_play = Duration::ZERO;
            self.last_play_completed = false;
            return null();
        }
        HostOutcome::Wait(Op::Play { media, limit })
    }

    fn play_file(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let Some(name) = text_arg(args, 0) else {
            return fail("PlayFile: the name must be a string");
        };
        let limit = loop_limit(arg(args, 1));
        match self.prompt(&name) {
            Ok(Some(media)) => self.play(media, limit),
            Ok(None) => {
                self.event(Event::PlayMissing { task: self.id, name });
                self.last_play = Duration::ZERO;
                self.last_play_completed = false;
                null()
            }
            Err(Ok(error)) => HostOutcome::Fail(error),
            Err(Err(problem)) => {
                self.event(Event::PlayMissing {
                    task: self.id,
                    name: format!("{name} ({problem})"),
                });
                null()
            }
        }
    }

    fn play_data(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let Value::Data(bytes) = arg(args, 0) else {
            return fail("Play: the argument must be a datablock holding a WAV file");
        };
        match wav::info(bytes.as_slice()) {
            Ok(info) => {
                let media = Media::Data {
                    bytes: bytes.as_slice().into(),
                    length: info.duration(),
                };
                self.play(media, loop_limit(arg(args, 1)))
            }
            Err(error) => fail(format!("Play: {error}")),
        }
    }

    fn play_tone(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let frequency = arg(args, 0).as_num().unwrap_or(0);
        let Some(length) = millis(arg(args, 1)) else {
            return null();
        };
        let mut frequencies = Vec::new();
        for value in [frequency, arg(args, 2).as_num().unwrap_or(0)] {
            if value > 0 {
                frequencies.push(value.min(20_000) as u32);
            }
        }
        self.play(Media::Tone { frequencies, length }, None)
    }

    // ------------------------------------------------------------ §7.2

    fn accept(&mut self) -> HostOutcome<Op> {
        match self.state() {
            LegState::Incoming | LegState::Provisioned
                if self.call.as_ref().is_some_and(|leg| !leg.outgoing) =>
            {
                HostOutcome::Wait(Op::Accept)
            }
            // A call handed on after it was answered (RedirectCall) is
            // connected already: answering it is done.
            LegState::Connected if self.call.as_ref().is_some_and(|leg| !leg.outgoing) => null(),
            LegState::Connected => error_string("the call is already connected"),
            _ => error_string("there is no call to accept"),
        }
    }

    fn end_pending(&mut self, command: LegCommand, what: String) -> HostOutcome<Op> {
        match self.call.as_mut() {
            Some(leg) if matches!(leg.state, LegState::Incoming | LegState::Provisioned) && !leg.outgoing => {
                leg.send(command);
                leg.state = LegState::Disconnected;
                self.event(Event::Call { task: self.id, what });
                null()
            }
            _ => fail("there is no pending call"),
        }
    }

    fn reject(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let (code, reason) = match arg(args, 0) {
            Value::Num(code) if (400..700).contains(code) => (*code as u16, None),
            Value::Str(_) => (603, text_arg(args, 0)),
            Value::Dict(dict) => (
                dict.get(b"responseCode")
                    .as_num()
                    .filter(|code| (400..700).contains(code))
                    .unwrap_or(603) as u16,
                text(&dict.get(b"responseText")),
            ),
            _ => (603, None),
        };
        let status = match reason {
            Some(reason) => Status::with_reason(code, reason),
            None => Status::new(code),
        };
        let what = format!("rejected {status}");
        self.end_pending(LegCommand::Reject { status }, what)
    }

    fn redirect(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let targets = string_list(arg(args, 0));
        if targets.is_empty() {
            return fail("RedirectCall: give an address or an array of addresses");
        }
        if let [target] = targets.as_slice() {
            // Answered, whether it came in or the task placed it (a call
            // placed for click-to-dial is handed on the same way).
            if self
                .call
                .as_ref()
                .is_some_and(|leg| leg.state == LegState::Connected)
            {
                return self.hand_on(target);
            }
        }
        let what = format!("redirected to {}", targets.join(", "));
        self.end_pending(LegCommand::Redirect { targets }, what)
    }

    /// `RedirectCall(address)` on an answered call (pbxd's own):
    /// the call is routed to `address` inside pbxd, as if it had been
    /// dialled there (an account's rules and phones, an app); the task no
    /// longer has it. Numbers beyond the server need this task's class of
    /// service, as StartCall does.
    pub(super) fn hand_on(&mut self, target: &str) -> HostOutcome<Op> {
        let destination = address::resolve(
            &self.runtime.directory,
            target,
            Some(self.domain()),
            Some(&self.account),
        )
        .map_err(|error| error.to_string())
        .and_then(|destination| match &destination {
            address::Destination::Outside(number) if !self.account.class_of_service.allows(number) => {
                Err(self.account.class_of_service.refusal(number))
            }
            _ => Ok(destination),
        });
        let destination = match destination {
            Ok(destination) => destination,
            Err(reason) => {
                // RedirectCall is a procedure: the reason goes to the log.
                self.event(Event::Call {
                    task: self.id,
                    what: format!("not handed on to {target}: {reason}"),
                });
                return error_string(reason);
            }
        };
        let Some(mut leg) = self.call.take() else {
            return error_string("there is no call");
        };
        if leg.outgoing {
            // A call the task placed (click-to-dial): the one it goes on
            // to sees the task's account calling, with its caller ID.
            let caller = self
                .account
                .caller_id
                .clone()
                .unwrap_or_else(|| self.account.address());
            leg.info.remote_uri = caller;
        }
        self.event(Event::Call {
            task: self.id,
            what: format!("handed on to {target}"),
        });
        if let Err(error) = self.runtime.route(leg, destination, 1) {
            self.event(Event::Call {
                task: self.id,
                what: format!("{target}: {error}"),
            });
        }
        null()
    }

    /// Why `target` may not be called for this task: a number beyond the
    /// server its account's class of service does not allow.
    fn refused_number(&self, target: &str) -> Option<String> {
        match address::resolve(
            &self.runtime.directory,
            target,
            Some(self.domain()),
            Some(&self.account),
        ) {
            Ok(address::Destination::Outside(number)) if !self.account.class_of_service.allows(&number) => {
                Some(self.account.class_of_service.refusal(&number))
            }
            _ => None,
        }
    }

    fn fork(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let targets = string_list(arg(args, 0));
        if targets.is_empty() {
            return fail("ForkCall: give an address or an array of addresses");
        }
        // Numbers the account's class of service does not allow are not
        // rung, as StartCall would not place them.
        let targets: Vec<String> = targets
            .into_iter()
            .filter(|target| match self.refused_number(target) {
                Some(reason) => {
                    self.event(Event::Call {
                        task: self.id,
                        what: format!("not forked to {target}: {reason}"),
                    });
                    false
                }
                None => true,
            })
            .collect();
        match self.call.as_ref() {
            Some(leg) if matches!(leg.state, LegState::Incoming | LegState::Provisioned) && !leg.outgoing => {
                leg.send(LegCommand::Fork {
                    targets: crate::ring::expand(&self.runtime, &targets, Some(&self.account)),
                });
                self.event(Event::Call {
                    task: self.id,
                    what: format!("forked to {}", targets.join(", ")),
                });
                null()
            }
            _ => fail("ForkCall: there is no pending incoming call"),
        }
    }

    fn provision(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let (media, code, reason) = match arg(args, 0) {
            Value::Dict(dict) => (
                dict.get(b"media").is_true(),
                dict.get(b"responseCode")
                    .as_num()
                    .filter(|code| (101..200).contains(code))
                    .unwrap_or(180) as u16,
                text(&dict.get(b"responseText")).unwrap_or_else(|| "Ringing".into()),
            ),
            other => (
                other.is_true(),
                if other.is_true() { 183 } else { 180 },
                String::from("Ringing"),
            ),
        };
        match self.call.as_mut() {
            Some(leg) if matches!(leg.state, LegState::Incoming | LegState::Provisioned) && !leg.outgoing => {
                leg.send(LegCommand::Provision {
                    status: Status::with_reason(code, reason.clone()),
                    media,
                });
                if media {
                    leg.state = LegState::Provisioned;
                }
                self.event(Event::Call {
                    task: self.id,
                    what: format!("provisioned {code} {reason}"),
                });
                null()
            }
            _ => error_string("there is no pending call"),
        }
    }

    fn start_call(&mut self, args: &[Value]) -> HostOutcome<Op> {
        if matches!(
            self.state(),
            LegState::Incoming | LegState::Provisioned | LegState::Connected
        ) {
            return error_string("the task already has a call");
        }
        let target = destination(arg(args, 0));
        let Some(target) = target else {
            return fail("StartCall: the destination must be a string or a dictionary with a \"\" address");
        };
        match self.place_call(&target) {
            Ok(leg) => {
                self.call = Some(leg);
                null()
            }
            Err(reason) => error_string(reason),
        }
    }

    /// Places an outgoing call for this task, where its account's class of
    /// service allows; the leg reports to this task.
    pub(super) fn place_call(&mut self, dialled: &str) -> Result<Leg, String> {
        let destination = address::resolve(
            &self.runtime.directory,
            dialled,
            Some(self.domain()),
            Some(&self.account),
        )
        .map_err(|error| format!("404 Not Found ({error})"))?;
        // Beyond the server the account shows its caller ID, if it has one.
        let mut from = self.account.address();
        let target = match destination {
            address::Destination::Outside(number) => {
                // Numbers beyond the server go through trunks: only where
                // the account's class of service allows (FEATURES.md §12).
                if !self.account.class_of_service.allows(&number) {
                    return Err(self.account.class_of_service.refusal(&number));
                }
                if let Some(caller_id) = &self.account.caller_id {
                    from = caller_id.clone();
                }
                Target::outside(&number)
            }
            address::Destination::Account { account, .. } => {
                // An account is called at every device it can be reached
                // at, at once (a fork when there are several).
                let mut devices: Vec<Target> = self
                    .runtime
                    .devices(&account)
                    .into_iter()
                    .map(Target::Device)
                    .collect();
                match devices.len() {
                    0 => return Err(Status::TEMPORARILY_UNAVAILABLE.to_string()),
                    1 => devices.remove(0),
                    _ => return self.place_fork(dialled, &account, from, devices),
                }
            }
            address::Destination::App { app, .. } => {
                return Err(format!("404 Not Found (#{app} is an application)"));
            }
        };
        let resolved = target.to_string();
        let shown = if resolved == dialled {
            resolved
        } else {
            format!("{dialled} ({resolved})")
        };
        let records = &self.runtime.records;
        let trace = records.outgoing(self.record, &from, &target.to_string());
        if let Target::Device(device) = &target {
            trace.reaches(Some(&device.account), None);
        }
        if self.record != Some(trace.record()) {
            // A task that calls out without a call of its own (or after
            // its call's record was written) starts one.
            let record = trace.record();
            self.record = Some(record);
            records.handled_by(record, &self.program, self.id.0);
            records.involve(record, &self.account.address());
        }
        let leg = self
            .runtime
            .network
            .place_call(OutgoingCall {
                from: from.clone(),
                target,
                owner: Box::new(self.sender.clone()),
                near: None,
                trace: Some(trace.clone()),
            })
            .map_err(|error| {
                // Not placed at all: the record says why.
                trace.reported(&crate::call::LegEvent::Failed(error.clone()));
                error.to_string()
            })?;
        self.event(Event::Call {
            task: self.id,
            what: format!("calling {shown} as {from}"),
        });
        Ok(leg)
    }

    /// Places a call to several devices of `account` at once; the first
    /// to answer takes the call (see `call::fork`).
    fn place_fork(
        &mut self,
        dialled: &str,
        account: &Account,
        from: String,
        devices: Vec<Target>,
    ) -> Result<Leg, String> {
        let records = self.runtime.records.clone();
        let record = self.record;
        let traces = std::cell::RefCell::new(Vec::new());
        let trace_for = |target: &Target| {
            let trace = records.outgoing(record, &from, &target.to_string());
            if let Target::Device(device) = target {
                trace.reaches(Some(&device.account), None);
            }
            traces.borrow_mut().push(trace.clone());
            Some(trace)
        };
        let placed = crate::call::fork::place(
            self.runtime.network.as_ref(),
            &from,
            Box::new(self.sender.clone()),
            devices,
            trace_for,
        );
        let traces = traces.into_inner();
        if let Some(first) = traces.first() {
            if self.record != Some(first.record()) {
                let record = first.record();
                self.record = Some(record);
                records.handled_by(record, &self.program, self.id.0);
                records.involve(record, &self.account.address());
            }
        }
        let leg = placed.map_err(|error| error.to_string())?;
        self.event(Event::Call {
            task: self.id,
            what: format!(
                "calling {dialled} ({}, {} phones at once) as {from}",
                account.address(),
                traces.len()
            ),
        });
        Ok(leg)
    }

    fn disconnect(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let reason = match (arg(args, 0).as_num(), text_arg(args, 1)) {
            (Some(code), text) => Some(Status::with_reason(
                code.clamp(0, 999) as u16,
                text.unwrap_or_default(),
            )),
            _ => None,
        };
        self.hang_up(reason);
        null()
    }

    /// Ends the task's call, whatever its state.
    pub fn hang_up(&mut self, reason: Option<Status>) {
        let task = self.id;
        if let Some(leg) = self.call.as_mut() {
            let what = match leg.state {
                LegState::Disconnected => None,
                LegState::Incoming | LegState::Provisioned if !leg.outgoing => {
                    leg.send(LegCommand::Reject {
                        status: Status::SERVER_INTERNAL_ERROR,
                    });
                    Some("released the unanswered call (500)")
                }
                LegState::Connected => {
                    leg.send(LegCommand::Disconnect { reason });
                    Some("hung up")
                }
                _ => {
                    leg.send(LegCommand::Disconnect { reason });
                    Some("cancelled the call")
                }
            };
            leg.state = LegState::Disconnected;
            if let Some(what) = what {
                self.runtime.observer.event(Event::Call {
                    task,
                    what: what.into(),
                });
            }
        }
        if let Some(peer) = self.bridged_with.take() {
            self.runtime
                .registry
                .send(peer, TaskInput::BreakBridge { from: self.id });
        }
        for (peer, _) in std::mem::take(&mut self.mixer) {
            self.runtime
                .registry
                .send(peer, TaskInput::BreakBridge { from: self.id });
        }
    }

    fn leg_info(&self, read: impl Fn(&Leg) -> Value) -> HostOutcome<Op> {
        done(self.call.as_ref().map_or(Value::Null, read))
    }

    fn pending_request_data(&self, args: &[Value]) -> HostOutcome<Op> {
        let Some(field) = text_arg(args, 0) else {
            return null();
        };
        let Some(leg) = self.call.as_ref() else {
            return null();
        };
        let address_dict = |uri: &str| {
            let dict = Dict::new();
            let _ = dict.set(Bytes::from(""), Value::str(uri.trim_start_matches("sip:")));
            Value::Dict(dict)
        };
        done(match field.to_ascii_lowercase().as_str() {
            "call-id" => Value::str(&leg.info.call_id),
            "from" => address_dict(&leg.info.remote_uri),
            "to" => address_dict(&leg.info.request_uri),
            _ => leg.info.headers.get(&field).map_or(Value::Null, Value::str),
        })
    }

    // ------------------------------------------------------------ §6.9, §6.10

    fn send_mail(&mut self, args: &[Value], short_form: bool) -> HostOutcome<Op> {
        let built = if short_form {
            mail::build(
                arg(args, 3),
                arg(args, 4),
                arg(args, 0),
                arg(args, 1),
                arg(args, 2),
            )
        } else {
            mail::build(
                arg(args, 0),
                arg(args, 1),
                &Value::Null,
                &Value::Null,
                &Value::Null,
            )
        };
        match built {
            Ok(outgoing) => HostOutcome::Wait(Op::SendMail(outgoing)),
            Err(problem) => {
                self.event(Event::Email {
                    task: self.id,
                    to: text_arg(args, if short_form { 2 } else { 0 }).unwrap_or_default(),
                    result: Err(problem.clone()),
                });
                error_string(problem)
            }
        }
    }

    fn http_call(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let limit = Duration::from_secs(self.runtime.config.http.timeout_seconds);
        match http::build(arg(args, 0), arg(args, 1), limit) {
            Ok(request) => HostOutcome::Wait(Op::Http(request)),
            Err(problem) => error_string(problem),
        }
    }

    fn send_event(&self, args: &[Value]) -> HostOutcome<Op> {
        let Value::Task(target) = arg(args, 0) else {
            return error_string("the first argument must be a task handle");
        };
        let Some(name) = text_arg(args, 1) else {
            return error_string("the event name must be a string");
        };
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return error_string("an event name starts with a Latin letter");
        }
        let parameter = match arg(args, 2).to_portable() {
            Ok(parameter) => parameter,
            Err(error) => return HostOutcome::Fail(error),
        };
        let input = TaskInput::Event {
            name,
            sender: Some(self.id),
            parameter,
        };
        if self.runtime.registry.send(*target, input) {
            null()
        } else {
            error_string("no such task")
        }
    }

    fn system_info(&self, args: &[Value]) -> HostOutcome<Op> {
        let what = text_arg(args, 0).unwrap_or_default();
        done(match what.to_ascii_lowercase().as_str() {
            "serverversion" => Value::str(concat!("pbxd ", env!("CARGO_PKG_VERSION"))),
            "serveros" => Value::str(std::env::consts::OS),
            "servercpu" => Value::str(std::env::consts::ARCH),
            "maindomainname" | "licensedomainname" => self
                .runtime
                .directory
                .first_domain()
                .map_or(Value::Null, |domain| Value::str(&domain.name)),
            "starttime" => Value::Date(self.runtime.clock.start_seconds()),
            "servername" => Value::str(&server_name()),
            _ => Value::Null,
        })
    }
}

/// This host's name (`/proc/sys/kernel/hostname`; `localhost` when it
/// cannot be read).
fn server_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".to_string())
    })
    .clone()
}

/// `PlayFile`'s second argument: positive → play that long (looping);
/// negative → loop (for an hour at most); absent → once.
fn loop_limit(value: &Value) -> Option<Duration> {
    match value.as_num() {
        Some(ms) if ms > 0 => Some(Duration::from_millis(ms as u64).min(LONGEST_MEDIA)),
        Some(ms) if ms < 0 => Some(LONGEST_MEDIA),
        _ => None,
    }
}

/// A string, or the strings of an array.
fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::Array(array) => array.items().iter().filter_map(text).collect(),
        other => text(other).into_iter().collect(),
    }
}

/// An address given as a string, or as a dictionary's `""` element
/// (`StartCall`, `TransferCall`…).
pub(super) fn destination(value: &Value) -> Option<String> {
    match value {
        Value::Dict(dict) => text(&dict.get(b"")),
        other => text(other),
    }
}

fn text(value: &Value) -> Option<String> {
    value
        .as_str_bytes()
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

/// The sender of an event dictionary.
pub(super) fn event_sender(value: &Value) -> Option<TaskId> {
    match value {
        Value::Dict(dict) => match dict.get(b"sender") {
            Value::Task(task) => Some(task),
            _ => None,
        },
        _ => None,
    }
}

impl Host for TaskHost {
    type Op = Op;

    fn call(&mut self, function: HostFn, args: &[Value], _ctx: &mut Ctx<'_>) -> HostOutcome<Op> {
        match function {
            // §6.7, §6.8
            HostFn::SystemInfo => self.system_info(args),
            HostFn::MyDomain => done(Value::str(&self.account.domain)),
            HostFn::MyEmail => done(Value::from(self.account.address())),
            HostFn::GetLanguage => done(self.language.as_deref().map_or(Value::Null, Value::str)),
            HostFn::SetLanguage => {
                self.language = text_arg(args, 0)
                    .map(|language| language.to_ascii_lowercase())
                    .filter(|language| !language.is_empty() && language != "english");
                null()
            }
            HostFn::ReadEnvirFile => {
                let Some(name) = text_arg(args, 0) else {
                    return null();
                };
                match self
                    .runtime
                    .environments
                    .read(self.domain(), self.language.as_deref(), &name)
                {
                    Ok(Some(bytes)) => done(Value::data(bytes)),
                    Ok(None) => null(),
                    Err(error) => fail(format!("ReadEnvirFile: {error}")),
                }
            }
            HostFn::GetAccountPreferences => self.preferences(args),
            HostFn::SetAccountPreferences => self.set_preferences(args),
            HostFn::Impersonate => self.impersonate(args),
            HostFn::ReadGroupMembers => null(),
            HostFn::ReadTelnums => {
                let numbers = self
                    .account
                    .aliases
                    .iter()
                    .filter(|alias| alias.chars().all(|c| c.is_ascii_digit() || c == '+'))
                    .map(|alias| Value::str(alias))
                    .collect();
                done(Value::Array(Array::from_vec(numbers)))
            }
            HostFn::UpdateAccountMailRule | HostFn::UpdateAccountSignalRule => {
                error_string("rules are set in the configuration")
            }
            HostFn::RouteAddress => self.route_address(args),
            HostFn::RouteENUM => error_string("ENUM lookups are not available"),
            HostFn::PhoneNumberToSIPURI => {
                let Some(number) = text_arg(args, 0) else {
                    return null();
                };
                let cleaned: String = number
                    .chars()
                    .enumerate()
                    .filter(|(index, c)| c.is_ascii_digit() || (*index == 0 && *c == '+'))
                    .map(|(_, c)| c)
                    .collect();
                if cleaned.is_empty() {
                    null()
                } else {
                    done(Value::from(format!("sip:{cleaned}@{}", self.domain())))
                }
            }
            // §6.9
            HostFn::SysLog => {
                let line = match text::log_text(arg(args, 0)) {
                    Ok(line) => line,
                    Err(error) => return HostOutcome::Fail(error),
                };
                self.event(Event::Log {
                    task: self.id,
                    text: line,
                });
                null()
            }
            HostFn::SysProfile => null(),
            HostFn::ExecuteCLI => error_string("the CLI is not available to scripts"),
            HostFn::SetApplicationStatus => match arg(args, 0).to_portable() {
                Ok(status) => {
                    self.runtime.registry.set_status(self.id, status);
                    null()
                }
                Err(error) => HostOutcome::Fail(error),
            },
            HostFn::StoreCDR => {
                let line = text_arg(args, 0).unwrap_or_default();
                if let Some(record) = self.record {
                    self.runtime.records.note(record, &line);
                }
                self.event(Event::Cdr {
                    task: self.id,
                    text: format!("APP {line}"),
                });
                null()
            }
            HostFn::DoBalance => self.do_balance(args),
            HostFn::Statistics => error_string("custom statistics are not available"),
            HostFn::HTTPCall => self.http_call(args),
            // §6.10
            HostFn::SubmitEMail => self.send_mail(args, false),
            HostFn::SendEMail => self.send_mail(args, true),
            HostFn::SendInstantMessage | HostFn::SendXMPPIQ => {
                error_string("instant messaging is not available")
            }
            HostFn::RADIUSCall => error_string("RADIUS is not available"),
            // §6.11
            HostFn::ThisTask => done(Value::Task(self.id)),
            HostFn::SendEvent => self.send_event(args),
            HostFn::ReadInput => {
                let seconds = arg(args, 0).as_num().unwrap_or(0).clamp(0, 86_400);
                self.drain();
                match self.queue.pop() {
                    Some(value) => done(value),
                    None if seconds == 0 => null(),
                    None => HostOutcome::Wait(Op::ReadInput(Duration::from_secs(seconds as u64))),
                }
            }
            HostFn::CreateMeeting
            | HostFn::ActivateMeeting
            | HostFn::DeactivateMeeting
            | HostFn::RemoveMeeting
            | HostFn::FindMeeting
            | HostFn::ClearMeeting => self.meeting(function, args),
            HostFn::Enqueue | HostFn::CheckQueue | HostFn::ReadQueue | HostFn::Dequeue => {
                self.queue(function, args)
            }
            // §6.12
            HostFn::ReadStorageFile
            | HostFn::WriteStorageFile
            | HostFn::AppendStorageFile
            | HostFn::DeleteStorageFile
            | HostFn::RenameStorageFile
            | HostFn::ListStorageFiles => self.storage(function, args),
            HostFn::CheckAccountPIN => self.check_pin(args),
            HostFn::SetAccountPIN => self.set_pin(args),
            HostFn::HotDeskLogin => self.hotdesk_login(args),
            HostFn::HotDeskLogout => self.hotdesk_logout(args),
            HostFn::HotDeskLines => self.hotdesk_lines(),
            HostFn::QueueSettings => self.queue_settings(args),
            HostFn::QueueStatus => self.queue_status(args),
            HostFn::ReadNumber => self.read_number(args),
            HostFn::RouteCall => self.route_call(args),
            HostFn::CallIDs => self.call_ids(),
            HostFn::SetCallURLs => self.set_call_urls(args),
            // §7.2
            HostFn::AcceptCall => self.accept(),
            HostFn::RejectCall => self.reject(args),
            HostFn::RedirectCall => self.redirect(args),
            HostFn::ForkCall => self.fork(args),
            HostFn::ProvisionCall => self.provision(args),
            HostFn::SetCallParameters => null(),
            HostFn::StartCall => self.start_call(args),
            HostFn::CancelCall => {
                if let Some(leg) = self
                    .call
                    .as_mut()
                    .filter(|leg| leg.outgoing && leg.state != LegState::Connected)
                {
                    leg.send(LegCommand::Disconnect { reason: None });
                    leg.state = LegState::Disconnected;
                }
                null()
            }
            HostFn::Disconnect => self.disconnect(args),
            HostFn::IsConnected => done(Value::from_bool(self.state() == LegState::Connected)),
            HostFn::IsHalfConnected => done(Value::from_bool(matches!(
                self.state(),
                LegState::Connected | LegState::Provisioned
            ))),
            HostFn::RemoteURI => self.leg_info(|leg| Value::str(&leg.info.remote_uri)),
            HostFn::LocalURI => done(Value::from(format!("sip:{}", self.account.address()))),
            HostFn::IncomingRequestURI => self.leg_info(|leg| {
                if leg.outgoing {
                    Value::Null
                } else {
                    Value::str(&leg.info.request_uri)
                }
            }),
            HostFn::RouteLocalURI => {
                let Some(uri) = text_arg(args, 0) else {
                    return null();
                };
                match address::resolve(
                    &self.runtime.directory,
                    &uri,
                    Some(self.domain()),
                    Some(&self.account),
                ) {
                    Ok(
                        address::Destination::Account { account, .. }
                        | address::Destination::App { account, .. },
                    ) => done(Value::from(account.address())),
                    _ => null(),
                }
            }
            HostFn::RemoteIPAddress => self.leg_info(|leg| {
                leg.info.remote_addr.map_or(Value::Null, |address| {
                    Value::Ip(Arc::new(pbx_lang::value::IpEndpoint {
                        address: address.ip(),
                        port: Some(address.port()),
                    }))
                })
            }),
            // A phone with a virtual line in force calls as that line.
            HostFn::RemoteAuthentication => self.leg_info(|leg| {
                leg.info
                    .settings()
                    .map_or(Value::Null, |account| Value::str(&account.address()))
            }),
            HostFn::PendingRequestData => self.pending_request_data(args),
            HostFn::PendingRequestExData => {
                let Some(name) = text_arg(args, 0) else {
                    return null();
                };
                self.leg_info(|leg| leg.info.headers.get(&name).map_or(Value::Null, Value::str))
            }
            HostFn::SetLocalContactParameter => null(),
            // §7.3
            HostFn::PlayFile => self.play_file(args),
            HostFn::Play => self.play_data(args),
            HostFn::PlayTone => self.play_tone(args),
            HostFn::GetPlayPosition => done(Value::Num(self.last_play.as_millis() as i64)),
            HostFn::SetPlayPosition => {
                self.skip_next = millis(arg(args, 0)).unwrap_or_default();
                null()
            }
            HostFn::IsPlayCompleted => done(Value::from_bool(self.last_play_completed)),
            HostFn::SetInterruptOnDTMF => {
                let previous = self.interrupt_on_dtmf;
                self.interrupt_on_dtmf = arg(args, 0).is_true();
                done(Value::from_bool(previous))
            }
            HostFn::SendDTMF => {
                let symbol = text_arg(args, 0).and_then(|text| text.chars().next());
                match (symbol, self.call.as_ref()) {
                    (Some(symbol @ ('0'..='9' | '*' | '#' | 'A'..='D')), Some(leg))
                        if leg.state == LegState::Connected =>
                    {
                        leg.send(LegCommand::SendDtmf(symbol));
                        self.event(Event::DtmfSent {
                            task: self.id,
                            symbol,
                        });
                        null()
                    }
                    (Some(_), Some(_)) => error_string("the call is not connected"),
                    (Some(_), None) => error_string("there is no call"),
                    (None, _) => error_string("not a DTMF symbol"),
                }
            }
            HostFn::DTMF => {
                self.drain();
                done(Value::from(self.queue.peek_dtmf()))
            }
            HostFn::ClearDTMF => {
                self.drain();
                self.queue.dtmf.clear();
                null()
            }
            HostFn::Record => {
                let seconds = arg(args, 0).as_num().unwrap_or(0);
                if seconds <= 0 || self.play_suppressed() {
                    return null();
                }
                HostOutcome::Wait(Op::Record(Duration::from_secs(seconds as u64).min(LONGEST_MEDIA)))
            }
            HostFn::SetLocalHold => {
                self.set_local_hold(arg(args, 0).is_true());
                null()
            }
            HostFn::ReleaseMediaChannel => null(),
            HostFn::MediaOption | HostFn::SignalOption => {
                let Some(name) = text_arg(args, 0) else {
                    return null();
                };
                let key = format!("{}:{}", function.name(), name.to_ascii_lowercase());
                let previous = self.options.get(&key).map_or(Value::Null, Portable::to_value);
                if args.len() > 1 {
                    match arg(args, 1).to_portable() {
                        Ok(value) => {
                            self.options.insert(key, value);
                        }
                        Err(error) => return HostOutcome::Fail(error),
                    }
                    if function == HostFn::MediaOption && name.eq_ignore_ascii_case("mixMOH") {
                        self.send_music();
                    }
                }
                done(previous)
            }
            // §7.4
            HostFn::StartBridge => self.start_bridge(args),
            HostFn::StartBridgedCall => self.start_bridged_call(args),
            HostFn::AcceptBridge => self.accept_bridge(args, false),
            HostFn::AttachMixer => self.accept_bridge(args, true),
            HostFn::RejectBridge => self.reject_bridge(args),
            HostFn::BreakBridge => self.break_bridge(),
            HostFn::DetachMixer => self.detach(args),
            HostFn::MixerAttached => self.mixer_attached(),
            HostFn::MuteMixer => self.mute(args),
            HostFn::TransferSupported => {
                done(Value::from_bool(self.call.as_ref().is_some_and(|leg| {
                    leg.state == LegState::Connected && leg.info.transfer_supported
                })))
            }
            HostFn::TransferCall => self.transfer_call(args),
            HostFn::StartTransfer => self.start_transfer(args),
            HostFn::AcceptTransfer => self.accept_transfer(args),
            HostFn::RejectTransfer => self.reject_transfer(args),
            HostFn::SendCallInfo | HostFn::SendCallOptions | HostFn::SendCallNotify => {
                error_string("not supported on this call")
            }
        }
    }

    fn spawn(&mut self, program: &Arc<Program>, entry: u16, args: Vec<Value>) -> Result<Value, OpError> {
        let parameters = args
            .iter()
            .map(Value::to_portable)
            .collect::<Result<Vec<_>, _>>()?;
        let id = super::run::spawn(
            &self.runtime,
            program.clone(),
            entry,
            self.account.clone(),
            parameters,
        );
        Ok(Value::Task(id))
    }
}
