//! A simulated network of callers and phones, for `pbxd run` and tests.
//!
//! Simulated legs are full citizens: a task answers, plays, records and
//! bridges them exactly as it would SIP calls. A simulated caller dials
//! its DTMF script like a person who listens to each prompt first: it
//! presses the next key once the line has been quiet for a moment, `,`
//! waits a second, and a key after `!` is pressed at once, over a prompt
//! (barge-in). A simulated phone answers after some seconds, is busy,
//! or never answers, as configured (`[simulation] phones`).
//!
//! Time is tokio's: in a paused runtime a simulated call takes no real time.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use pbx_media::wav;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::address::Destination;
use crate::call::{
    CallError, Device, Leg, LegCommand, LegCommands, LegEvent, LegInfo, Network, OutgoingCall, Owner, Played,
    Reply, Status, Target,
};
use crate::directory::Account;

/// How long a caller waits in silence before pressing the next key.
pub const THINK: Duration = Duration::from_millis(300);
/// How long a busy phone takes to say so.
const BUSY_AFTER: Duration = Duration::from_millis(500);
/// How long a phone that never answers rings before the attempt ends.
const NO_ANSWER_AFTER: Duration = Duration::from_secs(32);
/// How long a simulated caller talks with the party it was connected to.
pub const TALK: Duration = Duration::from_secs(30);
/// How long a simulated call may last before the caller gives up.
pub const LONGEST_CALL: Duration = Duration::from_secs(3600);

/// What a simulated phone does when called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phone {
    AnswerAfter(Duration),
    Busy,
    NeverAnswer,
}

impl Phone {
    /// Reads `answer after 3s`, `answer`, `busy`, `never answer`.
    pub fn parse(text: &str) -> Result<Phone, String> {
        let words: Vec<String> = text.split_whitespace().map(str::to_ascii_lowercase).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        Ok(match words.as_slice() {
            ["busy"] => Phone::Busy,
            ["never"] | ["never", "answer"] | ["no", "answer"] => Phone::NeverAnswer,
            ["answer"] => Phone::AnswerAfter(Duration::from_secs(1)),
            ["answer", "after", seconds] => {
                let digits = seconds.trim_end_matches(['s', 'e', 'c', 'o', 'n', 'd']);
                Phone::AnswerAfter(Duration::from_secs(
                    digits
                        .parse()
                        .map_err(|_| format!("`{text}`: expected `answer after N s`"))?,
                ))
            }
            _ => {
                return Err(format!(
                    "`{text}`: expected `answer after N s`, `busy` or `never answer`"
                ))
            }
        })
    }
}

/// One step of a caller's DTMF script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// Press a key once the line is quiet.
    Press(char),
    /// Press a key at once, even over a prompt.
    BargeIn(char),
    Pause(Duration),
}

/// Reads a DTMF script: symbols `0-9 * # A-D`, `,` for a one-second pause,
/// `!` before a symbol to press it over a prompt.
pub fn parse_script(text: &str) -> Result<Vec<Key>, String> {
    let mut keys = Vec::new();
    let mut barge = false;
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        let symbol = match c {
            ',' => {
                keys.push(Key::Pause(Duration::from_secs(1)));
                continue;
            }
            '!' => {
                barge = true;
                continue;
            }
            '0'..='9' | '*' | '#' | 'A'..='D' => c,
            'a'..='d' => c.to_ascii_uppercase(),
            other => {
                return Err(format!(
                    "`{other}` is not a DTMF symbol (0-9, *, #, A-D; `,` waits a second, `!` presses over a prompt)"
                ))
            }
        };
        keys.push(if std::mem::take(&mut barge) {
            Key::BargeIn(symbol)
        } else {
            Key::Press(symbol)
        });
    }
    Ok(keys)
}

/// Where a simulated caller's keys come from.
pub enum Keys {
    /// A script, dialled in the caller's own time.
    Script(Vec<Key>),
    /// Keys as typed (interactive `pbxd run`); `None` hangs up.
    Live(mpsc::UnboundedReceiver<Option<char>>),
}

/// How the phones of the simulated world behave, by user part or number.
#[derive(Debug, Default)]
struct Phones(HashMap<String, Phone>);

impl Phones {
    /// What the phone `to` (an address or number) does; those not listed
    /// answer after a second.
    fn behaviour(&self, to: &str) -> Phone {
        let user = to
            .trim_start_matches("sip:")
            .split(['@', ';'])
            .next()
            .unwrap_or(to)
            .split('#')
            .next_back()
            .unwrap_or("")
            .to_ascii_lowercase();
        self.0
            .get(&user)
            .copied()
            .unwrap_or(Phone::AnswerAfter(Duration::from_secs(1)))
    }

