//! Trunks: whether each is up, failing over from one to the next while a
//! call is placed, the numbers of calls that come from one, and the
//! `OPTIONS` pings that bring a trunk that is down back.
//!
//! A call to a number goes to the first trunk (by name) that carries it
//! and is up; when that trunk answers 5xx or 408, or says nothing at all
//! within its `timeout_seconds`, the same leg sends its INVITE to the next
//! one, with that trunk's own rewriting of the number. The leg's owner
//! never knows: it sees the call answered, or failed with the last
//! trunk's status. Other failures (404, 486 busy, 6xx) end the call: the
//! number, not the trunk, is at fault. A trunk that fails
//! `down_after_failures` times in a row is down: new calls skip it while
//! another trunk carries their number (when none does, the trunks that
//! carry it are tried anyway, in order), and pbxd sends it an `OPTIONS`
//! every `ping_seconds`; any response brings it back up.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pbx_runtime::config::{Config, TrunkConfig};
use rsipstack::sip::prelude::*;
use rsipstack::sip::{Method, SipMessage, StatusCode, Transport, Uri};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::route::Route;
use crate::server::{SipNetwork, SipShard, SipShared, StateReceiver};

/// Whether a trunk is up, from what its answers have been: down after
/// `down_after` failures in a row, up again at its first answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    failures_in_a_row: u32,
    down: bool,
}

/// A trunk went down or came back up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    WentDown,
    CameUp,
}

impl Health {
    /// The trunk failed a call (5xx, 408, silence).
    pub fn failed(&mut self, down_after: u32) -> Option<Change> {
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        if !self.down && self.failures_in_a_row >= down_after.max(1) {
            self.down = true;
            return Some(Change::WentDown);
        }
        None
    }

    /// The trunk answered something (a call's provisional or final
    /// response other than a failure, or a ping's response).
    pub fn answered(&mut self) -> Option<Change> {
        self.failures_in_a_row = 0;
        if self.down {
            self.down = false;
            return Some(Change::CameUp);
        }
        None
    }

    pub fn is_up(&self) -> bool {
        !self.down
    }
}

/// Whether a trunk's final response sends the call on to the next trunk:
/// the trunk could not take it (5xx) or did not answer (408).
pub fn fails_over(code: u16) -> bool {
    code == 408 || (500..600).contains(&code)
}

/// One trunk's state.
struct TrunkState {
    /// Where its proxy is (resolved when pbxd starts), for pings and to
    /// know the calls that come from it.
    address: Option<SocketAddr>,
    /// Written by the call legs placed through the trunk and by its pings
    /// (any shard); read to choose trunks for a new call.
    health: Mutex<Health>,
}

/// Every trunk's state, shared by the shards.
pub struct Trunks {
    states: BTreeMap<String, TrunkState>,
    configs: BTreeMap<String, TrunkConfig>,
}

impl std::fmt::Debug for Trunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.states.keys()).finish()
    }
}

/// `host:port` (or `host`, port 5060) as an address; a host name is
/// looked up (once, when pbxd starts).
fn resolve(proxy: &str) -> Option<SocketAddr> {
    if let Ok(address) = proxy.parse::<SocketAddr>() {
        return Some(address);
    }
    if let Ok(ip) = proxy
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Some(SocketAddr::new(ip, 5060));
    }
    let with_port = if proxy.contains(':') {
        proxy.to_string()
    } else {
        format!("{proxy}:5060")
    };
    with_port.to_socket_addrs().ok()?.next()
}

impl Trunks {
    /// The trunks of `config`, all up.
    pub fn new(config: &Config) -> Trunks {
        let states = config
            .trunks
            .iter()
            .map(|(name, trunk)| {
                let address = resolve(&trunk.proxy);
                if address.is_none() {
                    tracing::warn!(trunk = %name, proxy = %trunk.proxy, "the trunk's proxy has no address");
                }
                let state = TrunkState {
                    address,
                    health: Mutex::new(Health::default()),
                };
                (name.clone(), state)
            })
            .collect();
        Trunks {
            states,
            configs: config.trunks.clone(),
        }
    }

    /// Whether trunk `name` is up (an unknown one is).
    pub fn is_up(&self, name: &str) -> bool {
        self.states
            .get(name)
            .and_then(|state| state.health.lock().ok().map(|health| health.is_up()))
            .unwrap_or(true)
    }

    /// Every trunk by name, and whether it is up (the metrics).
    pub fn states(&self) -> Vec<(String, bool)> {
        self.states
            .keys()
            .map(|name| (name.clone(), self.is_up(name)))
            .collect()
    }

