//! A call leg's network end: a SIP dialog and its RTP media behind the
//! runtime's call seam (`pbx_runtime::call`). Each leg has a task of its
//! own here, on the shard of its dialog, that carries out the owner's
//! `LegCommand`s on the dialog and the media, and reports what the peer
//! does (DTMF, hang-up, answer) back to the owner as `LegEvent`s.

use std::sync::Arc;
use std::time::Duration;

use pbx_media::engine::{MediaEvent, MediaEvents, MediaSession};
use pbx_media::prompt::Prompt;
use pbx_runtime::address::Destination;
use pbx_runtime::admission::CallPermit;
use pbx_runtime::call::{
    CallError, Leg, LegCommand, LegCommands, LegEnd, LegEvent, LegId, LegReport, Media, MixerCommand,
    MuteMode, OutgoingCall, Owner, Played, Reply, Status, Target,
};
use pbx_runtime::queue;
use rsipstack::dialog::dialog::{DialogState, TerminatedReason};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::*;
use rsipstack::sip::{Header, Request, StatusCode};
use rsipstack::transaction::transaction::{TransactionEvent, TransactionEventSender};
use tokio::sync::oneshot;

use crate::sdp::{self, Direction, Negotiated};
use crate::server::{SipNetwork, SipShard, StateReceiver};
use crate::trunk::Failover;
use pbx_media::srtp::MasterKey;

/// pbxd's side of the offer/answer.
pub(crate) struct Session {
    /// pbxd's SDP (the answer for an incoming call, the offer for an
    /// outgoing one), and its version, raised at each change.
    local_sdp: String,
    session_id: u64,
    version: u64,
    negotiated: Option<Negotiated>,
    /// pbxd's SRTP key in this session's SDP, when its media is encrypted
    /// (kept for re-INVITEs, both ways).
    srtp_key: Option<MasterKey>,
}

impl Session {
    pub fn new(local_sdp: String, session_id: u64, negotiated: Option<Negotiated>) -> Session {
        Session {
            local_sdp,
            session_id,
            version: 1,
            negotiated,
            srtp_key: None,
        }
    }

    /// This session with pbxd's SRTP key (its SDP carries it).
    pub fn with_srtp_key(mut self, key: Option<MasterKey>) -> Session {
        self.srtp_key = key;
        self
    }
}

/// Phones a `ForkCall` rings while the owner keeps the call, and where
/// their legs report. Made only when a call is forked.
struct Forks {
    legs: Vec<(String, Leg)>,
    sender: queue::Sender<LegReport>,
    reports: queue::Receiver<LegReport>,
}

/// One SIP call leg's network end.
pub(crate) struct SipCall {
    network: Arc<SipNetwork>,
    shard: Arc<SipShard>,
    id: LegId,
    dialog: InviteDialog,
    media: Arc<MediaSession>,
    owner: Owner,
    /// `None` once the owner let go of the leg (a fork answered elsewhere).
    commands: Option<LegCommands>,
    outgoing: bool,
    answered: bool,
    session: Session,
    /// For a call that came in: where responses to its INVITE go (302).
    invite: Option<(Request, TransactionEventSender)>,
    /// A blind transfer waiting for the REFER's outcome.
    transfer: Option<Reply>,
    /// Whether pbxd put the peer on hold.
    holding: bool,
    /// The caller's address, shown to the phones a fork rings.
    caller: String,
    forks: Option<Forks>,
    /// The forked phone that answered: the caller talks to it, and the leg
    /// no longer belongs to the owner.
    joined: Option<Leg>,
    /// Counts an incoming call against the limits until it ends.
    _permit: Option<CallPermit>,
    /// For a call out through a trunk: the trunks still to try, and how
    /// the one tried now is doing.
    failover: Option<Box<Failover>>,
}

fn status(code: u16) -> StatusCode {
    StatusCode::from(code)
}

/// The media codec SDP chose.
fn codec_of(negotiated: &Negotiated) -> pbx_media::codec::Codec {
    if negotiated.codec.name.eq_ignore_ascii_case("PCMA") {
        pbx_media::codec::Codec::Pcma
    } else {
        pbx_media::codec::Codec::Pcmu
    }
}