    /// What a target's phone does.
    fn of_target(&self, target: &Target) -> Phone {
        match target {
            Target::Device(device) => self.behaviour(&device.account),
            Target::Number(text) | Target::Address(text) => self.behaviour(text),
        }
    }
}

/// The name a transfer target is known by in the simulated world.
fn destination_name(destination: &Destination) -> String {
    match destination {
        Destination::App { account, .. } | Destination::Account { account, .. } => account.address(),
        Destination::Outside(text) => text.clone(),
    }
}

/// The simulated network.
#[derive(Debug, Default)]
pub struct SimNetwork {
    phones: Arc<Phones>,
}

impl SimNetwork {
    /// A network whose phones behave as listed (by user part or number).
    pub fn with_phones(phones: HashMap<String, Phone>) -> SimNetwork {
        SimNetwork {
            phones: Arc::new(Phones(
                phones
                    .into_iter()
                    .map(|(name, phone)| (name.to_ascii_lowercase(), phone))
                    .collect(),
            )),
        }
    }

    /// A call from `from` to `to` arriving now; the caller dials `keys`.
    /// Hand the leg to `Runtime::incoming_call`. Must run on a `LocalSet`.
    pub fn incoming(&self, from: &str, to: &str, keys: Keys) -> Leg {
        let id = crate::call::next_leg_id();
        let info = LegInfo {
            remote_uri: format!("sip:{from}"),
            local_uri: format!("sip:{to}"),
            request_uri: format!("sip:{to}"),
            call_id: format!("sim-{id}@pbxd"),
            remote_addr: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 5060))),
            transfer_supported: true,
            ..LegInfo::default()
        };
        let (leg, end) = Leg::new(id, info, false, None);
        let peer = Peer::new(end.owner, keys, self.phones.clone());
        tokio::task::spawn_local(peer.run(end.commands));
        leg
    }
}

impl Network for SimNetwork {
    fn place_call(&self, call: OutgoingCall) -> Result<Leg, CallError> {
        let id = crate::call::next_leg_id();
        let to = match &call.target {
            Target::Device(device) => device.contact.clone(),
            Target::Number(number) => format!("sip:{number}"),
            Target::Address(address) => format!("sip:{address}"),
        };
        let info = LegInfo {
            remote_uri: to.clone(),
            local_uri: format!("sip:{}", call.from),
            request_uri: to,
            call_id: format!("sim-{id}@pbxd"),
            transfer_supported: true,
            ..LegInfo::default()
        };
        let phone = self.phones.of_target(&call.target);
        let (leg, end) = Leg::new(id, info, true, Some(call.owner));
        leg.set_trace(call.trace);
        if let Some(trace) = leg.trace() {
            trace.call_id(&leg.info.call_id);
        }
        let peer = Peer::new(end.owner, Keys::Script(Vec::new()), self.phones.clone());
        tokio::task::spawn_local(async move {
            peer.owner.report(LegEvent::Provisional(Status::RINGING));
            peer.run_callee(end.commands, phone).await;
        });
        Ok(leg)
    }

    /// An account has a simulated phone when `[simulation] phones` lists
    /// it; the phone is then its one device.
    fn devices(&self, account: &Account) -> Vec<Device> {
        if self.phones.0.contains_key(&account.name.to_ascii_lowercase()) {
            vec![Device {
                account: account.address(),
                contact: format!("sip:{}", account.address()),
                address: None,
                transport: crate::call::Transport::Udp,
                via: None,
            }]
        } else {
            Vec::new()
        }
    }
}

/// The far end of a simulated leg.
struct Peer {
    owner: Owner,
    /// Whether media flows (answered, or early media).
    connected: bool,
    /// Whether the task answered.
    answered: bool,
    /// Whether this is a called phone (rather than a caller).
    called: bool,
    keys: Keys,
    phones: Arc<Phones>,
    /// The first forked target to answer, and when it does.
    fork: Option<(Instant, String)>,
    /// A blind transfer under way: when its outcome is known, and what it is.
    transfer: Option<(Instant, Result<(), String>, Reply)>,
    /// Since when the peer talks with another party (a bridge).
    talking_since: Option<Instant>,
}

impl Peer {
    fn new(owner: Owner, keys: Keys, phones: Arc<Phones>) -> Peer {
        Peer {
            owner,
            connected: false,
            answered: false,
            called: false,
            keys,
            phones,
            fork: None,
            transfer: None,
            talking_since: None,
        }
    }

    /// When a phone that behaves so would answer, or why it would not.
    fn ring(phone: Phone) -> (Duration, Result<(), String>) {
        match phone {
            Phone::AnswerAfter(after) => (after, Ok(())),
            Phone::Busy => (BUSY_AFTER, Err(Status::BUSY_HERE.to_string())),
            Phone::NeverAnswer => (NO_ANSWER_AFTER, Err(Status::REQUEST_TIMEOUT.to_string())),
        }
    }
}