    /// Where trunk `name`'s proxy is.
    pub fn address(&self, name: &str) -> Option<SocketAddr> {
        self.states.get(name)?.address
    }

    /// The trunk whose proxy is at `source` (the same address and port).
    fn at_address(&self, source: SocketAddr) -> Option<(&str, &TrunkConfig)> {
        let (name, _) = self
            .states
            .iter()
            .find(|(_, state)| state.address == Some(source))?;
        Some((name.as_str(), self.configs.get(name)?))
    }

    /// Trunk `name` failed a call or did not answer (`why`).
    pub(crate) fn failed(&self, name: &str, why: &str) {
        let (Some(state), Some(config)) = (self.states.get(name), self.configs.get(name)) else {
            return;
        };
        let change = state
            .health
            .lock()
            .ok()
            .and_then(|mut health| health.failed(config.down_after_failures));
        if change == Some(Change::WentDown) {
            tracing::warn!(
                trunk = %name,
                failures = config.down_after_failures,
                ping_seconds = config.ping_seconds,
                "trunk {name} is down ({why}): new calls skip it; pinging it with OPTIONS"
            );
        }
    }

    /// Trunk `name` answered.
    pub(crate) fn answered(&self, name: &str) {
        let Some(state) = self.states.get(name) else {
            return;
        };
        let change = state.health.lock().ok().and_then(|mut health| health.answered());
        if change == Some(Change::CameUp) {
            tracing::warn!(trunk = %name, "trunk {name} is up again");
        }
    }

    /// The trunks that are down.
    fn down(&self) -> Vec<String> {
        self.states
            .keys()
            .filter(|name| !self.is_up(name))
            .cloned()
            .collect()
    }
}

/// The trunks a leg placed to a number has still to try, and how the one
/// it tries now is doing. Kept by the leg's task (`SipCall`), only for a
/// call that goes out through a trunk.
pub(crate) struct Failover {
    /// The trunk the current INVITE went to.
    trunk: String,
    /// The trunks to try next, in order.
    next: VecDeque<Route>,
    /// When the trunk counts as not answering, while it has said nothing.
    deadline: Option<Instant>,
    /// Whether this trunk's health has been told how the attempt went.
    judged: bool,
    /// A new INVITE's dialog states, for the leg's loop to take.
    pub states: Option<StateReceiver>,
}

impl Failover {
    /// For a call whose INVITE has just gone to `route`'s trunk, with
    /// `next` to try after it; `None` when it went to no trunk.
    pub fn start(shared: &SipShared, route: &Route, next: Vec<Route>) -> Option<Box<Failover>> {
        let trunk = route.trunk.clone()?;
        Some(Box::new(Failover {
            deadline: Some(Instant::now() + timeout(shared, &trunk)),
            trunk,
            next: next.into(),
            judged: false,
            states: None,
        }))
    }

    /// The trunk tried now.
    pub fn trunk(&self) -> &str {
        &self.trunk
    }

    /// When the trunk counts as not answering (`None` once it has said
    /// something).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The trunk said something (a provisional response, an answer, a
    /// final response that is not its failure): it is up.
    pub fn heard(&mut self, shared: &SipShared) {
        self.deadline = None;
        if !self.judged {
            self.judged = true;
            shared.trunks.answered(&self.trunk);
        }
    }

    /// The trunk failed the call (`why`).
    pub fn failed(&mut self, shared: &SipShared, why: &str) {
        self.deadline = None;
        if !self.judged {
            self.judged = true;
            shared.trunks.failed(&self.trunk, why);
        }
    }

    /// The next trunk's route, if any is left.
    pub fn next_route(&mut self) -> Option<Route> {
        self.next.pop_front()
    }

    /// The INVITE went to `route`'s trunk; its dialog reports on `states`.
    pub fn began(&mut self, shared: &SipShared, route: &Route, states: StateReceiver) {
        let trunk = route.trunk.clone().unwrap_or_default();
        self.deadline = Some(Instant::now() + timeout(shared, &trunk));
        self.trunk = trunk;
        self.judged = false;
        self.states = Some(states);
    }
}

/// How long trunk `name` has to say something to an INVITE.
fn timeout(shared: &SipShared, name: &str) -> Duration {
    let seconds = shared
        .config
        .trunks
        .get(name)
        .map_or(5, |trunk| trunk.timeout_seconds);
    Duration::from_secs(seconds)
}

/// Waits until `deadline`; forever when there is none.
pub(crate) async fn silence(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The trunk a request came from, if it came from one's proxy.
fn trunk_of<'a>(shared: &'a SipShared, tx: &Transaction) -> Option<(&'a str, &'a TrunkConfig)> {
    let (source, _) = crate::registrar::source_of(tx)?;
    shared.trunks.at_address(source)
}