/// What a call leg's network end is made of.
pub(crate) struct CallParts {
    pub network: Arc<SipNetwork>,
    pub shard: Arc<SipShard>,
    pub end: LegEnd,
    pub dialog: InviteDialog,
    pub media: Arc<MediaSession>,
    pub outgoing: bool,
    pub session: Session,
    /// The caller's address, shown to the phones a fork rings.
    pub caller: String,
}

impl SipCall {
    pub fn new(parts: CallParts) -> SipCall {
        SipCall {
            network: parts.network,
            shard: parts.shard,
            id: parts.end.id,
            dialog: parts.dialog,
            media: parts.media,
            owner: parts.end.owner,
            commands: Some(parts.end.commands),
            outgoing: parts.outgoing,
            answered: false,
            session: parts.session,
            invite: None,
            transfer: None,
            holding: false,
            caller: parts.caller,
            forks: None,
            joined: None,
            _permit: None,
            failover: None,
        }
    }

    /// An outgoing call through a trunk: what to fail over to.
    pub fn with_failover(mut self, failover: Option<Box<Failover>>) -> SipCall {
        self.failover = failover;
        self
    }

    /// An incoming call: its INVITE (for a 302) and its permit.
    pub fn incoming(
        mut self,
        invite: Request,
        responder: TransactionEventSender,
        permit: CallPermit,
    ) -> SipCall {
        self.invite = Some((invite, responder));
        self._permit = Some(permit);
        self
    }

    /// Serves the leg until it ends.
    pub async fn run(mut self, mut states: StateReceiver) {
        let mut events = self.media.take_events();
        loop {
            // Failed over to another trunk: its dialog's states from now on.
            if let Some(next) = self.failover.as_mut().and_then(|failover| failover.states.take()) {
                states = next;
            }
            let silent_after = self.failover.as_ref().and_then(|failover| failover.deadline());
            tokio::select! {
                command = next_command(&mut self.commands) => match command {
                    Some(command) => {
                        if !Box::pin(self.command(command)).await {
                            break;
                        }
                    }
                    // A forked phone took the call: the owner's letting go
                    // of the leg changes nothing.
                    None if self.joined.is_some() => self.commands = None,
                    // The owner let go of the leg without a word: hang up.
                    None => {
                        Box::pin(self.hang_up(None)).await;
                        break;
                    }
                },
                report = next_fork_report(&mut self.forks) => {
                    if let Some(report) = report {
                        if !Box::pin(self.fork_report(report)).await {
                            break;
                        }
                    }
                }
                state = states.recv() => match state {
                    Some(state) => {
                        if !Box::pin(self.state(state)).await {
                            break;
                        }
                    }
                    None => break,
                },
                event = next_event(&mut events) => match event {
                    Some(MediaEvent::Dtmf(symbol)) => self.owner.report(LegEvent::Dtmf(symbol)),
                    Some(MediaEvent::Inactive) => {
                        tracing::info!(leg = self.id, "no RTP from the peer: hanging up");
                        Box::pin(self.hang_up(Some(Status::with_reason(408, "RTP timeout")))).await;
                        self.owner.report(LegEvent::Disconnected);
                        break;
                    }
                    None => events = None,
                },
                () = crate::trunk::silence(silent_after) => {
                    if !Box::pin(self.trunk_silent()).await {
                        break;
                    }
                }
            }
        }
        self.end_forks();
        if let Some(joined) = self.joined.take() {
            joined.send(LegCommand::Disconnect { reason: None });
        }
        self.network.shared.forget(self.id);
        let dialog = self.dialog.id();
        self.shard.states.forget(&dialog);
        self.shard.dialogs.remove_dialog(&dialog);
        self.media.stop();
        let stats = self.media.stats();
        self.network
            .shared
            .counts
            .leg_ended(self.outgoing, self.answered, &stats);
        tracing::info!(
            leg = self.id,
            call_id = %self.dialog.id().call_id,
            rtp_sent = stats.packets_sent,
            rtp_received = stats.packets_received,
            rtp_lost = stats.packets_lost,
            srtp_refused = stats.srtp_refused,
            "call leg ended"
        );
    }

