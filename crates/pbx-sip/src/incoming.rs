//! A new INVITE: who calls (a caller claiming a local account, or calling
//! beyond the server, must authenticate), where it goes (resolved once,
//! here), the SDP offer, the dialog and the leg handed to the runtime.

use std::sync::Arc;

use pbx_runtime::address::{self, Destination};
use pbx_runtime::admission::CallPermit;
use pbx_runtime::call::{next_leg_id, Headers, IncomingCall, Leg, LegInfo};
use pbx_runtime::directory::Account;
use rsipstack::sip::prelude::*;
use rsipstack::sip::{Header, StatusCode, Uri};
use rsipstack::transaction::transaction::Transaction;

use crate::call::{CallParts, Session, SipCall};
use crate::digest::DigestError;
use crate::registrar::source_of;
use crate::sdp::{self, Direction};
use crate::server::{SipNetwork, SipShard, SipShared};

/// Takes a new INVITE (outside any dialog); `permit` counts the call until
/// it ends.
pub(crate) async fn incoming(
    network: Arc<SipNetwork>,
    shard: Arc<SipShard>,
    mut tx: Transaction,
    permit: CallPermit,
) {
    let shared = &network.shared;
    let request = tx.original.clone();
    let user = request.uri.user().map(crate::percent_decode).unwrap_or_default();
    // A trunk's numbers, in the form pbxd's users dial (its rules).
    let user = crate::trunk::called_number(shared, &tx, user);
    let Some(domain) = shared.domain_for(&request.uri.host().to_string()) else {
        return crate::server::refuse(tx, StatusCode::NotFound, Vec::new()).await;
    };
    let target = format!("{user}@{domain}");
    let Ok(from) = request.from_header().and_then(|from| from.uri()) else {
        return crate::server::refuse(tx, StatusCode::BadRequest, Vec::new()).await;
    };
    let from = crate::trunk::caller(shared, &tx, from);
    let Some((source, _)) = source_of(&tx) else {
        return crate::server::refuse(tx, StatusCode::BadRequest, Vec::new()).await;
    };
    // Who calls: a caller claiming one of our accounts (a phone) must
    // prove it first; then what it dials is read with its settings.
    let caller_account = shared
        .domain_for(&from.host().to_string())
        .and_then(|from_domain| {
            let name = from.user().map(crate::percent_decode).unwrap_or_default();
            shared.directory.find(&name, &from_domain)
        });
    let mut authenticated = None;
    if caller_account.is_some() {
        match authenticate(&network, &tx, &domain, "INVITE") {
            Ok(account) => authenticated = Some(account),
            Err((code, headers)) => {
                return crate::server::refuse(tx, code, headers).await;
            }
        }
    }
    let acting_as = authenticated.as_ref().and_then(|phone| acting_as(shared, phone));
    let settings = acting_as.as_ref().or(authenticated.as_ref());
    // A phone's speed dials and feature codes first (address::resolve).
    let destination = match address::resolve(&shared.directory, &user, Some(&domain), settings) {
        Ok(destination) => destination,
        Err(error) => {
            tracing::info!(%target, "incoming call refused: {error}");
            return crate::server::refuse(tx, StatusCode::NotFound, Vec::new()).await;
        }
    };
    // A call beyond the server needs a caller who proves who it is
    // (FEATURES.md §12); an account that is not public (and its apps)
    // takes calls only from the server's own phones. The domain's public
    // numbers take anybody's.
    let number_owner = address::public_number_owner(&shared.directory, &user, &domain);
    if authenticated.is_none() && number_owner.is_none() {
        match &destination {
            Destination::Outside(_) => match authenticate(&network, &tx, &domain, "INVITE") {
                Ok(account) => authenticated = Some(account),
                Err((code, headers)) => {
                    return crate::server::refuse(tx, code, headers).await;
                }
            },
            Destination::Account { account, .. } | Destination::App { account, .. } if !account.public => {
                tracing::info!(%target, "incoming call refused: not public, and the caller did not authenticate");
                return crate::server::refuse(tx, StatusCode::Forbidden, Vec::new()).await;
            }
            _ => {}
        }
    }
    // A public number's own class of service is its owner's.
    let settings = acting_as
        .as_ref()
        .or(authenticated.as_ref())
        .or(number_owner.as_ref());
    // A number the caller's class of service does not allow is never
    // placed: the call goes to the refusal app (a prompt, or 403).
    let destination = match settings {
        Some(account) => pbx_runtime::class::screen(account, destination),
        None => destination,
    };
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
                return crate::server::refuse(tx, code, Vec::new()).await;
            }
        }
    };
    let media = match shared.media.open(shared.media_ip()).await {
        Ok(media) => media,
        Err(error) => {
            tracing::warn!(%error, "no media socket for a call");
            return crate::server::refuse(tx, StatusCode::ServiceUnavailable, Vec::new()).await;
        }
    };
    let session_id = u64::from(crate::random_u32());
    let port = media.local_addr().port();
    let over_tls = tx
        .connection
        .as_ref()
        .is_some_and(|connection| connection.transport() == rsipstack::sip::transport::Transport::Tls);
    // SRTP (sip.srtp): pbxd's key when the offer brings one; an offer of
    // its own is encrypted over TLS (or always, when mandatory).
    let key = match &offer {
        Some(offer) => shared.srtp.answer_key(offer),
        None => shared.srtp.offer_key(over_tls),
    };
    let key = match key {
        Ok(key) => key,
        Err(error) => {
            tracing::debug!(%error, "INVITE refused");
            return crate::server::refuse(tx, StatusCode::NotAcceptableHere, Vec::new()).await;
        }
    };
    let (local_sdp, negotiated) = match &offer {
        Some(offer) => match sdp::secure_answer(offer, shared.advertise, port, session_id, 1, key.as_ref()) {
            // Media starts flowing when the call is answered (or early
            // media is provisioned), not before.
            Ok((answer, negotiated)) => (answer, Some(negotiated)),
            Err(error) => {
                tracing::debug!(%error, "INVITE refused");
                return crate::server::refuse(tx, StatusCode::NotAcceptableHere, Vec::new()).await;
            }
        },
        None => (
            sdp::secure_offer(
                shared.advertise,
                port,
                session_id,
                1,
                Direction::SendRecv,
                key.as_ref(),
            ),
            None,
        ),
    };
    // Over TCP the Contact says so, or the peer would send ACK and BYE by
    // UDP; over TLS it gives the TLS port.
    let reliable = tx
        .connection
        .as_ref()
        .is_some_and(|connection| connection.is_reliable());
    let contact = match shared.tls_contact().filter(|_| over_tls) {
        Some(contact) => contact,
        None if reliable => format!("{};transport=tcp", shared.contact()),
        None => shared.contact(),
    };
    let contact = Uri::try_from(contact.as_str()).ok();
    let made = shard.relay.dialog_for(
        &mut tx,
        |tx| {
            shard
                .dialogs
                .get_or_create_server_invite(tx, shard.states.sender(), None, contact)
                .map_err(|error| error.to_string())
        },
        |dialog| dialog.id(),
    );
    let dialog = match made {
        Ok(dialog) => dialog,
        Err(error) => {
            tracing::debug!(%error, "no dialog for an INVITE");
            return crate::server::refuse(tx, StatusCode::BadRequest, Vec::new()).await;
        }
    };
    let states = shard.states.route(&dialog.id());
    // Every response to this INVITE carries the dialog's To tag, the 487
    // that answers a CANCEL included (rsipstack would make up another).
    if let Ok(to) = tx.original.to_header() {
        let tagged = to.clone().with_tag(dialog.id().local_tag.into());
        tx.original.headers.unique_push(tagged.into());
    }
    let id = next_leg_id();
    let info = LegInfo {
        remote_uri: from.to_string(),
        local_uri: request
            .to_header()
            .and_then(|to| to.uri())
            .map(|uri| uri.to_string())
            .unwrap_or_default(),
        request_uri: format!("sip:{target}"),
        remote_addr: Some(source),
        authenticated,
        acting_as,
        call_id: request
            .call_id_header()
            .map(|header| header.value().to_string())
            .unwrap_or_default(),
        headers: Headers::from_pairs(
            request
                .headers
                .iter()
                .map(|header| (header.name(), header.value())),
        ),
        transfer_supported: request.header_contains_token("Allow", "REFER"),
    };
    let media = Arc::new(media);
    let (leg, end) = Leg::new(id, info, false, None);
    shared.remember(id, &media, &dialog);
    let call = SipCall::new(CallParts {
        network: network.clone(),
        shard: shard.clone(),
        end,
        dialog: dialog.clone(),
        media,
        outgoing: false,
        session: Session::new(local_sdp, session_id, negotiated).with_srtp_key(key),
        caller: from.to_string(),
    })
    .incoming(request.clone(), tx.tu_sender.clone(), permit);
    tokio::task::spawn_local(call.run(states));
    // The INVITE transaction: 100 Trying, then the ACK or a CANCEL.
    let mut dialog_for_invite = dialog;
    let relaying = shard.clone();
    tokio::task::spawn_local(async move {
        if let Err(error) = dialog_for_invite.handle(&mut tx).await {
            tracing::debug!(%error, "INVITE transaction");
        }
        relaying.relay.release(&dialog_for_invite.id());
    });
    if let Err(refused) = shard.incoming.deliver(IncomingCall { leg, destination }) {
        // The runtime has stopped: the leg is dropped, and its call ends.
        drop(refused);
    }
}