/// The number an INVITE is for (its Request-URI's user part, `user`):
/// for a call from a trunk, rewritten by the trunk's `incoming_called`
/// rules; as it is for any other.
pub(crate) fn called_number(shared: &SipShared, tx: &Transaction, user: String) -> String {
    let Some((name, trunk)) = trunk_of(shared, tx) else {
        return user;
    };
    let number = pbx_runtime::config::rewrite(&trunk.incoming_called, &user);
    if number != user {
        tracing::debug!(trunk = %name, called = %user, routed = %number, "number called from a trunk");
    }
    number
}

/// The caller of an INVITE (its From URI): for a call from a trunk, its
/// number rewritten by the trunk's `incoming_caller` rules, so that it
/// can be dialled back; as it is for any other.
pub(crate) fn caller(shared: &SipShared, tx: &Transaction, mut from: Uri) -> Uri {
    let Some((name, trunk)) = trunk_of(shared, tx) else {
        return from;
    };
    if let Some(auth) = from.auth.as_mut() {
        let given = crate::percent_decode(&auth.user);
        let number = pbx_runtime::config::rewrite(&trunk.incoming_caller, &given);
        if number != given {
            tracing::debug!(trunk = %name, caller = %given, shown = %number, "caller from a trunk");
            auth.user = number;
        }
    }
    from
}

/// Starts pinging the trunks that are down (on the first shard), until
/// `cancel`.
pub(crate) fn start_pinging(network: &Arc<SipNetwork>, cancel: CancellationToken) {
    if network.shared.config.trunks.is_empty() {
        return;
    }
    let Some(shard) = network.shards.first().cloned() else {
        return;
    };
    let shared = network.shared.clone();
    let shards = network.shards.len();
    network.spawner.run_on(0, move || {
        tokio::task::spawn_local(pinging(shared, shard, shards, cancel));
    });
}

/// Every second, sends an `OPTIONS` to each trunk that is down and has
/// not been pinged for its `ping_seconds`.
async fn pinging(shared: Arc<SipShared>, shard: Arc<SipShard>, shards: usize, cancel: CancellationToken) {
    let mut last_ping: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let down = shared.trunks.down();
        // A trunk that came back is pinged at once when it goes down again.
        last_ping.retain(|name, _| down.contains(name));
        for name in down {
            let every = shared
                .config
                .trunks
                .get(&name)
                .map_or(Duration::from_secs(10), |trunk| {
                    Duration::from_secs(trunk.ping_seconds)
                });
            let due = last_ping.get(&name).is_none_or(|at| at.elapsed() >= every);
            if due {
                last_ping.insert(name.clone(), Instant::now());
                let (shared, shard) = (shared.clone(), shard.clone());
                tokio::task::spawn_local(async move {
                    if ping(&shared, &shard, shards, &name, every).await {
                        shared.trunks.answered(&name);
                    } else {
                        tracing::debug!(trunk = %name, "no answer to OPTIONS");
                    }
                });
            }
        }
    }
}

/// Sends trunk `name` an `OPTIONS`; whether it answered within `wait`.
async fn ping(shared: &SipShared, shard: &SipShard, shards: usize, name: &str, wait: Duration) -> bool {
    let (Some(address), Some(trunk)) = (shared.trunks.address(name), shared.config.trunks.get(name)) else {
        return false;
    };
    let made = options_request(shared, shard, shards, trunk);
    let request = match made {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(trunk = %name, %error, "no OPTIONS");
            return false;
        }
    };
    let Ok(key) = TransactionKey::from_request(&request, TransactionRole::Client) else {
        return false;
    };
    let mut tx = Transaction::new_client(key, request, shard.endpoint.clone(), None);
    tx.destination = Some(SipAddr {
        r#type: Some(Transport::Udp),
        addr: address.into(),
    });
    if tx.send().await.is_err() {
        return false;
    }
    let answer = async {
        while let Some(message) = tx.receive().await {
            if let SipMessage::Response(response) = message {
                return is_from_peer(&response);
            }
        }
        false
    };
    tokio::time::timeout(wait, answer).await.unwrap_or(false)
}

/// Whether a response came from the peer, not from the transaction that
/// gave up waiting (a 408 it makes itself, without a To tag).
fn is_from_peer(response: &rsipstack::sip::Response) -> bool {
    let tagged = response
        .to_header()
        .ok()
        .and_then(|to| to.tag().ok().flatten())
        .is_some();
    response.status_code != StatusCode::RequestTimeout || tagged
}