    /// Carries out a command; false when the leg is over.
    async fn command(&mut self, command: LegCommand) -> bool {
        match command {
            // A call handed on after it was answered (RedirectCall on a
            // connected call): it rings on and is connected again without
            // another provisional or final response.
            LegCommand::Provision { .. } if self.answered => {}
            LegCommand::Accept { reply } if self.answered => {
                let _ = reply.send(Ok(()));
            }
            LegCommand::Reject { .. } | LegCommand::Redirect { .. } if self.answered => {
                self.hang_up(None).await;
                return false;
            }
            LegCommand::Provision { media, .. } => {
                // Early media needs the offer answered (not a late offer).
                let early = media && self.session.negotiated.is_some();
                if early {
                    self.start_media();
                }
                let body = early.then(|| self.session.local_sdp.clone().into_bytes());
                let headers = body.as_ref().map(|_| vec![content_type_sdp()]);
                if let Err(error) = self.dialog.ringing(headers, body) {
                    tracing::debug!(%error, "provisional response");
                }
                self.shard.relay.flush();
            }
            LegCommand::Accept { reply } => {
                // The task answers: the forked phones stop ringing.
                self.end_forks();
                self.start_media();
                let body = self.session.local_sdp.clone().into_bytes();
                let result = self
                    .dialog
                    .accept(Some(vec![content_type_sdp()]), Some(body))
                    .map_err(|error| error.to_string());
                self.shard.relay.flush();
                self.answered = result.is_ok();
                if self.answered {
                    self.answered_now();
                }
                let _ = reply.send(result);
            }
            LegCommand::Reject { status: refusal } => {
                let _ = self.dialog.reject(Some(status(refusal.code())), None);
                self.shard.relay.flush();
                return false;
            }
            LegCommand::Redirect { targets } => {
                self.redirect(&targets);
                return false;
            }
            LegCommand::Fork { targets } => self.fork(targets),
            LegCommand::Disconnect { reason } => {
                self.hang_up(reason).await;
                return false;
            }
            LegCommand::Play { media, limit, reply } => self.play(media, limit, reply),
            LegCommand::Stop => self.media.stop(),
            LegCommand::Record { limit, reply } => {
                let recording = self.media.record(limit);
                tokio::task::spawn_local(async move {
                    let _ = reply.send(recording.await.unwrap_or_default());
                });
            }
            LegCommand::SendDtmf(symbol) => self.media.send_dtmf(symbol),
            LegCommand::Hold(on) => self.hold(on).await,
            LegCommand::Music { prompt, when_idle } => {
                self.media.set_music(prompt);
                self.media.music_when_idle(when_idle);
            }
            LegCommand::Bridge(other) => {
                let other = other.and_then(|handle| self.network.shared.media_of(handle.id));
                self.media.bridge(other.as_deref());
            }
            LegCommand::Mixer(command) => match command {
                MixerCommand::Attach(handle) => {
                    if let Some(other) = self.network.shared.media_of(handle.id) {
                        self.media.mixer_attach(&other);
                    }
                }
                MixerCommand::Detach(leg) => {
                    if let Some(other) = self.network.shared.media_of(leg) {
                        self.media.mixer_detach(other.id());
                    }
                }
                MixerCommand::Mute { leg, mode } => {
                    if let Some(other) = self.network.shared.media_of(leg) {
                        self.media.mixer_mute(other.id(), media_mute(mode));
                    }
                }
            },
            LegCommand::Transfer { target, reply } => self.refer(&target, reply).await,
            LegCommand::Join { other, reply } => {
                let result = self.join(other.id).await;
                let joined = result.is_ok();
                let _ = reply.send(result);
                if joined {
                    return false;
                }
            }
        }
        true
    }

    /// An incoming call is answered: what only a pending call needs goes.
    /// The INVITE's transaction queue (room for 32 events, 11 KB) would
    /// otherwise be held for the whole call.
    fn answered_now(&mut self) {
        self.invite = None;
        // For the call record: pbxd answered the caller.
        self.owner.answered();
    }

    /// Sends media where the offer/answer said (once the call is answered,
    /// or has early media).
    fn start_media(&self) {
        if let Some(negotiated) = &self.session.negotiated {
            // Keys first: no packet leaves in clear.
            self.media.set_srtp(negotiated.srtp.clone());
            self.media.set_remote(
                negotiated.remote,
                codec_of(negotiated),
                negotiated.telephone_event,
            );
        }
    }