/// What the far end is doing with the media.
enum Media {
    Idle {
        since: Instant,
    },
    Playing {
        reply: oneshot::Sender<Played>,
        started: Instant,
        until: Instant,
    },
    Recording {
        reply: oneshot::Sender<Vec<u8>>,
        started: Instant,
        until: Instant,
    },
}

impl Peer {
    /// A called phone: rings, then answers, is busy, or never answers.
    async fn run_callee(mut self, mut commands: LegCommands, phone: Phone) {
        let answer_at = match phone {
            Phone::AnswerAfter(after) => Some(Instant::now() + after),
            Phone::Busy => {
                tokio::time::sleep(BUSY_AFTER).await;
                self.owner.report(LegEvent::Failed(Status::BUSY_HERE.into()));
                return;
            }
            Phone::NeverAnswer => None,
        };
        loop {
            let wake = answer_at.unwrap_or_else(|| Instant::now() + LONGEST_CALL);
            tokio::select! {
                command = commands.recv() => match command {
                    // The caller gave up (CANCEL) or the task ended.
                    None | Some(LegCommand::Disconnect { .. }) => return,
                    Some(_) => {}
                },
                () = tokio::time::sleep_until(wake) => {
                    if answer_at.is_none() {
                        self.owner.report(LegEvent::Failed(Status::with_reason(408, "No Answer").into()));
                        return;
                    }
                    break;
                }
            }
        }
        self.connected = true;
        self.answered = true;
        self.called = true;
        self.owner.report(LegEvent::Answered);
        self.run(commands).await;
    }

    /// Serves the leg's commands until it ends.
    async fn run(mut self, mut commands: LegCommands) {
        let started = Instant::now();
        let mut media = Media::Idle {
            since: Instant::now(),
        };
        let mut pause_until: Option<Instant> = None;
        let mut last_key = Instant::now();
        let (mut script, mut live): (VecDeque<Key>, _) =
            match std::mem::replace(&mut self.keys, Keys::Script(Vec::new())) {
                Keys::Script(keys) => (keys.into(), None),
                Keys::Live(receiver) => (VecDeque::new(), Some(receiver)),
            };
        loop {
            // When the caller next acts on its own.
            let media_end = match &media {
                Media::Playing { until, .. } | Media::Recording { until, .. } => Some(*until),
                Media::Idle { .. } => None,
            };
            let key_at = match (&media, script.front(), self.connected) {
                (_, None, _) | (_, _, false) => None,
                (_, Some(Key::BargeIn(_)), true) => {
                    Some((last_key + THINK).max(pause_until.unwrap_or(last_key)))
                }
                (Media::Playing { .. }, _, _) => None,
                (Media::Idle { since }, Some(_), true) => {
                    Some((*since + THINK).max(pause_until.unwrap_or(*since)))
                }
                (Media::Recording { started, .. }, Some(_), true) => {
                    Some((*started + THINK).max(pause_until.unwrap_or(*started)))
                }
            };
            // A caller (not a called phone, which waits for the other side)
            // with no keys left hangs up after talking a while.
            let done_talking = match (
                self.talking_since,
                script.is_empty() && live.is_none() && !self.called,
            ) {
                (Some(since), true) => since + TALK,
                _ => started + LONGEST_CALL,
            };
            let give_up = (started + LONGEST_CALL).min(done_talking);
            let fork_at = self.fork.as_ref().map(|(at, _)| *at);
            let transfer_at = self.transfer.as_ref().map(|(at, _, _)| *at);
            let wake = [media_end, key_at, fork_at, transfer_at, Some(give_up)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(give_up);
            let live = live.as_mut().filter(|_| self.connected);
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    if !self.handle(command, &mut media) {
                        return;
                    }
                }
                key = async { match live { Some(receiver) => receiver.recv().await, None => std::future::pending().await } } => {
                    match key.flatten() {
                        Some(symbol) => self.owner.report(LegEvent::Dtmf(symbol)),
                        None => {
                            self.owner.report(LegEvent::Disconnected);
                            return;
                        }
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= give_up {
                        self.owner.report(LegEvent::Disconnected);
                        return;
                    }
                    if media_end.is_some_and(|end| now >= end) {
                        finish(&mut media, true);
                    }
                    if fork_at.is_some_and(|at| now >= at) {
                        if let Some((_, by)) = self.fork.take() {
                            finish(&mut media, false);
                            self.owner.report(LegEvent::AnsweredElsewhere { by });
                            return;
                        }
                    }
                    if transfer_at.is_some_and(|at| now >= at) {
                        if let Some((_, outcome, reply)) = self.transfer.take() {
                            let transferred = outcome.is_ok();
                            let _ = reply.send(outcome);
                            if transferred {
                                // The caller now talks to the target.
                                finish(&mut media, false);
                                return;
                            }
                        }
                    }
                    if key_at.is_some_and(|at| now >= at) {
                        match script.pop_front() {
                            Some(Key::Press(symbol) | Key::BargeIn(symbol)) => {
                                self.owner.report(LegEvent::Dtmf(symbol));
                                if let Media::Idle { since } = &mut media {
                                    *since = now;
                                }
                                last_key = now;
                                pause_until = None;
                            }
                            Some(Key::Pause(length)) => pause_until = Some(now + length),
                            None => {}
                        }
                    }
                }
            }
        }
    }