/// An `OPTIONS` to `trunk`, with a Call-ID of `shard` (its response must
/// come back to the shard that waits for it).
fn options_request(
    shared: &SipShared,
    shard: &SipShard,
    shards: usize,
    trunk: &TrunkConfig,
) -> Result<rsipstack::sip::Request, String> {
    let host = trunk
        .domain
        .clone()
        .unwrap_or_else(|| trunk.proxy.split(':').next().unwrap_or(&trunk.proxy).to_string());
    let uri = Uri::try_from(format!("sip:{host}").as_str()).map_err(|error| error.to_string())?;
    let ours = Uri::try_from(shared.contact().as_str()).map_err(|error| error.to_string())?;
    let from = rsipstack::sip::typed::From {
        display_name: None,
        uri: ours,
        params: vec![],
    }
    .with_tag(rsipstack::transaction::make_tag());
    let to = rsipstack::sip::typed::To {
        display_name: None,
        uri: uri.clone(),
        params: vec![],
    };
    let via = shard
        .endpoint
        .get_via(None, None)
        .map_err(|error| error.to_string())?;
    let call_id = crate::transport::call_id_for(shard.index, shards, &shared.advertise.to_string());
    Ok(shard
        .endpoint
        .make_request(Method::Options, uri, via, from, to, 1, Some(call_id.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trunk_goes_down_after_failures_in_a_row_and_comes_back_at_an_answer() {
        let mut health = Health::default();
        assert!(health.is_up());
        assert_eq!(health.failed(3), None);
        assert_eq!(health.failed(3), None);
        // An answer in between: the count starts again.
        assert_eq!(health.answered(), None);
        assert_eq!(health.failed(3), None);
        assert_eq!(health.failed(3), None);
        assert!(health.is_up());
        assert_eq!(health.failed(3), Some(Change::WentDown));
        assert!(!health.is_up());
        // Still down, said once.
        assert_eq!(health.failed(3), None);
        assert!(!health.is_up());
        assert_eq!(health.answered(), Some(Change::CameUp));
        assert!(health.is_up());
        assert_eq!(health.answered(), None);
        // Down after one failure when so configured (0 counts as 1).
        assert_eq!(health.failed(1), Some(Change::WentDown));
        let mut other = Health::default();
        assert_eq!(other.failed(0), Some(Change::WentDown));
    }

    #[test]
    fn what_fails_over() {
        for code in [408, 500, 502, 503, 504, 599] {
            assert!(fails_over(code), "{code}");
        }
        for code in [400, 403, 404, 480, 486, 487, 600, 603, 200] {
            assert!(!fails_over(code), "{code}");
        }
    }

    #[test]
    fn proxies_resolve_to_addresses() {
        assert_eq!(
            resolve("127.0.0.1:5070"),
            Some(SocketAddr::from(([127, 0, 0, 1], 5070)))
        );
        assert_eq!(
            resolve("127.0.0.1"),
            Some(SocketAddr::from(([127, 0, 0, 1], 5060)))
        );
        assert_eq!(resolve("[::1]:5070"), Some("[::1]:5070".parse().unwrap()));
        assert_eq!(
            resolve("localhost:5070").map(|address| address.port()),
            Some(5070)
        );
    }

    fn trunks(toml: &str) -> Trunks {
        let config = Config::parse(toml, "t.toml", &[]).unwrap();
        Trunks::new(&config)
    }

    #[test]
    fn health_is_kept_per_trunk_and_calls_are_known_by_their_source() {
        let trunks = trunks(
            "[trunks.a]\nproxy = \"127.0.0.1:5070\"\ndown_after_failures = 2\n\
             [trunks.b]\nproxy = \"127.0.0.1:5071\"\n",
        );
        trunks.failed("a", "503");
        assert!(trunks.is_up("a"));
        trunks.failed("a", "503");
        assert!(!trunks.is_up("a"));
        assert!(trunks.is_up("b"));
        assert_eq!(trunks.down(), vec!["a".to_string()]);
        assert_eq!(
            trunks.states(),
            vec![("a".to_string(), false), ("b".to_string(), true)]
        );
        trunks.answered("a");
        assert!(trunks.is_up("a"));
        assert!(trunks.is_up("unknown"));
        let from_b = trunks.at_address(SocketAddr::from(([127, 0, 0, 1], 5071)));
        assert_eq!(from_b.map(|(name, _)| name), Some("b"));
        // The same host, another port: a phone, not the trunk.
        assert!(trunks
            .at_address(SocketAddr::from(([127, 0, 0, 1], 5072)))
            .is_none());
    }
}
