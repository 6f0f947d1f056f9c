//! The SIP server: listeners (UDP and TCP on `sip.listen`), the loop that
//! takes each incoming transaction to the registrar, a call, or a dialog
//! it belongs to, and what every part shares.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pbx_media::engine::{MediaEngine, MediaSession};
use pbx_media::prompt::PromptCache;
use pbx_runtime::call::LegId;
use pbx_runtime::{Config, Runtime};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use rsipstack::EndpointBuilder;
use tokio_util::sync::CancellationToken;

use crate::digest::{Algorithm, DigestServer};
use crate::location::LocationStore;
use crate::registrar::{self, AuthFailures};

/// The methods pbxd takes.
pub const ALLOWED: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER, UPDATE, REFER, NOTIFY";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: SocketAddr, reason: String },
    #[error(transparent)]
    Store(#[from] crate::location::StoreError),
}

/// What the parts of the SIP server share.
pub struct SipShared {
    pub config: Config,
    pub endpoint: EndpointInnerRef,
    pub dialogs: Arc<DialogLayer>,
    pub location: LocationStore,
    pub media: MediaEngine,
    pub prompts: PromptCache,
    /// Where pbxd listens, and the address it gives peers (Contact, SDP).
    pub listen: SocketAddr,
    pub advertise: IpAddr,
    pub auth_failures: AuthFailures,
    /// Media and dialogs of the live calls, by leg, so one call's media can
    /// be joined to another's (a bridge, a conference) and a peer referred
    /// to another (a transfer) from a `LegHandle`.
    legs: Mutex<HashMap<LegId, (Arc<MediaSession>, InviteDialog)>>,
    digests: Mutex<HashMap<String, Arc<DigestServer>>>,
    runtime: OnceLock<Runtime>,
    next_leg: AtomicU64,
    cancel: CancellationToken,
    /// Set when shutting down: new calls get 503, running ones go on.
    pub draining: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for SipShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipShared").field("listen", &self.listen).finish()
    }
}

impl SipShared {
    /// The runtime, once `SipServer::serve` has it.
    pub fn runtime(&self) -> Option<&Runtime> {
        self.runtime.get()
    }

    /// The digest server of `domain` (its realm).
    pub fn digest(&self, domain: &str) -> Arc<DigestServer> {
        let lifetime = Duration::from_secs(self.config.sip.nonce_lifetime_seconds);
        let algorithms: Vec<Algorithm> = self
            .config
            .sip
            .digest_algorithms
            .iter()
            .filter_map(|name| Algorithm::parse(name))
            .collect();
        let make = || Arc::new(DigestServer::with_algorithms(domain, lifetime, &algorithms));
        match self.digests.lock() {
            Ok(mut digests) => digests.entry(domain.to_string()).or_insert_with(make).clone(),
            Err(_) => make(),
        }
    }

    /// The domain a request's host names: one of ours by name, or, for an
    /// address of this server (phones often use the IP), the first domain.
    pub fn domain_for(&self, host: &str) -> Option<String> {
        let runtime = self.runtime()?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Some(domain) = runtime.directory.domain(host) {
            return Some(domain.name.clone());
        }
        let is_ours = host.parse::<IpAddr>().is_ok() || host.eq_ignore_ascii_case("localhost");
        if is_ours {
            return runtime.directory.first_domain().map(|domain| domain.name.clone());
        }
        None
    }

    /// Where RTP sockets are bound: the listening address, or the
    /// advertised one when listening on all interfaces.
    pub fn media_ip(&self) -> IpAddr {
        if self.listen.ip().is_unspecified() {
            self.listen.ip()
        } else {
            self.advertise
        }
    }

    /// Keeps a live leg's media and dialog.
    pub fn remember(&self, leg: LegId, media: &Arc<MediaSession>, dialog: &InviteDialog) {
        if let Ok(mut legs) = self.legs.lock() {
            legs.insert(leg, (media.clone(), dialog.clone()));
        }
    }

    /// Forgets a leg that ended.
    pub fn forget(&self, leg: LegId, dialog: &InviteDialog) {
        if let Ok(mut legs) = self.legs.lock() {
            legs.remove(&leg);
        }
        self.dialogs.remove_dialog(&dialog.id());
    }