    /// Rings `targets` too, for this pending call.
    fn fork(&mut self, targets: Vec<Target>) {
        let forks = self.forks.get_or_insert_with(|| {
            let (sender, reports) = queue::unbounded();
            Forks {
                legs: Vec::new(),
                sender,
                reports,
            }
        });
        for target in targets {
            let shown = target.to_string();
            let trace = self.owner.trace().and_then(|trace| {
                let records = trace.records()?;
                Some(records.outgoing(Some(trace.record()), &self.caller, &shown))
            });
            let call = OutgoingCall {
                from: self.caller.clone(),
                target,
                owner: Box::new(forks.sender.clone()),
                near: Some(self.id),
                trace,
            };
            match crate::outgoing::place(&self.network, call) {
                Ok(leg) => forks.legs.push((shown, leg)),
                Err(reason) => tracing::info!(leg = self.id, target = %shown, "fork not placed: {reason}"),
            }
        }
    }

    /// Cancels the forked phones still ringing.
    fn end_forks(&mut self) {
        if let Some(forks) = &mut self.forks {
            for (_, leg) in forks.legs.drain(..) {
                leg.send(LegCommand::Disconnect { reason: None });
            }
        }
    }

    /// What happened on a forked phone's leg; false when this leg is over.
    async fn fork_report(&mut self, report: LegReport) -> bool {
        let LegReport { leg, event } = report;
        match event {
            LegEvent::Answered => {
                let Some(forks) = &mut self.forks else {
                    return true;
                };
                let Some(index) = forks.legs.iter().position(|(_, fork)| fork.id == leg) else {
                    return true;
                };
                let (target, fork) = forks.legs.remove(index);
                if self.answered || self.joined.is_some() {
                    fork.send(LegCommand::Disconnect { reason: None });
                    return true;
                }
                self.end_forks();
                self.start_media();
                let body = self.session.local_sdp.clone().into_bytes();
                let accepted = self.dialog.accept(Some(vec![content_type_sdp()]), Some(body));
                self.shard.relay.flush();
                if let Err(error) = accepted {
                    tracing::info!(leg = self.id, %error, "the caller could not be answered for a fork");
                    fork.send(LegCommand::Disconnect { reason: None });
                    return true;
                }
                self.answered = true;
                self.answered_now();
                if let Some(other) = self.network.shared.media_of(fork.id) {
                    self.media.bridge(Some(&other));
                }
                self.owner.report(LegEvent::AnsweredElsewhere { by: target });
                self.owner = self.owner.detached();
                self.joined = Some(fork);
            }
            LegEvent::Failed(_) => {
                if let Some(forks) = &mut self.forks {
                    forks.legs.retain(|(_, fork)| fork.id != leg);
                }
            }
            LegEvent::Disconnected if self.joined.as_ref().is_some_and(|joined| joined.id == leg) => {
                // The phone that took the forked call hung up.
                self.joined = None;
                self.hang_up(None).await;
                return false;
            }
            _ => {}
        }
        true
    }

    /// Plays a prompt, a datablock or a tone; the reply says how far it got.
    fn play(&self, media: Media, limit: Option<Duration>, reply: oneshot::Sender<Played>) {
        let prompt = match &media {
            Media::File { prompt, .. } => Some(prompt.clone()),
            Media::Data { bytes, .. } => Prompt::from_wav(bytes).ok().map(Arc::new),
            Media::Tone { frequencies, length } => Some(Arc::new(Prompt::tone(frequencies, None, *length))),
        };
        let Some(prompt) = prompt else {
            let _ = reply.send(Played {
                length: Duration::ZERO,
                completed: false,
            });
            return;
        };
        let played = self.media.play(prompt, limit);
        tokio::task::spawn_local(async move {
            let outcome = played.await.map_or(
                Played {
                    length: Duration::ZERO,
                    completed: false,
                },
                |played| Played {
                    length: played.length,
                    completed: played.completed,
                },
            );
            let _ = reply.send(outcome);
        });
    }

