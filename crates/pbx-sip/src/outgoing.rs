//! Outgoing calls (`Network::place_call`): the leg is made at once; the
//! INVITE goes out from the shard that will own the dialog (this one, or,
//! for a phone registered over TCP, the one holding its connection). A
//! call to a number that fails over to another trunk sends its next
//! INVITE from the same leg (`invite`, called by `SipCall`).

use std::sync::Arc;

use pbx_runtime::call::{
    next_leg_id, CallError, Leg, LegEnd, LegEvent, LegId, LegInfo, OutgoingCall, Status, Target, Transport,
};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::Uri;

use crate::call::{CallParts, Session, SipCall};
use crate::route::{Route, Routes};
use crate::sdp::{self, Direction};
use crate::server::{SipNetwork, SipShard, StateReceiver};
use crate::trunk::Failover;

/// Places a call; must run on a shard.
pub(crate) fn place(network: &Arc<SipNetwork>, call: OutgoingCall) -> Result<Leg, CallError> {
    let here = pbx_runtime::shard::current()
        .filter(|shard| *shard < network.shards.len())
        .ok_or_else(|| CallError::new(Status::SERVER_INTERNAL_ERROR, "calls are placed from a shard"))?;
    let Routes { first: route, next } = crate::route::outgoing(&network.shared, &call.target)?;
    let owner_shard = match &call.target {
        Target::Device(device) if matches!(device.transport, Transport::Tcp | Transport::Tls) => device
            .address
            .and_then(|address| network.shared.tcp_shard(address))
            .unwrap_or(here),
        _ => here,
    };
    let id = next_leg_id();
    let info = LegInfo {
        remote_uri: route.request_uri.clone(),
        local_uri: format!("sip:{}", call.from.trim_start_matches("sip:")),
        request_uri: route.request_uri.clone(),
        transfer_supported: true,
        ..LegInfo::default()
    };
    let (leg, end) = Leg::new(id, info, true, Some(call.owner));
    leg.set_trace(call.trace);
    if let (Some(trace), Some(trunk)) = (leg.trace(), &route.trunk) {
        trace.reaches(None, Some(trunk));
    }
    let shard = network.shards[owner_shard].clone();
    let start = {
        let network = network.clone();
        let from = call.from;
        let near = call.near;
        let trace = leg.trace();
        move || {
            tokio::task::spawn_local(async move {
                match dial(&network, &shard, id, &from, &route, near, trace).await {
                    Ok((call, states)) => {
                        let failover = Failover::start(&network.shared, &route, next);
                        call.with_end(end).with_failover(failover).run(states).await;
                    }
                    Err(error) => end.owner.report(LegEvent::Failed(error)),
                }
            });
        }
    };
    if owner_shard == here {
        start();
    } else {
        network.spawner.run_on(owner_shard, start);
    }
    Ok(leg)
}

/// Opens the media of an outgoing call and sends its INVITE; the call is
/// ready to run once it has its leg's end.
async fn dial(
    network: &Arc<SipNetwork>,
    shard: &Arc<SipShard>,
    id: LegId,
    from: &str,
    route: &Route,
    near: Option<LegId>,
    trace: Option<pbx_runtime::cdr::Trace>,
) -> Result<(PendingCall, StateReceiver), CallError> {
    let shared = &network.shared;
    // Next to the media of the leg it will likely be bridged with.
    let near = near.and_then(|leg| shared.media_of(leg));
    let media = shared
        .media
        .open_near(shared.media_ip(), near.as_deref())
        .await
        .map_err(|error| CallError::new(Status::SERVICE_UNAVAILABLE, format!("no media socket: {error}")))?;
    let session_id = u64::from(crate::random_u32());
    // SRTP for a phone: to one reached over TLS, or to every one when
    // mandatory; never to a trunk.
    let key = if route.trunk.is_none() {
        shared
            .srtp
            .offer_key(over_tls(route))
            .map_err(|error| CallError::new(Status::SERVICE_UNAVAILABLE, error.to_string()))?
    } else {
        None
    };
    let offer = sdp::secure_offer(
        shared.advertise,
        media.local_addr().port(),
        session_id,
        1,
        Direction::SendRecv,
        key.as_ref(),
    );
    tracing::debug!(
        leg = id,
        destination = ?route.destination,
        srtp = key.is_some(),
        "INVITE to {}",
        route.request_uri
    );
    let (dialog, states) = invite(network, shard, id, from, route, &offer, trace.as_ref())?;
    let media = Arc::new(media);
    shared.remember(id, &media, &dialog);
    Ok((
        PendingCall {
            network: network.clone(),
            shard: shard.clone(),
            dialog,
            media,
            session: Session::new(offer, session_id, None).with_srtp_key(key),
            caller: from.to_string(),
        },
        states,
    ))
}

