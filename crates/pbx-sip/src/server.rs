//! The SIP server: one rsipstack endpoint per shard, the loop that takes
//! each incoming transaction to the registrar, a new call, or the dialog
//! it belongs to, and what every shard shares.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pbx_media::engine::{MediaEngine, MediaSession};
use pbx_runtime::admission::Admission;
use pbx_runtime::call::{IncomingCalls, LegId};
use pbx_runtime::directory::Directory;
use pbx_runtime::hotdesk::HotDesk;
use pbx_runtime::queue;
use pbx_runtime::shard::ShardSpawner;
use pbx_runtime::{Config, NetworkSetup};
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, DialogStateSender};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::dialog::DialogId;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::endpoint::{EndpointInnerRef, EndpointOption};
use rsipstack::transaction::transaction::{
    Transaction, TransactionEvent, TransactionEventReceiver, TransactionEventSender,
};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use rsipstack::EndpointBuilder;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::digest::{Algorithm, DigestServer};
use crate::location::LocationStore;
use crate::registrar::{self, AuthFailures};
use crate::transport::{self, ShardUdp};

/// The methods pbxd takes.
pub const ALLOWED: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER, UPDATE, REFER, NOTIFY";

/// A live leg's media and dialog, so one call's media can be joined to
/// another's (a bridge, a conference) and a peer referred to another (a
/// transfer), whatever shard either is on.
#[derive(Clone)]
pub(crate) struct LiveLeg {
    pub media: Arc<MediaSession>,
    pub dialog: InviteDialog,
}

/// What every shard of the SIP server shares.
pub struct SipShared {
    pub config: Config,
    pub directory: Arc<Directory>,
    /// Virtual lines logged in on phones: whose settings a phone's call has.
    pub hotdesk: Arc<HotDesk>,
    pub location: LocationStore,
    pub media: MediaEngine,
    /// Where pbxd listens, and the address it gives peers (Contact, SDP).
    pub listen: SocketAddr,
    pub advertise: IpAddr,
    /// Where pbxd takes SIP over TLS, if it does (`sip.tls_listen`, bound).
    pub tls_listen: Option<SocketAddr>,
    /// `sip.srtp`: when media is encrypted.
    pub srtp: crate::secure::SrtpPolicy,
    pub auth_failures: AuthFailures,
    pub admission: Arc<Admission>,
    /// Written when a leg starts and ends (its shard); read to bridge,
    /// mix and transfer (any shard).
    legs: Mutex<HashMap<LegId, LiveLeg>>,
    digests: Mutex<HashMap<String, Arc<DigestServer>>>,
    /// TCP (and TLS) connections by the peer's address, and the shard that has each.
    /// Written by the acceptor; read to place a call on the right shard.
    tcp_flows: Mutex<HashMap<SocketAddr, usize>>,
    /// Open TCP connections by the peer's IP address (the per-source cap).
    /// Each connection's token, cancelled (by the stack, before it closes
    /// the socket) when the connection is retired: a connection counts
    /// while its token is not cancelled.
    tcp_per_source: Mutex<HashMap<IpAddr, Vec<CancellationToken>>>,
    /// Counts messages refused as malformed (for the metrics), and logs
    /// a summary now and then.
    pub refusals: Arc<crate::gate::Tally>,
    /// Requests taken and responses sent, for the metrics.
    pub counts: Arc<Counts>,
    /// Counts TCP connections refused over the per-source cap.
    pub tcp_refusals: crate::gate::Tally,
    /// Counts requests refused because their source failed to
    /// authenticate too often (REGISTER and INVITE).
    pub lockouts: crate::gate::Tally,
    /// Whether each trunk is up (written by the legs placed through it
    /// and its pings, read to place calls).
    pub trunks: crate::trunk::Trunks,
}

impl std::fmt::Debug for SipShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipShared").field("listen", &self.listen).finish()
    }
}

impl SipShared {
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
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Some(domain) = self
            .directory
            .domain(host)
            .or_else(|| self.directory.domain_at(host))
        {
            return Some(domain.name.clone());
        }
        // This server's own address (what a phone set up with an IP
        // address as its domain sends) means the first domain. Listening
        // on every interface, any address of the host may be used.
        let is_ours = match host.parse::<IpAddr>() {
            Ok(ip) => ip == self.listen.ip() || ip == self.advertise || self.listen.ip().is_unspecified(),
            Err(_) => host.eq_ignore_ascii_case("localhost"),
        };
        if is_ours {
            return self.directory.first_domain().map(|domain| domain.name.clone());
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
    pub(crate) fn remember(&self, leg: LegId, media: &Arc<MediaSession>, dialog: &InviteDialog) {
        if let Ok(mut legs) = self.legs.lock() {
            legs.insert(
                leg,
                LiveLeg {
                    media: media.clone(),
                    dialog: dialog.clone(),
                },
            );
        }
    }

    /// Forgets a leg that ended.
    pub(crate) fn forget(&self, leg: LegId) {
        if let Ok(mut legs) = self.legs.lock() {
            legs.remove(&leg);
        }
    }

    /// A live leg's media.
    pub fn media_of(&self, leg: LegId) -> Option<Arc<MediaSession>> {
        self.legs.lock().ok()?.get(&leg).map(|live| live.media.clone())
    }

    /// A live leg's dialog.
    pub fn dialog_of(&self, leg: LegId) -> Option<InviteDialog> {
        self.legs.lock().ok()?.get(&leg).map(|live| live.dialog.clone())
    }

    /// How many legs are live (tests count them back to zero).
    pub fn live_legs(&self) -> usize {
        self.legs.lock().map(|legs| legs.len()).unwrap_or(0)
    }

    /// The Contact pbxd gives in dialogs: `sip:pbx@advertised:port`.
    pub fn contact(&self) -> String {
        format!("sip:pbx@{}", host_port(self.advertise, self.listen.port()))
    }

    /// The Contact pbxd gives in a dialog over TLS: its TLS port, with
    /// `transport=tls`, so the peer's requests in it come over TLS too.
    pub fn tls_contact(&self) -> Option<String> {
        let port = self.tls_listen?.port();
        Some(format!(
            "sip:pbx@{};transport=tls",
            host_port(self.advertise, port)
        ))
    }

    /// The shard that has the TCP connection from `peer`, if any.
    pub(crate) fn tcp_shard(&self, peer: SocketAddr) -> Option<usize> {
        self.tcp_flows.lock().ok()?.get(&peer).copied()
    }
}

/// `ip:port`, with brackets for IPv6.
pub fn host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    }
}