/// The virtual line whose settings are in force on `phone` (hot desk),
/// if any; the phone made a call now (for the idle logout).
fn acting_as(shared: &SipShared, phone: &Arc<Account>) -> Option<Arc<Account>> {
    let address = phone.address();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64);
    shared.hotdesk.touch(&address, now);
    let line = shared.hotdesk.in_force(&address)?;
    let (name, domain) = line.split_once('@')?;
    shared.directory.find(name, domain)
}

/// Checks the request's credentials against `domain`'s accounts; the
/// refusal to send otherwise (a 407 challenge, or 403).
pub(crate) fn authenticate(
    network: &SipNetwork,
    tx: &Transaction,
    domain: &str,
    method: &str,
) -> Result<Arc<Account>, (StatusCode, Vec<Header>)> {
    let shared = &network.shared;
    let source = source_of(tx).map(|(source, _)| source.ip());
    let limit = shared.config.sip.auth_failures_per_minute;
    if source.is_some_and(|ip| shared.auth_failures.blocked(ip, limit)) {
        shared
            .lockouts
            .note(source_of(tx).map(|(source, _)| source), method);
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
    let authorization = authorization.filter(|value| crate::digest::is_digest(value));
    let Some(authorization) = authorization else {
        return Err((StatusCode::ProxyAuthenticationRequired, proxy_challenge(false)));
    };
    let mut verified = None;
    let mut locked = false;
    let per_account = shared.config.sip.auth_failures_per_account_per_minute;
    let result = digest.verify(method, &authorization, |given| {
        let name = given.split('@').next().unwrap_or(given).to_string();
        let account = shared.directory.find(&name, domain)?;
        if source.is_some_and(|ip| {
            shared
                .auth_failures
                .account_blocked(&account.address(), ip, per_account)
        }) {
            locked = true;
            return None;
        }
        let password = account.password.clone();
        verified = Some(account);
        password
    });
    match result {
        Ok(_) => {
            let account = verified.ok_or((StatusCode::Forbidden, Vec::new()))?;
            if let Some(ip) = source {
                shared.auth_failures.succeeded(ip, &account.address());
            }
            Ok(account)
        }
        Err(DigestError::Stale) => Err((StatusCode::ProxyAuthenticationRequired, proxy_challenge(true))),
        Err(_) if locked => {
            shared
                .lockouts
                .note(source_of(tx).map(|(source, _)| source), method);
            tracing::info!(%domain, "{method} refused: too many failed logins at this account from elsewhere");
            Err((StatusCode::Forbidden, Vec::new()))
        }
        Err(error) => {
            match (source, &verified) {
                (Some(ip), Some(account)) => shared.auth_failures.failed_as(ip, &account.address()),
                (Some(ip), None) => shared.auth_failures.failed(ip),
                (None, _) => {}
            }
            tracing::info!(%domain, "{method} authentication refused: {error}");
            Err((StatusCode::Forbidden, Vec::new()))
        }
    }
}
