//! Calls: a SIP dialog and its RTP media behind the runtime's call
//! abstraction (`pbx_runtime::call`). Each leg has a task of its own here
//! that carries out the owning script task's `LegCommand`s on the dialog
//! and the media, and reports what the peer does (DTMF, hang-up, answer)
//! back to the owner.

use std::sync::Arc;
use std::time::Duration;

use pbx_media::engine::{MediaEvent, MediaSession};
use pbx_media::prompt::Prompt;
use pbx_runtime::address::{self, Destination};
use pbx_runtime::call::{
    Leg, LegCommand, LegId, LegInfo, LegState, Media, MixerCommand, MuteMode, Owner, Played, Reply,
};
use pbx_runtime::task::TaskInput;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::*;
use rsipstack::sip::{Header, Request, StatusCode, Uri};
use rsipstack::transaction::transaction::{Transaction, TransactionEvent};
use tokio::sync::{mpsc, oneshot};

use crate::digest::DigestError;
use crate::registrar::source_of;
use crate::sdp::{self, Direction, Negotiated};
use crate::server::SipShared;

/// What the peer offered and pbxd answered, for a call that came in.
struct Session {
    /// pbxd's SDP (the answer for an incoming call, the offer for an
    /// outgoing one), and its version, raised at each change.
    local_sdp: String,
    session_id: u64,
    version: u64,
    negotiated: Option<Negotiated>,
}

/// One SIP call leg's network side.
struct SipCall {
    shared: Arc<SipShared>,
    id: LegId,
    dialog: InviteDialog,
    media: Arc<MediaSession>,
    owner: Owner,
    outgoing: bool,
    answered: bool,
    session: Session,
    /// For a call that came in: where responses to its INVITE go (302).
    invite: Option<(
        Request,
        rsipstack::transaction::transaction::TransactionEventSender,
    )>,
    /// A blind transfer waiting for the REFER's outcome.
    transfer: Option<Reply>,
    /// Whether pbxd put the peer on hold.
    holding: bool,
    /// The caller's address, shown to the phones a fork rings.
    caller: String,
    /// Phones a `ForkCall` rings while the task keeps the call, and where
    /// their legs report.
    forks: Vec<(String, Leg)>,
    fork_sender: mpsc::UnboundedSender<TaskInput>,
    fork_inputs: mpsc::UnboundedReceiver<TaskInput>,
    /// The forked phone that answered: the caller talks to it, and the leg
    /// no longer belongs to the task.
    joined: Option<Leg>,
}

fn status(code: u16) -> StatusCode {
    StatusCode::from(code)
}

/// `%23` and other escapes in a URI's user part (RFC 3261 §19.1.2).
pub fn percent_decode(text: &str) -> String {
    crate::percent_decode(text)
}

