//! Outgoing calls (`Network::place_call`): the leg is made at once; the
//! INVITE goes out from the shard that will own the dialog (this one, or,
//! for a phone registered over TCP, the one holding its connection).

use std::sync::Arc;

use pbx_runtime::call::{
    next_leg_id, CallError, Leg, LegEnd, LegEvent, LegId, LegInfo, OutgoingCall, Status, Target, Transport,
};
use rsipstack::sip::Uri;

use crate::call::{CallParts, Session, SipCall};
use crate::route::Route;
use crate::sdp::{self, Direction};
use crate::server::{SipNetwork, SipShard, StateReceiver};

/// Places a call; must run on a shard.
pub(crate) fn place(network: &Arc<SipNetwork>, call: OutgoingCall) -> Result<Leg, CallError> {
    let here = pbx_runtime::shard::current()
        .filter(|shard| *shard < network.shards.len())
        .ok_or_else(|| CallError::new(Status::SERVER_INTERNAL_ERROR, "calls are placed from a shard"))?;
    let route = crate::route::outgoing(&network.shared, &call.target)?;
    let owner_shard = match &call.target {
        Target::Device(device) if device.transport == Transport::Tcp => device
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
                match dial(&network, &shard, id, &from, route, near, trace).await {
                    Ok((call, states)) => call.with_end(end).run(states).await,
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

/// Sends the INVITE of an outgoing call; the call is ready to run once it
/// has its leg's end.
async fn dial(
    network: &Arc<SipNetwork>,
    shard: &Arc<SipShard>,
    id: LegId,
    from: &str,
    route: Route,
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
    let offer = sdp::offer(
        shared.advertise,
        media.local_addr().port(),
        session_id,
        1,
        Direction::SendRecv,
    );
    let caller = crate::sip_uri(format!("sip:{}", from.trim_start_matches("sip:")).as_str())
        .map_err(|_| CallError::new(Status::BAD_REQUEST, format!("`{from}` is not an address")))?;
    let callee = crate::sip_uri(route.request_uri.as_str()).map_err(|_| {
        CallError::new(
            Status::BAD_REQUEST,
            format!("`{}` is not an address", route.request_uri),
        )
    })?;
    let contact = Uri::try_from(shared.contact().as_str())
        .map_err(|error| CallError::new(Status::SERVER_INTERNAL_ERROR, error.to_string()))?;
    let call_id =
        crate::transport::call_id_for(shard.index, network.shards.len(), &shared.advertise.to_string());
    if let Some(trace) = &trace {
        trace.call_id(&call_id);
    }
    let option = rsipstack::dialog::invitation::InviteOption {
        caller,
        callee,
        destination: route.destination.clone(),
        content_type: Some("application/sdp".into()),
        offer: Some(offer.clone().into_bytes()),
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
    let media = Arc::new(media);
    shared.remember(id, &media, &dialog);
    Ok((
        PendingCall {
            network: network.clone(),
            shard: shard.clone(),
            dialog,
            media,
            session: Session::new(offer, session_id, None),
            caller: from.to_string(),
        },
        states,
    ))
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