/// One shard's SIP stack: its endpoint (transactions, its share of the UDP
/// port, the TCP connections it took), its dialogs, and where its new calls
/// go. Lives on the shard's thread; the handles are shared.
pub struct SipShard {
    pub index: usize,
    pub endpoint: EndpointInnerRef,
    pub dialogs: Arc<DialogLayer>,
    pub incoming: IncomingCalls,
    pub(crate) states: DialogStates,
    pub(crate) relay: InviteRelay,
}

/// What a server dialog tells its INVITE's transaction (its provisional
/// and final responses, an ACK it was handed), passed on through one queue
/// per shard. rsipstack's dialog keeps, for its whole life, a sender of its
/// INVITE transaction's event queue, whose first block has room for 32
/// events (11 KB); given the shard's queue instead, it keeps that one
/// alive, and the transaction's own queue goes with the transaction.
pub(crate) struct InviteRelay {
    sender: TransactionEventSender,
    /// Taken from by `flush`, right after a dialog is told to respond (so
    /// the response leaves before anything the call does next), and by the
    /// shard's task for the rest. Used on the shard's thread only.
    receiver: Mutex<TransactionEventReceiver>,
    /// By Call-ID and local tag, while the INVITE transaction runs. Used
    /// on the shard's thread only.
    routes: Routes<TransactionEventSender>,
}

impl InviteRelay {
    /// Makes a dialog for `tx` (with `make`) that reports to the relay,
    /// and routes what it says to `tx` until `release`.
    pub fn dialog_for<T, E>(
        &self,
        tx: &mut Transaction,
        make: impl FnOnce(&Transaction) -> Result<T, E>,
        id: impl Fn(&T) -> DialogId,
    ) -> Result<T, E> {
        let own = std::mem::replace(&mut tx.tu_sender, self.sender.clone());
        let made = make(tx);
        tx.tu_sender = own;
        let made = made?;
        let id = id(&made);
        if let Ok(mut routes) = self.routes.lock() {
            routes.insert((id.call_id, id.local_tag), tx.tu_sender.clone());
        }
        Ok(made)
    }

    /// The INVITE transaction of dialog `id` is over.
    pub fn release(&self, id: &DialogId) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.remove(&(id.call_id.clone(), id.local_tag.clone()));
        }
    }

    /// Passes on what dialogs have said so far. Called right after telling
    /// a dialog to respond (ring, answer, refuse): its response then goes
    /// out before whatever the call does next (a BYE).
    pub fn flush(&self) {
        loop {
            let event = match self.receiver.lock() {
                Ok(mut receiver) => receiver.try_recv().ok(),
                Err(_) => None,
            };
            match event {
                Some(event) => self.forward(event),
                None => return,
            }
        }
    }

    /// Passes each event on as it comes.
    async fn pass_on(&self) {
        loop {
            let next = std::future::poll_fn(|context| match self.receiver.lock() {
                Ok(mut receiver) => receiver.poll_recv(context),
                Err(_) => std::task::Poll::Ready(None),
            });
            match next.await {
                Some(event) => self.forward(event),
                None => return,
            }
        }
    }

    /// Sends an event to its transaction (found by the Call-ID and To tag
    /// of the response or ACK it carries); a late one is dropped, as a
    /// transaction that has ended would drop it.
    fn forward(&self, event: TransactionEvent) {
        let key = match &event {
            TransactionEvent::Respond(response) => dialog_key(response),
            TransactionEvent::Received(rsipstack::sip::SipMessage::Request(request), _) => {
                dialog_key(request)
            }
            _ => None,
        };
        let route = key.and_then(|key| self.routes.lock().ok()?.get(&key).cloned());
        if let Some(route) = route {
            let _ = route.send(event);
        }
    }
}

/// (Call-ID, To tag) of a message: pbxd's tag, in what a server dialog sends.
fn dialog_key(message: &impl rsipstack::sip::prelude::HeadersExt) -> Option<(String, String)> {
    let call_id = message.call_id_header().ok()?.value().to_string();
    let tag = message.to_header().ok()?.tag().ok().flatten()?.to_string();
    Some((call_id, tag))
}

/// Where a dialog's states go: the call leg that has it. Every dialog of a
/// shard reports on one rsipstack queue (whose first block has room for 32
/// states, about 10 KB, a weight each call would otherwise carry), and a
/// task of the shard passes each state on to its call's own small queue.
pub(crate) struct DialogStates {
    sender: DialogStateSender,
    /// By Call-ID and local tag (the remote tag of a dialog pbxd starts is
    /// learned later). Used on the shard's thread only.
    routes: Routes<queue::Sender<DialogState>>,
}

/// Where each dialog of a shard is reached, by Call-ID and local tag.
type Routes<T> = Mutex<HashMap<(String, String), T>>;

/// A call leg's own queue of its dialog's states.
pub(crate) type StateReceiver = queue::Receiver<DialogState>;

impl DialogStates {
    /// The queue a new dialog reports on.
    pub fn sender(&self) -> DialogStateSender {
        self.sender.clone()
    }

    /// From now on, the states of dialog `id` go to the queue returned.
    /// Call before the shard's next wait, so no state of it comes first.
    pub fn route(&self, id: &DialogId) -> StateReceiver {
        let (sender, receiver) = queue::unbounded();
        if let Ok(mut routes) = self.routes.lock() {
            routes.insert((id.call_id.clone(), id.local_tag.clone()), sender);
        }
        receiver
    }