/// A new incoming INVITE (outside any dialog).
pub async fn incoming(shared: Arc<SipShared>, mut tx: Transaction) {
    let Some(runtime) = shared.runtime().cloned() else {
        let _ = tx.reply(StatusCode::ServiceUnavailable).await;
        return;
    };
    let request = tx.original.clone();
    let user = request.uri.user().map(percent_decode).unwrap_or_default();
    let Some(domain) = shared.domain_for(&request.uri.host().to_string()) else {
        let _ = tx.reply(StatusCode::NotFound).await;
        return;
    };
    let target = format!("{user}@{domain}");
    let Ok(from) = request.from_header().and_then(|from| from.uri()) else {
        let _ = tx.reply(StatusCode::BadRequest).await;
        return;
    };
    let Some((source, _)) = source_of(&tx) else {
        let _ = tx.reply(StatusCode::BadRequest).await;
        return;
    };
    // Who calls: a caller claiming one of our accounts must prove it, and
    // so must any call that would go beyond the server (FEATURES.md §12).
    let caller_account = shared
        .domain_for(&from.host().to_string())
        .and_then(|from_domain| {
            let name = from.user().map(percent_decode).unwrap_or_default();
            runtime.directory.find(&name, &from_domain)
        });
    let destination = address::resolve(&runtime.directory, &target, None, None);
    let outside = matches!(destination, Ok(Destination::Outside(_)));
    let mut authenticated = None;
    if caller_account.is_some() || outside {
        match authenticate(&shared, &tx, &domain, "INVITE") {
            Ok(account) => authenticated = Some(account),
            Err(refusal) => {
                let (code, headers) = refusal;
                let _ = tx.reply_with(code, headers, None).await;
                return;
            }
        }
    }
    if let (Ok(Destination::Outside(number)), Some(account)) = (&destination, &authenticated) {
        if !account.class_of_service.allows(number) {
            let _ = tx.reply(StatusCode::Forbidden).await;
            return;
        }
    }
    // The offer: audio in PCMU or PCMA, or 488. An INVITE without one
    // gets pbxd's offer in the 200, and the answer comes in the ACK.
    let offer = if request.body().is_empty() {
        None
    } else {
        match sdp::parse(&String::from_utf8_lossy(request.body())) {
            Ok(offer) => Some(offer),
            Err(error) => {
                tracing::debug!(%error, "INVITE without a usable offer");
                let code = if error.is_not_acceptable() {
                    StatusCode::NotAcceptableHere
                } else {
                    StatusCode::BadRequest
                };
                let _ = tx.reply(code).await;
                return;
            }
        }
    };
    let media = match shared.media.open(shared.media_ip()).await {
        Ok(media) => media,
        Err(error) => {
            tracing::warn!(%error, "no media socket for a call");
            let _ = tx.reply(StatusCode::ServiceUnavailable).await;
            return;
        }
    };
    let session_id = u64::from(crate::random_u32());
    let port = media.local_addr().port();
    let (local_sdp, negotiated) = match &offer {
        Some(offer) => match sdp::answer(offer, shared.advertise, port, session_id, 1) {
            // Media starts flowing when the call is answered (or early
            // media is provisioned), not before.
            Ok((answer, negotiated)) => (answer, Some(negotiated)),
            Err(_) => {
                let _ = tx.reply(StatusCode::NotAcceptableHere).await;
                return;
            }
        },
        None => (
            sdp::offer(shared.advertise, port, session_id, 1, Direction::SendRecv),
            None,
        ),
    };
    let (state_sender, states) = shared.dialogs.new_dialog_state_channel();
    // Over TCP the Contact says so, or the peer would send ACK and BYE by UDP.
    let reliable = tx
        .connection
        .as_ref()
        .is_some_and(|connection| connection.is_reliable());
    let contact = if reliable {
        format!("{};transport=tcp", shared.contact())
    } else {
        shared.contact()
    };
    let contact = Uri::try_from(contact.as_str()).ok();
    let dialog = match shared
        .dialogs
        .get_or_create_server_invite(&tx, state_sender, None, contact)
    {
        Ok(dialog) => dialog,
        Err(error) => {
            tracing::debug!(%error, "no dialog for an INVITE");
            let _ = tx.reply(StatusCode::BadRequest).await;
            return;
        }
    };
    // Every response to this INVITE carries the dialog's To tag, the 487
    // that answers a CANCEL included (rsipstack would make up another).
    if let Ok(to) = tx.original.to_header() {
        let tagged = to.clone().with_tag(dialog.id().local_tag.into());
        tx.original.headers.unique_push(tagged.into());
    }
    let id = shared.next_leg();
    let info = LegInfo {
        remote_uri: from.to_string(),
        local_uri: request
            .to_header()
            .and_then(|to| to.uri())
            .map(|uri| uri.to_string())
            .unwrap_or_default(),
        request_uri: format!("sip:{target}"),
        remote_ip: Some(pbx_lang::value::IpEndpoint {
            address: source.ip(),
            port: Some(source.port()),
        }),
        authenticated: authenticated.as_ref().map(|account| account.address()),
        call_id: request
            .call_id_header()
            .map(|header| header.value().to_string())
            .unwrap_or_default(),
        headers: request
            .headers
            .iter()
            .filter_map(|header| {
                let text = header.to_string();
                let (name, value) = text.split_once(':')?;
                Some((name.trim().to_string(), value.trim().to_string()))
            })
            .collect(),
        transfer_supported: request.header_contains_token("Allow", "REFER"),
    };
    let media = Arc::new(media);
    let (commands, command_receiver) = mpsc::unbounded_channel();
    let (fork_sender, fork_inputs) = mpsc::unbounded_channel();
    let owner = Owner::default();
    let leg = Leg::new(id, info, LegState::Incoming, false, commands, owner.clone());
    shared.remember(id, &media, &dialog);
    let call = SipCall {
        shared: shared.clone(),
        id,
        dialog: dialog.clone(),
        media,
        owner,
        outgoing: false,
        answered: false,
        session: Session {
            local_sdp,
            session_id,
            version: 1,
            negotiated,
        },
        invite: Some((request.clone(), tx.tu_sender.clone())),
        transfer: None,
        holding: false,
        caller: from.to_string(),
        forks: Vec::new(),
        fork_sender,
        fork_inputs,
        joined: None,
    };
    tokio::task::spawn_local(call.run(command_receiver, states));
    // The INVITE transaction: 100 Trying, then the ACK or a CANCEL.
    let mut dialog_for_invite = dialog;
    tokio::task::spawn_local(async move {
        if let Err(error) = dialog_for_invite.handle(&mut tx).await {
            tracing::debug!(%error, "INVITE transaction");
        }
    });
    match runtime.incoming_call(leg, &target) {
        Ok(routed) => tracing::debug!(?routed, %target, "incoming call"),
        Err(error) => tracing::info!(%target, "incoming call refused: {error}"),
    }
}