    /// Handles a command; false when the leg is over.
    fn handle(&mut self, command: LegCommand, media: &mut Media) -> bool {
        match command {
            LegCommand::Accept { reply } => {
                self.connected = true;
                self.answered = true;
                self.owner.answered();
                // The other branches of a fork stop ringing.
                self.fork = None;
                if let Media::Idle { since } = media {
                    *since = Instant::now();
                }
                let _ = reply.send(Ok(()));
            }
            LegCommand::Provision { media: early, .. } => {
                if early {
                    self.connected = true;
                }
            }
            LegCommand::Reject { .. } | LegCommand::Redirect { .. } | LegCommand::Disconnect { .. } => {
                finish(media, false);
                return false;
            }
            LegCommand::Play {
                media: audio,
                limit,
                reply,
            } => {
                finish(media, false);
                let length = limit.unwrap_or_else(|| audio.length());
                let started = Instant::now();
                *media = Media::Playing {
                    reply,
                    started,
                    until: started + length,
                };
            }
            LegCommand::Record { limit, reply } => {
                finish(media, false);
                let started = Instant::now();
                *media = Media::Recording {
                    reply,
                    started,
                    until: started + limit,
                };
            }
            LegCommand::Stop => finish(media, false),
            LegCommand::Fork { targets } => {
                let now = Instant::now();
                for target in targets {
                    if let (after, Ok(())) = Peer::ring(self.phones.of_target(&target)) {
                        if self.fork.as_ref().is_none_or(|(at, _)| now + after < *at) {
                            self.fork = Some((now + after, target.to_string()));
                        }
                    }
                }
            }
            LegCommand::Transfer { target, reply } => {
                let (after, outcome) = Peer::ring(self.phones.behaviour(&destination_name(&target)));
                self.transfer = Some((Instant::now() + after, outcome, reply));
            }
            LegCommand::Join { other, reply } => {
                // The two callers now talk to each other; neither leg is
                // pbxd's any more.
                other.send(LegCommand::Disconnect { reason: None });
                let _ = reply.send(Ok(()));
                finish(media, false);
                return false;
            }
            // Connected with another party: a caller with nothing left to
            // dial talks for a while, then hangs up.
            LegCommand::Bridge(other) => {
                self.talking_since = other.map(|_| Instant::now());
            }
            // No audio is simulated: who hears whom changes nothing a
            // script can observe here, and DTMF still reaches the task.
            LegCommand::SendDtmf(_)
            | LegCommand::Hold(_)
            | LegCommand::Music { .. }
            | LegCommand::Mixer(_) => {}
        }
        true
    }
}

/// Ends what the media was doing and reports it.
fn finish(media: &mut Media, completed: bool) {
    let now = Instant::now();
    match std::mem::replace(media, Media::Idle { since: now }) {
        Media::Playing { reply, started, .. } => {
            let _ = reply.send(Played {
                length: now - started,
                completed,
            });
        }
        Media::Recording { reply, started, .. } => {
            let _ = reply.send(recording(now - started));
        }
        Media::Idle { .. } => {}
    }
}

/// What a simulated caller says while recorded: a quiet 440 Hz tone.
fn recording(length: Duration) -> Vec<u8> {
    let rate = 8000u32;
    let count = (length.as_millis() as u64 * u64::from(rate) / 1000) as usize;
    let samples: Vec<i16> = (0..count)
        .map(|index| {
            let phase = index as f64 * 440.0 * std::f64::consts::TAU / f64::from(rate);
            (phase.sin() * 3000.0) as i16
        })
        .collect();
    wav::pcm16_mono(&samples, rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_phones_read_as_written() {
        assert_eq!(
            parse_script("5,#").unwrap(),
            vec![
                Key::Press('5'),
                Key::Pause(Duration::from_secs(1)),
                Key::Press('#')
            ]
        );
        assert!(parse_script("5x").unwrap_err().contains("`x`"));
        assert_eq!(
            Phone::parse("answer after 3s").unwrap(),
            Phone::AnswerAfter(Duration::from_secs(3))
        );
        assert_eq!(Phone::parse("busy").unwrap(), Phone::Busy);
        assert!(Phone::parse("maybe").is_err());
    }
}