/// Sends leg `id`'s INVITE along `route` with `offer` (its first, or,
/// failing over, the next trunk's); its dialog, and where its states come.
pub(crate) fn invite(
    network: &Arc<SipNetwork>,
    shard: &Arc<SipShard>,
    id: LegId,
    from: &str,
    route: &Route,
    offer: &str,
    trace: Option<&pbx_runtime::cdr::Trace>,
) -> Result<(InviteDialog, StateReceiver), CallError> {
    let shared = &network.shared;
    // A trunk is shown the caller ID its way (its `outgoing_caller` rules).
    let from = match route
        .trunk
        .as_ref()
        .and_then(|name| shared.config.trunks.get(name))
    {
        Some(trunk) => trunk.outgoing_caller(from),
        None => from.to_string(),
    };
    let caller = crate::sip_uri(format!("sip:{}", from.trim_start_matches("sip:")).as_str())
        .map_err(|_| CallError::new(Status::BAD_REQUEST, format!("`{from}` is not an address")))?;
    let callee = crate::sip_uri(route.request_uri.as_str()).map_err(|_| {
        CallError::new(
            Status::BAD_REQUEST,
            format!("`{}` is not an address", route.request_uri),
        )
    })?;
    // Over TLS, the Contact asks for TLS too.
    let contact = match shared.tls_contact().filter(|_| over_tls(route)) {
        Some(contact) => contact,
        None => shared.contact(),
    };
    let contact = Uri::try_from(contact.as_str())
        .map_err(|error| CallError::new(Status::SERVER_INTERNAL_ERROR, error.to_string()))?;
    let call_id =
        crate::transport::call_id_for(shard.index, network.shards.len(), &shared.advertise.to_string());
    if let Some(trace) = trace {
        trace.call_id(&call_id);
    }
    if let Some(trunk) = &route.trunk {
        tracing::info!(leg = id, %trunk, to = %route.request_uri, "calling out through a trunk");
    }
    let to = match &route.to {
        Some((uri, _)) => Some(
            crate::sip_uri(uri.as_str())
                .map_err(|_| CallError::new(Status::BAD_REQUEST, format!("`{uri}` is not an address")))?,
        ),
        None => None,
    };
    let option = rsipstack::dialog::invitation::InviteOption {
        caller,
        callee,
        to,
        callee_display_name: route.to.as_ref().and_then(|(_, name)| name.clone()),
        destination: route.destination.clone(),
        content_type: Some("application/sdp".into()),
        offer: Some(offer.as_bytes().to_vec()),
        contact,
        credential: route.credential.clone(),
        // A Call-ID of this shard: every message of the dialog comes back here.
        call_id: Some(call_id.clone()),
        ..Default::default()
    };
    let (dialog, _outcome) = shard
        .dialogs
        .do_invite_async(option, shard.states.sender())
        .map_err(|error| CallError::new(Status::SERVER_INTERNAL_ERROR, error.to_string()))?;
    let states = shard.states.route(&dialog.id());
    Ok((dialog, states))
}

/// Whether `route` reaches its peer over TLS.
fn over_tls(route: &Route) -> bool {
    route
        .destination
        .as_ref()
        .is_some_and(|destination| destination.r#type == Some(rsipstack::sip::transport::Transport::Tls))
}

/// An outgoing call whose INVITE went out, waiting for its leg's end.
pub(crate) struct PendingCall {
    network: Arc<SipNetwork>,
    shard: Arc<SipShard>,
    dialog: rsipstack::dialog::invite_dialog::InviteDialog,
    media: Arc<pbx_media::MediaSession>,
    session: Session,
    caller: String,
}

impl PendingCall {
    fn with_end(self, end: LegEnd) -> SipCall {
        SipCall::new(CallParts {
            network: self.network,
            shard: self.shard,
            end,
            dialog: self.dialog,
            media: self.media,
            outgoing: true,
            session: self.session,
            caller: self.caller,
        })
    }
}