/// Checks the request's credentials against `domain`'s accounts; the
/// refusal to send otherwise (a 407 challenge, or 403).
fn authenticate(
    shared: &SipShared,
    tx: &Transaction,
    domain: &str,
    method: &str,
) -> Result<Arc<pbx_runtime::directory::Account>, (StatusCode, Vec<Header>)> {
    let Some(runtime) = shared.runtime() else {
        return Err((StatusCode::ServiceUnavailable, Vec::new()));
    };
    let source = source_of(tx).map(|(source, _)| source.ip());
    let limit = shared.config.sip.auth_failures_per_minute;
    if source.is_some_and(|ip| shared.auth_failures.blocked(ip, limit)) {
        return Err((StatusCode::Forbidden, Vec::new()));
    }
    let digest = shared.digest(domain);
    let proxy_challenge = |stale: bool| {
        digest
            .challenges(stale)
            .into_iter()
            .map(|value| Header::ProxyAuthenticate(value.into()))
            .collect::<Vec<_>>()
    };
    let authorization = tx.original.headers.iter().find_map(|header| match header {
        Header::ProxyAuthorization(value) => Some(value.value().to_string()),
        _ => None,
    });
    let Some(authorization) = authorization else {
        return Err((StatusCode::ProxyAuthenticationRequired, proxy_challenge(false)));
    };
    let mut verified_name = None;
    let result = digest.verify(method, &authorization, |given| {
        let name = given.split('@').next().unwrap_or(given).to_string();
        let account = runtime.directory.find(&name, domain)?;
        verified_name = Some(account.name.clone());
        account.password.clone()
    });
    match result {
        Ok(_) => verified_name
            .and_then(|name| runtime.directory.find(&name, domain))
            .ok_or((StatusCode::Forbidden, Vec::new())),
        Err(DigestError::Stale) => Err((StatusCode::ProxyAuthenticationRequired, proxy_challenge(true))),
        Err(error) => {
            if let Some(ip) = source {
                shared.auth_failures.failed(ip);
            }
            tracing::info!(%domain, "INVITE authentication refused: {error}");
            Err((StatusCode::Forbidden, Vec::new()))
        }
    }
}

/// The media codec SDP chose.
fn codec_of(negotiated: &Negotiated) -> pbx_media::codec::Codec {
    if negotiated.codec.name.eq_ignore_ascii_case("PCMA") {
        pbx_media::codec::Codec::Pcma
    } else {
        pbx_media::codec::Codec::Pcmu
    }
}

/// Places an outgoing call for the runtime (`Network::place_call`).
pub fn place(shared: &Arc<SipShared>, from: &str, to: &str, owner: Owner) -> Result<Leg, String> {
    let runtime = shared.runtime().ok_or("the SIP server is not serving yet")?;
    let route = crate::route::outgoing(shared, runtime, to)?;
    let id = shared.next_leg();
    let info = LegInfo {
        remote_uri: route.request_uri.clone(),
        local_uri: format!("sip:{}", from.trim_start_matches("sip:")),
        request_uri: route.request_uri.clone(),
        call_id: String::new(),
        transfer_supported: true,
        ..LegInfo::default()
    };
    let (commands, command_receiver) = mpsc::unbounded_channel();
    let leg = Leg::new(id, info, LegState::Incoming, true, commands, owner.clone());
    let shared = shared.clone();
    let from = from.to_string();
    tokio::task::spawn_local(async move {
        match dial(&shared, id, &from, route, owner.clone()).await {
            Ok((call, states)) => call.run(command_receiver, states).await,
            Err(reason) => owner.send(TaskInput::Completed {
                leg: id,
                error: Some(reason),
            }),
        }
    });
    Ok(leg)
}