    /// The dialog `id` is over: its states go nowhere.
    pub fn forget(&self, id: &DialogId) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.remove(&(id.call_id.clone(), id.local_tag.clone()));
        }
    }

    /// Passes each state on to its dialog's call leg.
    async fn pass_on(&self, mut states: DialogStateReceiver) {
        while let Some(state) = states.recv().await {
            let id = state.id();
            let route = self
                .routes
                .lock()
                .ok()
                .and_then(|routes| routes.get(&(id.call_id.clone(), id.local_tag.clone())).cloned());
            if let Some(route) = route {
                let _ = route.send(state);
            }
        }
    }
}

impl std::fmt::Debug for SipShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipShard").field("index", &self.index).finish()
    }
}

/// The SIP side of pbxd: the runtime's `Network`, and the server behind it.
pub struct SipNetwork {
    /// Itself, for the calls it places (they hold the network).
    pub(crate) this: std::sync::Weak<SipNetwork>,
    pub(crate) shared: Arc<SipShared>,
    pub(crate) shards: Vec<Arc<SipShard>>,
    pub(crate) spawner: ShardSpawner,
    cancel: CancellationToken,
}

impl std::fmt::Debug for SipNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipNetwork")
            .field("listen", &self.shared.listen)
            .field("shards", &self.shards.len())
            .finish()
    }
}

/// What a shard reports once its endpoint is up.
type ShardReady = std::io::Result<Arc<SipShard>>;

impl SipNetwork {
    /// Binds the listeners (UDP and TCP on `sip.listen`), opens the
    /// location store, starts an endpoint on every shard.
    pub fn bind(setup: NetworkSetup<'_>) -> Result<Arc<SipNetwork>, String> {
        let config = setup.config;
        let listen = config.sip.listen;
        let failed = |error: std::io::Error| format!("cannot listen on {listen}: {error}");
        let spawner = setup
            .shards
            .spawner()
            .filter(|_| setup.shards.threaded())
            .ok_or("SIP needs shards of their own")?;
        let media = setup.media.clone().ok_or("SIP needs the media engine")?;
        let count = setup.shards.count();
        // UDP and TCP on one port. Asked for any port (0), the one UDP got
        // may be taken for TCP: then another is tried.
        let mut attempts = 0;
        let (udp, bound, tcp) = loop {
            let udp = transport::bind_udp(listen, count).map_err(failed)?;
            let bound = udp
                .first()
                .map(std::net::UdpSocket::local_addr)
                .transpose()
                .map_err(failed)?
                .unwrap_or(listen);
            match std::net::TcpListener::bind(bound) {
                Ok(tcp) => break (udp, bound, tcp),
                Err(error) if listen.port() == 0 && attempts < 20 => {
                    tracing::debug!(%error, %bound, "the TCP side of the port is taken: another port");
                    attempts += 1;
                }
                Err(error) => return Err(failed(error)),
            }
        };
        tcp.set_nonblocking(true).map_err(failed)?;
        // SIP over TLS on its own port, with its certificate.
        let tls = match (&config.sip.tls_listen, &config.sip.tls_cert, &config.sip.tls_key) {
            (Some(address), Some(cert), Some(key)) => {
                let acceptor = crate::secure::acceptor(cert, key)?;
                let listener = std::net::TcpListener::bind(address)
                    .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
                    .map_err(|error| format!("cannot listen on {address} (sip.tls_listen): {error}"))?;
                Some((listener, acceptor))
            }
            _ => None,
        };
        let tls_listen = match &tls {
            Some((listener, _)) => Some(listener.local_addr().map_err(failed)?),
            None => None,
        };
        let location =
            LocationStore::open(&config.data_dir.join("location.redb")).map_err(|error| error.to_string())?;
        let advertise = config.sip.advertise.unwrap_or_else(|| {
            if bound.ip().is_unspecified() {
                IpAddr::from([127, 0, 0, 1])
            } else {
                bound.ip()
            }
        });
        let shared = Arc::new(SipShared {
            config: config.clone(),
            directory: setup.directory.clone(),
            hotdesk: setup.hotdesk.clone(),
            location,
            media,
            listen: bound,
            advertise,
            tls_listen,
            srtp: crate::secure::SrtpPolicy::from_config(&config.sip.srtp),
            auth_failures: AuthFailures::default(),
            admission: setup.admission.clone(),
            legs: Mutex::new(HashMap::new()),
            digests: Mutex::new(HashMap::new()),
            tcp_flows: Mutex::new(HashMap::new()),
            tcp_per_source: Mutex::new(HashMap::new()),
            refusals: Arc::new(crate::gate::Tally::new("refused malformed SIP messages:")),
            tcp_refusals: crate::gate::Tally::new("refused TCP connections:"),
            counts: Arc::new(Counts::default()),
            lockouts: crate::gate::Tally::new("refused requests from locked-out sources:"),
            trunks: crate::trunk::Trunks::new(config),
        });
        let cancel = CancellationToken::new();
        // Each shard builds its endpoint on its own thread (its sockets join
        // its reactor), then waits for the network to start taking requests.
        let (peers, inboxes) = transport::inboxes(count);
        let (ready, shards_ready) = std::sync::mpsc::channel::<(usize, ShardReady)>();
        let mut starts = Vec::with_capacity(count);
        for (index, (socket, inbox)) in udp.into_iter().zip(inboxes).enumerate() {
            let (start, started) = tokio::sync::oneshot::channel::<Arc<SipNetwork>>();
            starts.push(start);
            let peers = peers.clone();
            let cancel = cancel.child_token();
            let incoming = setup
                .incoming
                .get(index)
                .cloned()
                .ok_or("a shard has no incoming calls handle")?;
            let transaction_timeout = Duration::from_secs(config.sip.transaction_timeout_seconds);
            let tcp_idle = Duration::from_secs(config.sip.tcp_idle_seconds);
            let refusals = shared.refusals.clone();
            let counts = shared.counts.clone();
            let ready = ready.clone();
            spawner.run_on(index, move || {
                tokio::task::spawn_local(async move {
                    let built = start_shard(
                        ShardSetup {
                            index,
                            socket,
                            inbox,
                            peers,
                            incoming,
                            cancel,
                            transaction_timeout,
                            tcp_idle,
                            refusals,
                            counts,
                        },
                        started,
                    )
                    .await;
                    let _ = ready.send((index, built));
                });
            });
        }
        drop(ready);
        let mut shards: Vec<Option<Arc<SipShard>>> = vec![None; count];
        for (index, built) in shards_ready.iter().take(count) {
            shards[index] = Some(built.map_err(failed)?);
        }
        let shards: Vec<Arc<SipShard>> = shards
            .into_iter()
            .collect::<Option<_>>()
            .ok_or("a shard did not start")?;
        let network = Arc::new_cyclic(|this| SipNetwork {
            this: this.clone(),
            shared,
            shards,
            spawner,
            cancel,
        });
        for start in starts {
            let _ = start.send(network.clone());
        }
        crate::trunk::start_pinging(&network, network.cancel.child_token());
        let acceptor = network.clone();
        setup
            .io
            .spawn(async move { acceptor.accept_tcp(tcp, None).await });
        if let Some((listener, tls)) = tls {
            let acceptor = network.clone();
            setup
                .io
                .spawn(async move { acceptor.accept_tcp(listener, Some(tls)).await });
        }
        Ok(network)
    }