    /// Ends the call from pbxd's side: BYE when answered, CANCEL when an
    /// outgoing call still rings, 480 for an incoming one not answered.
    async fn hang_up(&mut self, reason: Option<Status>) {
        let state = self.dialog.state();
        if matches!(state, DialogState::Terminated(..)) {
            return;
        }
        let confirmed =
            matches!(state, DialogState::Confirmed(..) | DialogState::WaitAck(..)) || self.answered;
        let result = if confirmed {
            match reason {
                Some(reason) => {
                    let reason = format!(
                        "SIP;cause={};text=\"{}\"",
                        reason.code(),
                        reason.reason().replace('"', "'")
                    );
                    self.dialog
                        .bye_with_headers(Some(vec![Header::Reason(reason.into())]))
                        .await
                }
                None => self.dialog.bye().await,
            }
        } else if self.outgoing {
            self.dialog.cancel().await
        } else {
            let refused = self.dialog.reject(Some(StatusCode::TemporarilyUnavailable), None);
            self.shard.relay.flush();
            refused
        };
        if let Err(error) = result {
            tracing::debug!(leg = self.id, %error, "hang-up");
        }
    }

    /// 302 with the targets as Contacts.
    fn redirect(&self, targets: &[String]) {
        let Some((request, responder)) = &self.invite else {
            return;
        };
        let mut request = request.clone();
        let tag = self.dialog.id().local_tag;
        if let Ok(to) = request.to_header() {
            let tagged = to.clone().with_tag(tag.into());
            request.headers.unique_push(tagged.into());
        }
        let mut response = self
            .shard
            .endpoint
            .make_response(&request, StatusCode::MovedTemporarily, None);
        for target in targets {
            let uri = if target.contains(':') {
                target.clone()
            } else {
                format!("sip:{target}")
            };
            response.headers.push(Header::Contact(format!("<{uri}>").into()));
        }
        let _ = responder.send(TransactionEvent::Respond(response));
    }