/// Sends the INVITE of an outgoing call.
async fn dial(
    shared: &Arc<SipShared>,
    id: LegId,
    from: &str,
    route: crate::route::Route,
    owner: Owner,
) -> Result<(SipCall, DialogStateReceiver), String> {
    let media = shared
        .media
        .open(shared.media_ip())
        .await
        .map_err(|error| format!("503 Service Unavailable (no media socket: {error})"))?;
    let session_id = u64::from(crate::random_u32());
    let offer = sdp::offer(
        shared.advertise,
        media.local_addr().port(),
        session_id,
        1,
        Direction::SendRecv,
    );
    let caller = crate::sip_uri(format!("sip:{}", from.trim_start_matches("sip:")).as_str())
        .map_err(|_| format!("400 Bad Request (`{from}` is not an address)"))?;
    let callee = crate::sip_uri(route.request_uri.as_str())
        .map_err(|_| format!("400 Bad Request (`{}` is not an address)", route.request_uri))?;
    let contact = Uri::try_from(shared.contact().as_str()).map_err(|error| error.to_string())?;
    let option = rsipstack::dialog::invitation::InviteOption {
        caller,
        callee,
        destination: route.destination.clone(),
        content_type: Some("application/sdp".into()),
        offer: Some(offer.clone().into_bytes()),
        contact,
        credential: route.credential.clone(),
        call_id: Some(format!(
            "{:08x}{:08x}@{}",
            crate::random_u32(),
            crate::random_u32(),
            shared.advertise
        )),
        ..Default::default()
    };
    let (state_sender, states) = shared.dialogs.new_dialog_state_channel();
    let (dialog, _outcome) = shared
        .dialogs
        .do_invite_async(option, state_sender)
        .map_err(|error| format!("500 Server Internal Error ({error})"))?;
    let media = Arc::new(media);
    shared.remember(id, &media, &dialog);
    let (fork_sender, fork_inputs) = mpsc::unbounded_channel();
    Ok((
        SipCall {
            shared: shared.clone(),
            id,
            dialog,
            media,
            owner,
            outgoing: true,
            answered: false,
            session: Session {
                local_sdp: offer,
                session_id,
                version: 1,
                negotiated: None,
            },
            invite: None,
            transfer: None,
            holding: false,
            caller: from.to_string(),
            forks: Vec::new(),
            fork_sender,
            fork_inputs,
            joined: None,
        },
        states,
    ))
}