    /// What the shards share.
    pub fn shared(&self) -> &Arc<SipShared> {
        &self.shared
    }

    /// The address the listeners are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.listen
    }

    /// How many legs are live (tests count them back to zero).
    pub fn live_legs(&self) -> usize {
        self.shared.live_legs()
    }

    /// Takes TCP connections, each to the next shard in turn; with `tls`,
    /// TLS connections (`sip.tls_listen`), whose handshake is the shard's.
    /// Both count towards `sip.tcp_connections_per_source`.
    async fn accept_tcp(
        self: Arc<Self>,
        listener: std::net::TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, "the TCP listener does not work");
                return;
            }
        };
        let mut next = 0usize;
        loop {
            let accepted = tokio::select! {
                () = self.cancel.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::debug!(%error, "TCP connection not accepted");
                    continue;
                }
            };
            // Cancelled when the stack retires the connection (closed,
            // reset, idle), before it closes the socket: from then on the
            // connection no longer counts.
            let cancel = self.cancel.child_token();
            let limit = self.shared.config.sip.tcp_connections_per_source;
            if !self.shared.open_tcp(peer.ip(), limit, &cancel) {
                self.shared.tcp_refusals.note(
                    Some(peer),
                    "connections from one address over sip.tcp_connections_per_source",
                );
                drop(stream);
                continue;
            }
            let Ok(stream) = stream.into_std() else {
                cancel.cancel();
                continue;
            };
            let index = next % self.shards.len();
            next = next.wrapping_add(1);
            if let Ok(mut flows) = self.shared.tcp_flows.lock() {
                flows.insert(peer, index);
            }
            let shard = self.shards[index].clone();
            let local = match &tls {
                Some(_) => self.shared.tls_listen.unwrap_or(self.shared.listen),
                None => self.shared.listen,
            };
            let closed = cancel.clone();
            let shared = self.shared.clone();
            tokio::spawn(async move {
                closed.cancelled().await;
                shared.forget_tcp(peer);
            });
            let gate = Arc::new(transport::StreamGate {
                from: peer,
                refusals: self.shared.refusals.clone(),
            });
            match tls.clone() {
                Some(acceptor) => {
                    let shared = self.shared.clone();
                    self.spawner.run_on(index, move || {
                        crate::secure::take_tls(shard, stream, local, acceptor, cancel, gate, shared)
                    });
                }
                None => self
                    .spawner
                    .run_on(index, move || take_tcp(&shard, stream, local, cancel, gate)),
            }
        }
    }

    /// Stops the listeners and the endpoints.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

/// Builds a shard's endpoint on its thread and starts it; its transactions
/// are taken once the whole network exists.
/// What one shard's SIP stack is built from.
struct ShardSetup {
    index: usize,
    socket: std::net::UdpSocket,
    inbox: tokio::sync::mpsc::UnboundedReceiver<transport::Datagram>,
    peers: Arc<[tokio::sync::mpsc::UnboundedSender<transport::Datagram>]>,
    incoming: IncomingCalls,
    cancel: CancellationToken,
    transaction_timeout: Duration,
    tcp_idle: Duration,
    refusals: Arc<crate::gate::Tally>,
    counts: Arc<Counts>,
}

async fn start_shard(
    setup: ShardSetup,
    network: tokio::sync::oneshot::Receiver<Arc<SipNetwork>>,
) -> ShardReady {
    let index = setup.index;
    let cancel = setup.cancel;
    let udp = ShardUdp::new(
        index,
        setup.socket,
        setup.inbox,
        setup.peers,
        setup.refusals.clone(),
    )?;
    let transport_layer = TransportLayer::new(cancel.clone());
    transport_layer.set_stream_idle_timeout(setup.tcp_idle);
    let connection = UdpConnection::from_socket(Arc::new(udp), None, Some(cancel.child_token()))
        .await
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    transport_layer.add_transport(connection.into());
    let endpoint = EndpointBuilder::new()
        .with_option(EndpointOption {
            t1x64: setup.transaction_timeout,
            ..EndpointOption::default()
        })
        .with_cancel_token(cancel)
        .with_transport_layer(transport_layer)
        .with_user_agent(concat!("pbxd/", env!("CARGO_PKG_VERSION")))
        .with_inspector(Box::new(crate::EscapeRepair {
            counts: setup.counts.clone(),
        }))
        .build();
    let incoming_transactions = endpoint
        .incoming_transactions()
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
    let (states, state_receiver) = dialogs.new_dialog_state_channel();
    let (relay, relay_receiver) = mpsc::unbounded_channel();
    let shard = Arc::new(SipShard {
        index,
        endpoint: endpoint.inner.clone(),
        dialogs,
        incoming: setup.incoming,
        states: DialogStates {
            sender: states,
            routes: Mutex::new(HashMap::new()),
        },
        relay: InviteRelay {
            sender: relay,
            receiver: Mutex::new(relay_receiver),
            routes: Mutex::new(HashMap::new()),
        },
    });
    let this = shard.clone();
    tokio::task::spawn_local(async move {
        let Ok(network) = network.await else { return };
        tokio::select! {
            () = endpoint.serve() => {}
            () = take_transactions(network, this.clone(), incoming_transactions) => {}
            () = this.states.pass_on(state_receiver) => {}
            () = this.relay.pass_on() => {}
        }
    });
    Ok(shard)
}