    /// A live leg's media.
    pub fn media_of(&self, leg: LegId) -> Option<Arc<MediaSession>> {
        self.legs.lock().ok()?.get(&leg).map(|(media, _)| media.clone())
    }

    /// A live leg's dialog.
    pub fn dialog_of(&self, leg: LegId) -> Option<InviteDialog> {
        self.legs.lock().ok()?.get(&leg).map(|(_, dialog)| dialog.clone())
    }

    /// How many legs are live (tests count them back to zero).
    pub fn live_legs(&self) -> usize {
        self.legs.lock().map(|legs| legs.len()).unwrap_or(0)
    }

    /// A new leg ID.
    pub fn next_leg(&self) -> LegId {
        self.next_leg.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The Contact pbxd gives in dialogs: `sip:pbx@advertised:port`.
    pub fn contact(&self) -> String {
        format!("sip:pbx@{}", host_port(self.advertise, self.listen.port()))
    }

    /// Stops everything (the listeners, the dialogs' timers).
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

/// `ip:port`, with brackets for IPv6.
pub fn host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    }
}

/// The SIP server, before and after it has its runtime.
pub struct SipServer {
    shared: Arc<SipShared>,
    endpoint: rsipstack::transaction::Endpoint,
}

impl std::fmt::Debug for SipServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared.fmt(f)
    }
}

impl SipServer {
    /// Binds the listeners and opens the location store. The runtime
    /// comes later (it needs this server's network to exist first).
    pub async fn bind(config: Config, media: MediaEngine) -> Result<SipServer, StartError> {
        let cancel = CancellationToken::new();
        let listen = config.sip.listen;
        let transport_layer = TransportLayer::new(cancel.clone());
        let listen_failed = |reason: String| StartError::Listen {
            address: listen,
            reason,
        };
        let udp = UdpConnection::create_connection(listen, None, Some(cancel.child_token()))
            .await
            .map_err(|error| listen_failed(error.to_string()))?;
        // The port the OS chose, when asked for port 0 (tests).
        let bound = udp.get_addr().get_socketaddr().unwrap_or(listen);
        transport_layer.add_transport(udp.into());
        let tcp = TcpListenerConnection::new(bound, None)
            .await
            .map_err(|error| listen_failed(error.to_string()))?;
        transport_layer.add_transport(tcp.into());
        let endpoint = EndpointBuilder::new()
            .with_cancel_token(cancel.clone())
            .with_transport_layer(transport_layer)
            .with_user_agent(concat!("pbxd/", env!("CARGO_PKG_VERSION")))
            .with_inspector(Box::new(crate::EscapeRepair))
            .build();
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let location = LocationStore::open(&config.data_dir.join("location.redb"))?;
        let advertise = config.sip.advertise.unwrap_or_else(|| {
            if bound.ip().is_unspecified() {
                IpAddr::from([127, 0, 0, 1])
            } else {
                bound.ip()
            }
        });
        let shared = Arc::new(SipShared {
            config,
            endpoint: endpoint.inner.clone(),
            dialogs,
            location,
            media,
            prompts: PromptCache::default(),
            listen: bound,
            advertise,
            auth_failures: AuthFailures::default(),
            legs: Mutex::new(HashMap::new()),
            digests: Mutex::new(HashMap::new()),
            runtime: OnceLock::new(),
            next_leg: AtomicU64::new(0),
            cancel,
            draining: std::sync::atomic::AtomicBool::new(false),
        });
        Ok(SipServer { shared, endpoint })
    }

    /// What the network side of the runtime needs.
    pub fn shared(&self) -> Arc<SipShared> {
        self.shared.clone()
    }

    /// The address the listeners are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.listen
    }

    /// Serves until shut down. Must run on the runtime's `LocalSet`: calls
    /// start tasks there.
    pub async fn serve(self, runtime: Runtime) {
        let _ = self.shared.runtime.set(runtime);
        let incoming = match self.endpoint.incoming_transactions() {
            Ok(incoming) => incoming,
            Err(error) => {
                tracing::error!(%error, "SIP endpoint has no transaction receiver");
                return;
            }
        };
        let shared = self.shared.clone();
        tokio::select! {
            () = self.endpoint.serve() => {}
            () = take_transactions(shared, incoming) => {}
        }
    }
}