impl SipCall {
    /// Serves the leg until it ends.
    async fn run(mut self, commands: mpsc::UnboundedReceiver<LegCommand>, mut states: DialogStateReceiver) {
        let mut events = self.media.take_events();
        let mut commands = Some(commands);
        loop {
            tokio::select! {
                command = next_command(&mut commands) => match command {
                    Some(command) => {
                        if !self.command(command).await {
                            break;
                        }
                    }
                    // A forked phone took the call: the task's letting go
                    // of the leg changes nothing.
                    None if self.joined.is_some() => commands = None,
                    // The owner let go of the leg without a word: hang up.
                    None => {
                        self.hang_up(None).await;
                        break;
                    }
                },
                input = self.fork_inputs.recv() => {
                    if let Some(input) = input {
                        if !self.fork_input(input).await {
                            break;
                        }
                    }
                }
                state = states.recv() => match state {
                    Some(state) => {
                        if !self.state(state).await {
                            break;
                        }
                    }
                    None => break,
                },
                event = next_event(&mut events) => match event {
                    Some(MediaEvent::Dtmf(symbol)) => self.owner.send(TaskInput::Dtmf(symbol)),
                    Some(MediaEvent::Inactive) => {
                        tracing::info!(leg = self.id, "no RTP from the peer: hanging up");
                        self.hang_up(Some((408, "RTP timeout".into()))).await;
                        self.owner.send(TaskInput::Disconnected { leg: self.id });
                        break;
                    }
                    None => events = None,
                },
            }
        }
        self.end_forks();
        if let Some(joined) = self.joined.take() {
            joined.send(LegCommand::Disconnect { reason: None });
        }
        self.shared.forget(self.id, &self.dialog);
        self.media.stop();
        let stats = self.media.stats();
        tracing::info!(
            leg = self.id,
            call_id = %self.dialog.id().call_id,
            rtp_sent = stats.packets_sent,
            rtp_received = stats.packets_received,
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
            LegCommand::Provision { code, media, .. } => {
                // Early media needs the offer answered (not a late offer).
                let early = media && self.session.negotiated.is_some();
                if early {
                    self.start_media();
                }
                let body = early.then(|| self.session.local_sdp.clone().into_bytes());
                let headers = body.as_ref().map(|_| vec![content_type_sdp()]);
                let _ = code;
                if let Err(error) = self.dialog.ringing(headers, body) {
                    tracing::debug!(%error, "provisional response");
                }
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
                self.answered = result.is_ok();
                let _ = reply.send(result);
            }
            LegCommand::Reject { code, reason } => {
                let _ = reason;
                let _ = self.dialog.reject(Some(status(code)), None);
                return false;
            }
            LegCommand::Redirect { targets } => {
                self.redirect(&targets);
                return false;
            }
            LegCommand::Fork { targets } => {
                for target in targets {
                    let owner = Owner::default();
                    owner.set(Some(self.fork_sender.clone()));
                    match place(&self.shared, &self.caller, &target, owner) {
                        Ok(leg) => self.forks.push((target, leg)),
                        Err(reason) => tracing::info!(leg = self.id, %target, "fork not placed: {reason}"),
                    }
                }
            }
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
            LegCommand::Bridge(other) => {
                let other = other.and_then(|handle| self.shared.media_of(handle.id));
                self.media.bridge(other.as_deref());
            }
            LegCommand::Mixer(command) => match command {
                MixerCommand::Attach(handle) => {
                    if let Some(other) = self.shared.media_of(handle.id) {
                        self.media.mixer_attach(&other);
                    }
                }
                MixerCommand::Detach(leg) => {
                    if let Some(other) = self.shared.media_of(leg) {
                        self.media.mixer_detach(other.id());
                    }
                }
                MixerCommand::Mute { leg, mode } => {
                    if let Some(other) = self.shared.media_of(leg) {
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

    /// Sends media where the offer/answer said (once the call is answered,
    /// or has early media).
    fn start_media(&self) {
        if let Some(negotiated) = &self.session.negotiated {
            self.media.set_remote(
                negotiated.remote,
                codec_of(negotiated),
                negotiated.telephone_event,
            );
        }
    }

    /// Cancels the forked phones still ringing.
    fn end_forks(&mut self) {
        for (_, leg) in self.forks.drain(..) {
            leg.send(LegCommand::Disconnect { reason: None });
        }
    }

    /// What happened on a forked phone's leg; false when this leg is over.
    async fn fork_input(&mut self, input: TaskInput) -> bool {
        match input {
            TaskInput::Completed { leg, error: None } => {
                let Some(index) = self.forks.iter().position(|(_, fork)| fork.id == leg) else {
                    return true;
                };
                let (target, fork) = self.forks.remove(index);
                if self.answered || self.joined.is_some() {
                    fork.send(LegCommand::Disconnect { reason: None });
                    return true;
                }
                self.end_forks();
                self.start_media();
                let body = self.session.local_sdp.clone().into_bytes();
                if let Err(error) = self.dialog.accept(Some(vec![content_type_sdp()]), Some(body)) {
                    tracing::info!(leg = self.id, %error, "the caller could not be answered for a fork");
                    fork.send(LegCommand::Disconnect { reason: None });
                    return true;
                }
                self.answered = true;
                if let Some(other) = self.shared.media_of(fork.id) {
                    self.media.bridge(Some(&other));
                }
                self.owner.send(TaskInput::AnsweredElsewhere {
                    leg: self.id,
                    by: target,
                });
                self.owner = Owner::default();
                self.joined = Some(fork);
            }
            TaskInput::Completed { leg, error: Some(_) } => {
                self.forks.retain(|(_, fork)| fork.id != leg);
            }
            TaskInput::Disconnected { leg }
                if self.joined.as_ref().is_some_and(|joined| joined.id == leg) =>
            {
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
            Media::File { path, .. } => self.shared.prompts.get(path).ok(),
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
    async fn hang_up(&mut self, reason: Option<(u16, String)>) {
        let state = self.dialog.state();
        if matches!(state, DialogState::Terminated(..)) {
            return;
        }
        let confirmed =
            matches!(state, DialogState::Confirmed(..) | DialogState::WaitAck(..)) || self.answered;
        let result = if confirmed {
            match reason {
                Some((code, text)) => {
                    let reason = format!("SIP;cause={code};text=\"{}\"", text.replace('"', "'"));
                    self.dialog
                        .bye_with_headers(Some(vec![Header::Reason(reason.into())]))
                        .await
                }
                None => self.dialog.bye().await,
            }
        } else if self.outgoing {
            self.dialog.cancel().await
        } else {
            self.dialog.reject(Some(StatusCode::TemporarilyUnavailable), None)
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
            .shared
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

    /// Puts the peer on hold (re-INVITE with `sendonly`) or takes it off.
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
        let offer = sdp::offer(
            self.shared.advertise,
            self.media.local_addr().port(),
            self.session.session_id,
            self.session.version,
            direction,
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
    async fn refer(&mut self, target: &str, reply: Reply) {
        let uri = match self.shared.runtime() {
            Some(runtime) => crate::route::refer_target(&self.shared, runtime, target),
            None => None,
        };
        let Some(uri) = uri else {
            let _ = reply.send(Err(format!("`{target}` cannot be reached")));
            return;
        };
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
        let Some(other_dialog) = self.shared.dialog_of(other) else {
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
            DialogState::Early(_, response) => {
                if self.outgoing {
                    self.take_answer(response.body());
                    self.owner.send(TaskInput::Provisional {
                        leg: self.id,
                        code: u16::from(response.status_code.clone()),
                    });
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
                        self.hang_up(Some((488, "Not Acceptable Here".into()))).await;
                        self.owner.send(TaskInput::Disconnected { leg: self.id });
                        return false;
                    }
                }
                if self.outgoing && !self.answered {
                    self.answered = true;
                    self.take_answer(response.body());
                    self.owner.send(TaskInput::Completed {
                        leg: self.id,
                        error: None,
                    });
                }
            }
            DialogState::Terminated(_, reason) => {
                let error = failure(&reason);
                if self.outgoing && !self.answered {
                    self.owner.send(TaskInput::Completed {
                        leg: self.id,
                        error: Some(error.unwrap_or_else(|| "487 Request Terminated".into())),
                    });
                } else {
                    self.owner.send(TaskInput::Disconnected { leg: self.id });
                }
                return false;
            }
            DialogState::Info(_, request, handle) => {
                if let Some(symbol) = dtmf_relay(&request) {
                    self.owner.send(TaskInput::Dtmf(symbol));
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
            DialogState::Calling(_) | DialogState::Trying(_) | DialogState::WaitAck(..) => {}
        }
        true
    }

    /// Reads the SDP answer to pbxd's offer (a 183 or the 200).
    fn take_answer(&mut self, body: &[u8]) {
        if body.is_empty() {
            return;
        }
        let parsed = sdp::parse(&String::from_utf8_lossy(body))
            .and_then(|answer| sdp::negotiated_from_answer(&answer));
        match parsed {
            Ok(negotiated) => {
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
        self.session.version += 1;
        match sdp::answer(
            &offer,
            self.shared.advertise,
            self.media.local_addr().port(),
            self.session.session_id,
            self.session.version,
        ) {
            Ok((answer, negotiated)) => {
                self.media.set_remote(
                    negotiated.remote,
                    codec_of(&negotiated),
                    negotiated.telephone_event,
                );
                self.media.hold(negotiated.on_hold());
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

async fn next_command(commands: &mut Option<mpsc::UnboundedReceiver<LegCommand>>) -> Option<LegCommand> {
    match commands {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_event(events: &mut Option<mpsc::UnboundedReceiver<MediaEvent>>) -> Option<MediaEvent> {
    match events {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// Why a dialog ended, as the script sees a failed call (`486 Busy Here`).
fn failure(reason: &TerminatedReason) -> Option<String> {
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
    Some(format!("{code} {}", pbx_runtime::call::reason_phrase(code)))
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