/// A TCP connection joins this shard's endpoint.
fn take_tcp(
    shard: &SipShard,
    stream: std::net::TcpStream,
    local: SocketAddr,
    cancel: CancellationToken,
    gate: Arc<transport::StreamGate>,
) {
    use rsipstack::transport::stream::StreamConnectionInner;
    use rsipstack::transport::tcp::TcpConnection;
    use rsipstack::transport::{SipAddr, SipConnection};
    let stream = match tokio::net::TcpStream::from_std(stream) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::debug!(%error, "TCP connection dropped");
            return;
        }
    };
    let local = SipAddr {
        r#type: Some(rsipstack::sip::transport::Transport::Tcp),
        addr: local.into(),
    };
    let remote = SipAddr {
        r#type: Some(rsipstack::sip::transport::Transport::Tcp),
        addr: gate.from.into(),
    };
    // Every message is checked by the gate before the stack parses it.
    let (read, write) = tokio::io::split(stream);
    let inner = StreamConnectionInner::new(local, remote, read, write).with_guard(gate);
    let connection = TcpConnection {
        inner: Arc::new(inner),
        cancel_token: Some(cancel),
    };
    shard
        .endpoint
        .transport_layer
        .add_connection(SipConnection::Tcp(connection));
}

async fn take_transactions(
    network: Arc<SipNetwork>,
    shard: Arc<SipShard>,
    mut incoming: rsipstack::transaction::TransactionReceiver,
) {
    while let Some(tx) = incoming.recv().await {
        let network = network.clone();
        let shard = shard.clone();
        tokio::task::spawn_local(async move { dispatch(network, shard, tx).await });
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

/// The option tags pbxd supports (what OPTIONS says in `Supported`).
const SUPPORTED: &[&str] = &["replaces"];

/// Why a request cannot be taken as it is, and what to answer.
#[derive(Debug)]
pub struct Unusable {
    pub status: StatusCode,
    /// What the response must carry: `Unsupported`, `Accept` or
    /// `Accept-Encoding`, or nothing.
    pub headers: Vec<Header>,
    pub reason: String,
}

/// What `dispatch` refuses a request (not an ACK) with before it looks
/// further: another SIP version (§8.1.1.1, §21.5.7: 505), what pbxd does
/// not support (420, 415), a header given twice (400), over UDP a
/// Content-Length the datagram does not hold (§18.3: 400), over a stream
/// a message over 64 KB (513).
pub fn refusal(request: &rsipstack::sip::Request, reliable: bool) -> Option<Unusable> {
    let plain = |status: StatusCode, reason: String| Unusable {
        status,
        headers: Vec::new(),
        reason,
    };
    if request.version != rsipstack::sip::Version::V2 {
        return Some(plain(
            StatusCode::VersionNotSupported,
            format!("in {}", request.version),
        ));
    }
    if let Some(unusable) = unusable(request) {
        return Some(unusable);
    }
    if let Some(name) = duplicated_header(request) {
        return Some(plain(StatusCode::BadRequest, format!("{name} given twice")));
    }
    if !reliable {
        if let Some(fault) = content_length_fault(request) {
            return Some(plain(StatusCode::BadRequest, fault));
        }
    }
    if reliable && message_size(request) > LARGEST_MESSAGE {
        return Some(plain(StatusCode::MessageTooLarge, "message too large".into()));
    }
    None
}

/// What pbxd's SIP side makes of one datagram, without a network: the
/// gate, the stack's parser, the checks `dispatch` makes before it takes a
/// request, an INVITE's session description and the credentials a request
/// carries. The status pbxd answers with before going on (`None`: it goes
/// on, or drops what is no request). The fuzz target `datagram` runs this
/// on any bytes: it must never panic.
pub fn datagram_outcome(datagram: &[u8]) -> Option<u16> {
    use rsipstack::sip::prelude::HeadersExt;
    let rewritten;
    let datagram = match crate::gate::judge(datagram) {
        crate::gate::Verdict::Pass => datagram,
        crate::gate::Verdict::Rewritten(bytes) => {
            rewritten = bytes;
            &rewritten[..]
        }
        crate::gate::Verdict::Refused { answer, .. } => return status_of(&answer),
    };
    let unparsable = |error: &str| {
        crate::gate::answer_unusable(datagram, error, false).and_then(|(_, answer)| status_of(&answer))
    };
    let message = match rsipstack::sip::SipMessage::try_from(datagram) {
        Ok(message) => message,
        Err(error) => return unparsable(&error.to_string()),
    };
    let source = SocketAddr::from(([127, 0, 0, 1], 5060));
    let message = match rsipstack::transport::SipConnection::update_msg_received(
        message,
        source,
        rsipstack::sip::transport::Transport::Udp,
    ) {
        Ok(message) => message,
        Err(error) => return unparsable(&error.to_string()),
    };
    let rsipstack::sip::SipMessage::Request(request) = message else {
        return None;
    };
    if request.method != Method::Ack {
        if let Some(refusal) = refusal(&request, false) {
            return Some(refusal.status.code());
        }
    }
    let _ = request.to_header_tag();
    let _ = request.from_header().and_then(|from| from.uri());
    // What the registrar reads of a REGISTER.
    if let Ok(contacts) = request.typed_contact_headers() {
        for contact in contacts {
            let _ = (
                contact.uri.to_string(),
                contact.expires(),
                contact.uri.host().to_string(),
            );
        }
    }
    let _ = request
        .expires_header()
        .map(|header| header.value().trim().parse::<u32>());
    for header in request.headers.iter() {
        let credentials = match header {
            Header::Authorization(value) => value.value(),
            Header::ProxyAuthorization(value) => value.value(),
            _ => continue,
        };
        let digest = crate::digest::DigestServer::new("example.com", Duration::from_secs(60));
        let method = request.method.to_string();
        let _ = digest.verify(&method, credentials, |_| Some("secret".to_string()));
    }
    if matches!(request.method, Method::Invite | Method::Update) && !request.body.is_empty() {
        let offer = match crate::sdp::parse(&String::from_utf8_lossy(&request.body)) {
            Ok(offer) => offer,
            Err(error) if error.is_not_acceptable() => return Some(488),
            Err(_) => return Some(400),
        };
        if crate::sdp::answer(&offer, source.ip(), 40_000, 1, 1).is_err() {
            return Some(488);
        }
    }
    None
}

/// The status code of a response we made.
fn status_of(response: &[u8]) -> Option<u16> {
    response
        .get(8..11)
        .and_then(|code| std::str::from_utf8(code).ok()?.parse().ok())
}

/// A request that asks for what pbxd does not have: an extension it does
/// not support (RFC 3261 §8.2.2.3: 420 with `Unsupported`; not for CANCEL
/// and ACK), a body encoded in a way it cannot read, or a session
/// description of a type it cannot use (§8.2.3: 415 with
/// `Accept-Encoding` or `Accept`).
fn unusable(request: &rsipstack::sip::Request) -> Option<Unusable> {
    let value = |header: &Header| {
        let text = header.to_string();
        text.split_once(':')
            .map(|(_, value)| value.trim().to_string())
            .unwrap_or_default()
    };
    let tags = |text: String| -> Vec<String> {
        text.split(',')
            .map(|tag| tag.trim().to_ascii_lowercase())
            .filter(|tag| !tag.is_empty())
            .collect()
    };
    if request.method != Method::Cancel {
        let unknown: Vec<String> = request
            .headers
            .iter()
            .filter(|header| matches!(header, Header::Require(_)))
            .flat_map(|header| tags(value(header)))
            .filter(|tag| !SUPPORTED.contains(&tag.as_str()))
            .collect();
        if !unknown.is_empty() {
            let unknown = unknown.join(", ");
            return Some(Unusable {
                status: StatusCode::BadExtension,
                headers: vec![Header::Unsupported(unknown.clone().into())],
                reason: format!("requires {unknown}"),
            });
        }
    }
    if request.body.is_empty() {
        return None;
    }
    for header in request
        .headers
        .iter()
        .filter(|header| matches!(header, Header::ContentEncoding(_)))
    {
        let encodings = tags(value(header));
        if encodings.iter().any(|encoding| encoding != "identity") {
            return Some(Unusable {
                status: StatusCode::UnsupportedMediaType,
                headers: vec![Header::AcceptEncoding("identity".into())],
                reason: format!("body encoded as {}", encodings.join(", ")),
            });
        }
    }
    if matches!(request.method, Method::Invite | Method::Update) {
        let content_type = request
            .headers
            .iter()
            .find(|header| matches!(header, Header::ContentType(_)))
            .map(value)
            .unwrap_or_default();
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if media_type != "application/sdp" {
            return Some(Unusable {
                status: StatusCode::UnsupportedMediaType,
                headers: vec![Header::Accept("application/sdp".into())],
                reason: format!("a body of type {content_type:?}"),
            });
        }
    }
    None
}

/// What is wrong with a datagram's `Content-Length`, if anything: over UDP
/// it may not promise more than the datagram holds, and must be a number
/// (RFC 3261 §18.3: such a message is refused with 400).
fn content_length_fault(request: &rsipstack::sip::Request) -> Option<String> {
    let header = request
        .headers
        .iter()
        .find(|header| matches!(header, Header::ContentLength(_)))?;
    let text = header.to_string();
    let value = text.split_once(':').map_or("", |(_, value)| value.trim());
    match value.parse::<usize>() {
        Err(_) => Some(format!("Content-Length {value:?} is not a length")),
        Ok(length) if length > request.body.len() => Some(format!(
            "Content-Length {length} is more than the {} bytes the datagram holds",
            request.body.len()
        )),
        Ok(_) => None,
    }
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

/// Requests taken by method and responses sent by status code, since
/// pbxd started (the metrics).
#[derive(Debug)]
pub struct Counts {
    requests: Vec<AtomicU64>,
    responses: Vec<AtomicU64>,
    /// Legs ended, by `outgoing as usize * 2 + answered as usize`.
    legs: [AtomicU64; 4],
    rtp_sent: AtomicU64,
    rtp_received: AtomicU64,
    rtp_lost: AtomicU64,
    srtp_refused: AtomicU64,
}

impl Default for Counts {
    fn default() -> Counts {
        let zeros = |count: usize| (0..count).map(|_| AtomicU64::new(0)).collect();
        Counts {
            requests: zeros(Method::all().len()),
            responses: zeros(600),
            legs: Default::default(),
            rtp_sent: AtomicU64::new(0),
            rtp_received: AtomicU64::new(0),
            rtp_lost: AtomicU64::new(0),
            srtp_refused: AtomicU64::new(0),
        }
    }
}

impl Counts {
    fn requested(&self, method: Method) {
        if let Some(index) = Method::all().iter().position(|known| *known == method) {
            self.requests[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn responded(&self, code: u16) {
        if let Some(count) = usize::from(code)
            .checked_sub(100)
            .and_then(|index| self.responses.get(index))
        {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A leg ended, having sent and received so many RTP packets.
    pub(crate) fn leg_ended(&self, outgoing: bool, answered: bool, stats: &pbx_media::SessionStats) {
        self.legs[usize::from(outgoing) * 2 + usize::from(answered)].fetch_add(1, Ordering::Relaxed);
        self.rtp_sent.fetch_add(stats.packets_sent, Ordering::Relaxed);
        self.rtp_received
            .fetch_add(stats.packets_received, Ordering::Relaxed);
        self.rtp_lost.fetch_add(stats.packets_lost, Ordering::Relaxed);
        self.srtp_refused.fetch_add(stats.srtp_refused, Ordering::Relaxed);
    }

    /// (method, count) for each method seen.
    pub fn requests(&self) -> Vec<(String, u64)> {
        Method::all()
            .into_iter()
            .zip(&self.requests)
            .map(|(method, count)| (method.to_string(), count.load(Ordering::Relaxed)))
            .filter(|(_, count)| *count > 0)
            .collect()
    }

    /// (status code, count) for each code sent.
    pub fn responses(&self) -> Vec<(u16, u64)> {
        (100u16..)
            .zip(&self.responses)
            .map(|(code, count)| (code, count.load(Ordering::Relaxed)))
            .filter(|(_, count)| *count > 0)
            .collect()
    }
}

/// What the SIP side has counted, for the metrics.
#[derive(Clone, Debug, Default)]
pub struct SipCounts {
    /// Requests taken, by method.
    pub requests: Vec<(String, u64)>,
    /// Responses sent, by status code.
    pub responses: Vec<(u16, u64)>,
    /// Malformed messages refused (400, 501, 416, 505…) since start.
    pub refused: u64,
    /// Requests refused because their source is locked out.
    pub lockouts: u64,
    /// TCP connections refused over the per-source cap.
    pub tcp_refused: u64,
    /// TCP connections open now.
    pub tcp_open: usize,
    /// Call legs live now.
    pub legs: usize,
    /// Legs ended: (direction `in` or `out`, answered `yes` or `no`, count).
    pub legs_ended: Vec<(&'static str, &'static str, u64)>,
    /// RTP packets sent and received by legs that have ended.
    pub rtp_sent: u64,
    pub rtp_received: u64,
    pub rtp_lost: u64,
    /// SRTP packets refused (authentication, replay) by legs that have ended.
    pub srtp_refused: u64,
    /// Failed authentications (SIP digest, and HTTP logins).
    pub auth_failures: u64,
    /// Every trunk by name, and whether it is up.
    pub trunks_up: Vec<(String, bool)>,
}

impl SipNetwork {
    /// The digest server of `domain`'s realm (HTTP authenticates with it
    /// too: the same nonces and algorithms).
    pub fn digest(&self, domain: &str) -> Arc<DigestServer> {
        self.shared.digest(domain)
    }

    /// Failed authentications by source address (HTTP counts its own in
    /// them: one policy for both).
    pub fn auth_failures(&self) -> &AuthFailures {
        &self.shared.auth_failures
    }

    /// Every registered phone: (account, contact, where it registered
    /// from, seconds left, its User-Agent).
    pub fn registrations(&self) -> Vec<(String, String, SocketAddr, u64, String)> {
        let now = crate::location::now();
        let accounts = self.shared.location.accounts().unwrap_or_default();
        let mut all = Vec::new();
        for account in accounts {
            for binding in self.shared.location.lookup(&account).unwrap_or_default() {
                let left = binding.remaining(now);
                if left > 0 {
                    all.push((
                        account.clone(),
                        binding.contact,
                        binding.source,
                        left,
                        binding.user_agent,
                    ));
                }
            }
        }
        all
    }

    /// What the SIP side has counted so far.
    pub fn counts(&self) -> SipCounts {
        let shared = &self.shared;
        SipCounts {
            requests: shared.counts.requests(),
            responses: shared.counts.responses(),
            refused: shared.refusals.total(),
            lockouts: shared.lockouts.total(),
            tcp_refused: shared.tcp_refusals.total(),
            tcp_open: shared
                .tcp_per_source
                .lock()
                .map(|open| {
                    open.values()
                        .flatten()
                        .filter(|token| !token.is_cancelled())
                        .count()
                })
                .unwrap_or(0),
            legs: shared.live_legs(),
            legs_ended: [("in", "no"), ("in", "yes"), ("out", "no"), ("out", "yes")]
                .into_iter()
                .zip(&shared.counts.legs)
                .map(|((direction, answered), count)| (direction, answered, count.load(Ordering::Relaxed)))
                .collect(),
            rtp_sent: shared.counts.rtp_sent.load(Ordering::Relaxed),
            rtp_received: shared.counts.rtp_received.load(Ordering::Relaxed),
            rtp_lost: shared.counts.rtp_lost.load(Ordering::Relaxed),
            srtp_refused: shared.counts.srtp_refused.load(Ordering::Relaxed),
            auth_failures: shared.auth_failures.total(),
            trunks_up: shared.trunks.states(),
        }
    }
}

/// Sends one transaction where it belongs.
async fn dispatch(network: Arc<SipNetwork>, shard: Arc<SipShard>, mut tx: Transaction) {
    let shared = &network.shared;
    let method = tx.original.method;
    shared.counts.requested(method);
    if method != Method::Ack {
        let reliable = tx
            .connection
            .as_ref()
            .is_some_and(|connection| connection.is_reliable());
        if let Some(refusal) = refusal(&tx.original, reliable) {
            note_refusal(shared, &tx, &format!("{method}: {}", refusal.reason));
            // The response copies the request's version: ours is 2.0.
            tx.original.version = rsipstack::sip::Version::V2;
            return refuse(tx, refusal.status, refusal.headers).await;
        }
    }
    let in_dialog = tx.original.to_header_tag().is_some();
    if in_dialog || !matches!(method, Method::Invite | Method::Register | Method::Options) {
        if let Some(mut dialog) = shard.dialogs.match_dialog(&tx) {
            if let Err(error) = dialog.handle(&mut tx).await {
                tracing::debug!(%error, %method, "in-dialog request");
            }
            return;
        }
        // Whatever pbxd answers now, it answers as the UAS.
        tag_to(&mut tx);
        match method {
            Method::Ack => {}
            // A method pbxd does not take, in a dialog or not (RFC 3261
            // §8.2.1).
            _ if !allowed(method) => reply_not_allowed(&mut tx).await,
            // A request for a dialog (or a transaction) pbxd does not have
            // (§12.2.2: whatever the method, with a To tag matching none).
            _ => {
                let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
            }
        }
        return;
    }
    if method != Method::Invite {
        // No dialog is made outside INVITE, which tags its own.
        tag_to(&mut tx);
    }
    match method {
        Method::Register => registrar::register(shared, tx).await,
        Method::Options => {
            let headers = vec![
                Header::Allow(ALLOWED.into()),
                Header::Accept("application/sdp".into()),
                Header::Supported("replaces".into()),
            ];
            let _ = tx.reply_with(StatusCode::OK, headers, None).await;
        }
        Method::Invite => match shared.admission.admit() {
            Ok(permit) => crate::incoming::incoming(network.clone(), shard, tx, permit).await,
            Err(refusal) => {
                tracing::info!("new call refused: {refusal}");
                let retry_after = Header::RetryAfter(shared.admission.retry_after().to_string().into());
                refuse(tx, StatusCode::ServiceUnavailable, vec![retry_after]).await;
            }
        },
        _ => reply_not_allowed(&mut tx).await,
    }
}

impl SipShared {
    /// Counts a new TCP connection from `ip` (`token` says while it is
    /// open), unless `limit` are open.
    fn open_tcp(&self, ip: IpAddr, limit: usize, token: &CancellationToken) -> bool {
        let Ok(mut open) = self.tcp_per_source.lock() else {
            return true;
        };
        let tokens = open.entry(ip).or_default();
        tokens.retain(|token| !token.is_cancelled());
        if tokens.len() >= limit {
            return false;
        }
        tokens.push(token.clone());
        true
    }

    /// A TCP connection from `peer` has closed: what is kept of it goes.
    fn forget_tcp(&self, peer: SocketAddr) {
        if let Ok(mut open) = self.tcp_per_source.lock() {
            if let Some(tokens) = open.get_mut(&peer.ip()) {
                tokens.retain(|token| !token.is_cancelled());
                if tokens.is_empty() {
                    open.remove(&peer.ip());
                }
            }
        }
        if let Ok(mut flows) = self.tcp_flows.lock() {
            flows.remove(&peer);
        }
    }
}

/// Gives a request without a To tag one of pbxd's, so that every response
/// made from it carries it (RFC 3261 §8.2.6.2: a UAS adds a To tag to its
/// responses). Not for an INVITE that will make a dialog: its dialog
/// chooses the tag.
pub(crate) fn tag_to(tx: &mut Transaction) {
    use rsipstack::sip::prelude::HeadersExt;
    if tx.original.to_header_tag().is_some() {
        return;
    }
    if let Ok(to) = tx.original.to_header() {
        let tag = format!("{:08x}", crate::random_u32());
        let tagged = to.clone().with_tag(tag.into());
        tx.original.headers.unique_push(tagged.into());
    }
}

/// Refuses a request outside any dialog with `code` and `headers`; the
/// response carries a To tag of pbxd's. A refused INVITE's transaction
/// lives on, so that over UDP its response is sent again until the ACK
/// comes (RFC 3261 §17.2.1, Timer G) or the transaction gives up (Timer H).
pub(crate) async fn refuse(mut tx: Transaction, code: StatusCode, headers: Vec<Header>) {
    tag_to(&mut tx);
    let sent = tx.reply_with(code, headers, None).await;
    if sent.is_ok() && tx.original.method == Method::Invite {
        while tx.receive().await.is_some() {}
    }
}

/// Counts (and now and then logs) a request refused as malformed.
fn note_refusal(shared: &SipShared, tx: &Transaction, fault: &str) {
    let source = crate::registrar::source_of(tx).map(|(source, _)| source);
    shared.refusals.note(source, fault);
}

/// Whether pbxd takes `method` at all (the methods of [`ALLOWED`]).
fn allowed(method: Method) -> bool {
    matches!(
        method,
        Method::Invite
            | Method::Ack
            | Method::Cancel
            | Method::Bye
            | Method::Options
            | Method::Info
            | Method::Register
            | Method::Update
            | Method::Refer
            | Method::Notify
    )
}

/// `405 Method Not Allowed`, with the methods pbxd takes (RFC 3261
/// §8.2.1: the response must carry `Allow`).
async fn reply_not_allowed(tx: &mut Transaction) {
    let _ = tx
        .reply_with(
            StatusCode::MethodNotAllowed,
            vec![Header::Allow(ALLOWED.into())],
            None,
        )
        .await;
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

#[cfg(test)]
mod datagram_tests {
    use super::datagram_outcome;

    /// RFC 4475's torture messages (kept for pbxd's own test of them) all
    /// go through the datagram path without a panic, and a few get the
    /// answers RFC 4475 names before anything else looks at them.
    #[test]
    fn torture_messages_take_the_datagram_path() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../pbxd/tests/data/rfc4475");
        let mut seen = 0;
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|extension| extension == "dat") {
                let bytes = std::fs::read(&path).unwrap();
                let outcome = datagram_outcome(&bytes);
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let expected = match name.split('-').nth(1).unwrap_or_default() {
                    "intmeth.dat" => Some(Some(501)),
                    "badinv01.dat" | "mismatch01.dat" | "insuf.dat" => Some(Some(400)),
                    "unkscm.dat" => Some(Some(416)),
                    "badvers.dat" => Some(Some(505)),
                    "lwsdisp.dat" | "semiuri.dat" | "wsinv.dat" => Some(None),
                    _ => None,
                };
                if let Some(expected) = expected {
                    assert_eq!(outcome, expected, "{name}");
                }
                seen += 1;
            }
        }
        assert_eq!(seen, 49);
        assert_eq!(datagram_outcome(b""), None);
        assert_eq!(datagram_outcome(&[0xff; 64]), None);
    }
}