async fn take_transactions(
    shared: Arc<SipShared>,
    mut incoming: rsipstack::transaction::TransactionReceiver,
) {
    while let Some(tx) = incoming.recv().await {
        let shared = shared.clone();
        tokio::task::spawn_local(async move { dispatch(shared, tx).await });
    }
}

/// Headers a request must not carry twice (RFC 3261 §7.3.1, §20).
fn duplicated_header(request: &rsipstack::sip::Request) -> Option<&'static str> {
    let mut seen = [0u8; 6];
    for header in request.headers.iter() {
        let index = match header {
            Header::CallId(_) => 0,
            Header::CSeq(_) => 1,
            Header::From(_) => 2,
            Header::To(_) => 3,
            Header::MaxForwards(_) => 4,
            Header::ContentLength(_) => 5,
            _ => continue,
        };
        seen[index] += 1;
        if seen[index] > 1 {
            return Some(["Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length"][index]);
        }
    }
    None
}

/// The largest request taken over a stream transport (UDP is bounded by
/// its datagrams already).
const LARGEST_MESSAGE: usize = 64 * 1024;

fn message_size(request: &rsipstack::sip::Request) -> usize {
    request
        .headers
        .iter()
        .map(|header| header.to_string().len() + 2)
        .sum::<usize>()
        + request.body.len()
}

/// Sends one transaction where it belongs.
async fn dispatch(shared: Arc<SipShared>, mut tx: Transaction) {
    let method = tx.original.method;
    if method != Method::Ack {
        if let Some(name) = duplicated_header(&tx.original) {
            tracing::info!(%method, "refused: {name} given twice");
            let _ = tx.reply(StatusCode::BadRequest).await;
            return;
        }
        let reliable = tx
            .connection
            .as_ref()
            .is_some_and(|connection| connection.is_reliable());
        if reliable && message_size(&tx.original) > LARGEST_MESSAGE {
            tracing::info!(%method, "refused: message too large");
            let _ = tx.reply(StatusCode::MessageTooLarge).await;
            return;
        }
    }
    let in_dialog = tx.original.to_header_tag().is_some();
    if in_dialog || !matches!(method, Method::Invite | Method::Register | Method::Options) {
        if let Some(mut dialog) = shared.dialogs.match_dialog(&tx) {
            if let Err(error) = dialog.handle(&mut tx).await {
                tracing::debug!(%error, %method, "in-dialog request");
            }
            return;
        }
        if method != Method::Ack {
            let code = match method {
                Method::Bye
                | Method::Cancel
                | Method::Info
                | Method::Update
                | Method::Refer
                | Method::Notify => StatusCode::CallTransactionDoesNotExist,
                Method::Invite => StatusCode::CallTransactionDoesNotExist,
                _ => StatusCode::MethodNotAllowed,
            };
            let _ = tx.reply(code).await;
        }
        return;
    }
    match method {
        Method::Register => registrar::register(&shared, tx).await,
        Method::Options => {
            let headers = vec![
                Header::Allow(ALLOWED.into()),
                Header::Accept("application/sdp".into()),
                Header::Supported("replaces".into()),
            ];
            let _ = tx.reply_with(StatusCode::OK, headers, None).await;
        }
        Method::Invite if shared.draining.load(Ordering::Relaxed) => {
            let _ = tx.reply(StatusCode::ServiceUnavailable).await;
        }
        Method::Invite => crate::call::incoming(shared, tx).await,
        _ => {
            let _ = tx.reply(StatusCode::MethodNotAllowed).await;
        }
    }
}

/// The To tag of a request, if it has one (then it belongs to a dialog).
trait ToTag {
    fn to_header_tag(&self) -> Option<String>;
}

impl ToTag for rsipstack::sip::Request {
    fn to_header_tag(&self) -> Option<String> {
        use rsipstack::sip::prelude::HeadersExt;
        self.to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .map(|tag| tag.to_string())
    }
}