    /// Puts the peer on hold (re-INVITE with `sendonly`; the media channel
    /// sends it music on hold) or takes it off.
    async fn hold(&mut self, on: bool) {
        if self.holding == on {
            return;
        }
        self.holding = on;
        self.session.version += 1;
        let direction = if on {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let offer = sdp::secure_offer(
            self.network.shared.advertise,
            self.media.local_addr().port(),
            self.session.session_id,
            self.session.version,
            direction,
            self.session.srtp_key.as_ref(),
        );
        self.media.hold(on);
        if let Err(error) = self
            .dialog
            .reinvite(Some(vec![content_type_sdp()]), Some(offer.into_bytes()))
            .await
        {
            tracing::debug!(leg = self.id, %error, "hold re-INVITE");
        }
    }

    /// Blind transfer: REFER the peer to `target`; the outcome comes in
    /// NOTIFYs.
    async fn refer(&mut self, target: &Destination, reply: Reply) {
        let uri = crate::route::refer_target(&self.network.shared, target);
        match self.dialog.refer(uri.as_str(), None, None).await {
            Ok(Some(response))
                if response.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful =>
            {
                self.transfer = Some(reply);
            }
            Ok(Some(response)) => {
                let _ = reply.send(Err(response.status_code.to_string()));
            }
            Ok(None) => {
                let _ = reply.send(Err("the call is not connected".into()));
            }
            Err(error) => {
                let _ = reply.send(Err(error.to_string()));
            }
        }
    }

    /// Attended transfer: REFER this peer to the other leg's peer, replacing
    /// the other dialog.
    async fn join(&mut self, other: LegId) -> Result<(), String> {
        let Some(other_dialog) = self.network.shared.dialog_of(other) else {
            return Err("the other call is gone".into());
        };
        let contact = rsipstack::dialog::dialog::Dialog::Invite(other_dialog.clone()).remote_contact();
        let Some(contact) = contact else {
            return Err("the other peer gave no contact".into());
        };
        let id = other_dialog.id();
        let replaces = format!(
            "{}%3Bto-tag%3D{}%3Bfrom-tag%3D{}",
            crate::percent_encode(&id.call_id),
            crate::percent_encode(&id.remote_tag),
            crate::percent_encode(&id.local_tag)
        );
        let refer_to = format!("<{contact}?Replaces={replaces}>");
        match self.dialog.refer(refer_to.as_str(), None, None).await {
            Ok(Some(response))
                if response.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful =>
            {
                Ok(())
            }
            Ok(Some(response)) => Err(response.status_code.to_string()),
            Ok(None) => Err("the call is not connected".into()),
            Err(error) => Err(error.to_string()),
        }
    }

    /// Takes in a change of the dialog; false when the leg is over.
    async fn state(&mut self, state: DialogState) -> bool {
        match state {
            DialogState::Trying(_) => self.trunk_heard(),
            DialogState::Early(_, response) => {
                if self.outgoing {
                    self.trunk_heard();
                    self.take_answer(response.body());
                    let code = u16::from(response.status_code.clone());
                    self.owner.report(LegEvent::Provisional(Status::new(code)));
                }
            }
            DialogState::Confirmed(_, response) => {
                if !self.outgoing && self.session.negotiated.is_none() {
                    // A late offer: pbxd offered in its 200, the ACK answers.
                    let ack = self.dialog.last_remote_ack();
                    let answer = ack.as_ref().map(|ack| ack.body().clone()).unwrap_or_default();
                    self.take_answer(&answer);
                    if self.session.negotiated.is_none() {
                        tracing::info!(leg = self.id, "the ACK brought no usable answer: hanging up");
                        self.hang_up(Some(Status::NOT_ACCEPTABLE_HERE)).await;
                        self.owner.report(LegEvent::Disconnected);
                        return false;
                    }
                }
                if self.outgoing && !self.answered {
                    self.trunk_heard();
                    self.answered = true;
                    self.take_answer(response.body());
                    self.owner.report(LegEvent::Answered);
                }
            }
            DialogState::Terminated(_, reason) => {
                if self.outgoing && !self.answered {
                    let status = failure(&reason).unwrap_or(Status::REQUEST_TERMINATED);
                    if self.trunk_failed(&status) {
                        return true;
                    }
                    self.owner.report(LegEvent::Failed(CallError::from(status)));
                } else {
                    self.owner.report(LegEvent::Disconnected);
                }
                return false;
            }
            DialogState::Info(_, request, handle) => {
                if let Some(symbol) = dtmf_relay(&request) {
                    self.owner.report(LegEvent::Dtmf(symbol));
                }
                let _ = handle.reply(StatusCode::OK).await;
            }
            DialogState::Updated(_, request, handle) => self.reoffer(&request, handle).await,
            DialogState::Options(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
            }
            DialogState::Notify(_, request, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
                if let Some(outcome) = refer_outcome(&request) {
                    if let Some(reply) = self.transfer.take() {
                        let transferred = outcome.is_ok();
                        let _ = reply.send(outcome);
                        if transferred {
                            // The peer talks to the target now: pbxd leaves.
                            let _ = self.dialog.bye().await;
                            return false;
                        }
                    }
                }
            }
            DialogState::Refer(_, _, handle) => {
                // A transfer asked by the peer: not taken yet.
                let _ = handle.reply(StatusCode::Decline).await;
            }
            DialogState::Message(_, _, handle) | DialogState::Publish(_, _, handle) => {
                let _ = handle.reply(StatusCode::NotImplemented).await;
            }
            DialogState::Calling(_) | DialogState::WaitAck(..) => {}
        }
        true
    }

    /// The trunk of an outgoing call said something: it is up, and has
    /// all the time it needs to answer.
    fn trunk_heard(&mut self) {
        if let Some(failover) = self.failover.as_mut() {
            failover.heard(&self.network.shared);
        }
    }

    /// The trunk's INVITE ended with `status` before an answer; whether
    /// the call goes on through the next trunk.
    fn trunk_failed(&mut self, status: &Status) -> bool {
        let Some(failover) = self.failover.as_mut() else {
            return false;
        };
        if !crate::trunk::fails_over(status.code()) {
            // 404, 486, 6xx...: the trunk works; the number is at fault.
            failover.heard(&self.network.shared);
            return false;
        }
        failover.failed(&self.network.shared, &status.to_string());
        self.next_trunk(status)
    }

    /// The trunk said nothing within its timeout: the call goes on through
    /// the next trunk, or fails with 408; false when the leg is over.
    async fn trunk_silent(&mut self) -> bool {
        let Some(failover) = self.failover.as_mut() else {
            return true;
        };
        let trunk = failover.trunk().to_string();
        failover.failed(&self.network.shared, "no response in time");
        // Its INVITE is cancelled once it says something (RFC 3261 §9.1).
        if let Err(error) = self.dialog.cancel().await {
            tracing::debug!(leg = self.id, %error, "cancelling a silent trunk's INVITE");
        }
        let status = Status::with_reason(408, format!("no response from trunk {trunk}"));
        if self.next_trunk(&status) {
            return true;
        }
        self.owner.report(LegEvent::Failed(CallError::new(
            Status::REQUEST_TIMEOUT,
            format!("trunk {trunk} did not answer"),
        )));
        false
    }

    /// Sends the INVITE to the next trunk that carries the number, the one
    /// tried having failed with `status`; false when none is left.
    fn next_trunk(&mut self, status: &Status) -> bool {
        let Some(failover) = self.failover.as_mut() else {
            return false;
        };
        let trace = self.owner.trace();
        while let Some(route) = failover.next_route() {
            let sent = crate::outgoing::invite(
                &self.network,
                &self.shard,
                self.id,
                &self.caller,
                &route,
                &self.session.local_sdp,
                trace.as_ref(),
            );
            match sent {
                Ok((dialog, states)) => {
                    tracing::info!(
                        leg = self.id,
                        failed = %failover.trunk(),
                        next = %route.trunk.as_deref().unwrap_or_default(),
                        %status,
                        "failing over to the next trunk"
                    );
                    // The last trunk's dialog is no longer this leg's.
                    self.shard.states.forget(&self.dialog.id());
                    self.network.shared.remember(self.id, &self.media, &dialog);
                    self.dialog = dialog;
                    if let Some(trace) = &trace {
                        trace.reaches(None, route.trunk.as_deref());
                    }
                    failover.began(&self.network.shared, &route, states);
                    return true;
                }
                Err(error) => {
                    tracing::info!(leg = self.id, trunk = ?route.trunk, %error, "no INVITE to the next trunk");
                }
            }
        }
        false
    }

    /// Reads the SDP answer to pbxd's offer (a 183 or the 200).
    fn take_answer(&mut self, body: &[u8]) {
        if body.is_empty() {
            return;
        }
        let key = self.session.srtp_key.as_ref();
        let parsed = sdp::parse(&String::from_utf8_lossy(body))
            .and_then(|answer| sdp::negotiated_from_secure_answer(&answer, key));
        match parsed {
            Ok(negotiated) => {
                self.media.set_srtp(negotiated.srtp.clone());
                self.media.set_remote(
                    negotiated.remote,
                    codec_of(&negotiated),
                    negotiated.telephone_event,
                );
                self.session.negotiated = Some(negotiated);
            }
            Err(error) => tracing::info!(leg = self.id, %error, "unusable SDP answer"),
        }
    }

    /// A re-INVITE (or UPDATE) from the peer: new address, hold, unhold.
    async fn reoffer(&mut self, request: &Request, handle: rsipstack::dialog::dialog::TransactionHandle) {
        let body = String::from_utf8_lossy(request.body()).into_owned();
        if body.trim().is_empty() {
            // No offer: answer with the current session.
            let sdp = self.session.local_sdp.clone().into_bytes();
            let _ = handle
                .respond(StatusCode::OK, Some(vec![content_type_sdp()]), Some(sdp))
                .await;
            return;
        }
        let offer = match sdp::parse(&body) {
            Ok(offer) => offer,
            Err(_) => {
                let _ = handle.reply(StatusCode::BadRequest).await;
                return;
            }
        };
        // The key already in use, else a fresh one if the offer brings
        // one (and SRTP is not off); plain audio where it is mandatory: 488.
        let key = match (&self.session.srtp_key, &offer.crypto) {
            (Some(key), Some(_)) => Ok(Some(key.clone())),
            _ => self.network.shared.srtp.answer_key(&offer),
        };
        let Ok(key) = key else {
            let _ = handle.reply(StatusCode::NotAcceptableHere).await;
            return;
        };
        self.session.version += 1;
        match sdp::secure_answer(
            &offer,
            self.network.shared.advertise,
            self.media.local_addr().port(),
            self.session.session_id,
            self.session.version,
            key.as_ref(),
        ) {
            Ok((answer, negotiated)) => {
                self.session.srtp_key = key;
                self.media.set_srtp(negotiated.srtp.clone());
                self.media.set_remote(
                    negotiated.remote,
                    codec_of(&negotiated),
                    negotiated.telephone_event,
                );
                // The peer holds us: its bridge partner hears music.
                self.media.peer_hold(negotiated.on_hold());
                self.session.local_sdp = answer.clone();
                self.session.negotiated = Some(negotiated);
                let _ = handle
                    .respond(
                        StatusCode::OK,
                        Some(vec![content_type_sdp()]),
                        Some(answer.into_bytes()),
                    )
                    .await;
            }
            Err(_) => {
                let _ = handle.reply(StatusCode::NotAcceptableHere).await;
            }
        }
    }
}

fn content_type_sdp() -> Header {
    Header::ContentType("application/sdp".into())
}

fn media_mute(mode: MuteMode) -> pbx_media::engine::MuteMode {
    use pbx_media::engine::MuteMode as Engine;
    match mode {
        MuteMode::Muted(muted) => Engine::Muted(muted),
        MuteMode::Special => Engine::Special,
        MuteMode::HearsSpecial => Engine::HearsSpecial,
        MuteMode::HearsMute => Engine::HearsMute,
        MuteMode::HearsNormal => Engine::HearsNormal,
    }
}

async fn next_command(commands: &mut Option<LegCommands>) -> Option<LegCommand> {
    match commands {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_fork_report(forks: &mut Option<Forks>) -> Option<LegReport> {
    match forks {
        Some(forks) => forks.reports.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_event(events: &mut Option<MediaEvents>) -> Option<MediaEvent> {
    match events {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// Why a dialog ended, as the owner sees a failed call (`486 Busy Here`).
fn failure(reason: &TerminatedReason) -> Option<Status> {
    let code = match reason {
        TerminatedReason::Timeout => 408,
        TerminatedReason::UacCancel => 487,
        TerminatedReason::UasBusy | TerminatedReason::UacBusy => 486,
        TerminatedReason::UasDecline => 603,
        TerminatedReason::ProxyAuthRequired => 407,
        TerminatedReason::ProxyError(code)
        | TerminatedReason::UacOther(code)
        | TerminatedReason::UasOther(code) => u16::from(code.clone()),
        TerminatedReason::UacBye | TerminatedReason::UasBye => return None,
    };
    Some(Status::new(code))
}

/// The DTMF symbol of an INFO with `application/dtmf-relay` (`Signal=5`).
fn dtmf_relay(request: &Request) -> Option<char> {
    let body = String::from_utf8_lossy(request.body());
    body.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("signal") {
            return None;
        }
        let symbol = value.trim().chars().next()?.to_ascii_uppercase();
        matches!(symbol, '0'..='9' | '*' | '#' | 'A'..='D').then_some(symbol)
    })
}

/// The outcome a REFER's NOTIFY reports (`message/sipfrag`), once final.
fn refer_outcome(request: &Request) -> Option<Result<(), String>> {
    let body = String::from_utf8_lossy(request.body());
    let line = body.lines().next()?;
    let code: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    match code {
        100..=199 => None,
        200..=299 => Some(Ok(())),
        _ => Some(Err(line.trim_start_matches("SIP/2.0").trim().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> Request {
        let text = format!(
            "INFO sip:pbx@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <sip:pbx@example.com>;tag=2\r\nCall-ID: x\r\n\
             CSeq: 2 INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Request::try_from(text.as_str()).unwrap()
    }

    #[test]
    fn dtmf_relay_bodies() {
        assert_eq!(dtmf_relay(&request("Signal=5\r\nDuration=160\r\n")), Some('5'));
        assert_eq!(dtmf_relay(&request("signal= #\r\n")), Some('#'));
        assert_eq!(dtmf_relay(&request("Signal=x\r\n")), None);
        assert_eq!(dtmf_relay(&request("")), None);
    }

    #[test]
    fn refer_notifications() {
        let notify = |body: &str| {
            let mut request = request(body);
            request.body = body.as_bytes().to_vec();
            refer_outcome(&request)
        };
        assert_eq!(notify("SIP/2.0 100 Trying\r\n"), None);
        assert_eq!(notify("SIP/2.0 200 OK\r\n"), Some(Ok(())));
        assert_eq!(
            notify("SIP/2.0 486 Busy Here\r\n"),
            Some(Err("486 Busy Here".into()))
        );
    }
}
