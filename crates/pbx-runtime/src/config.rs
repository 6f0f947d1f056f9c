//! The configuration: one TOML file (`pbxd.toml` at the repository root is
//! the demo and the default), every key of which can be overridden on the
//! command line with `--set key=value`.
//!
//! A mistake names the file and line, the key and what was expected;
//! unknown keys are mistakes too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod number;
mod queue;
mod trunk;
pub use number::NumberConfig;
pub use queue::{QueueConfig, Strategy};
pub use trunk::{number_matches, rewrite, NumberRule, TrunkConfig};

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where live state (registrations, logins, records...) is kept.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub sip: SipConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub smtp: SmtpConfig,
    #[serde(default)]
    pub clock: ClockConfig,
    #[serde(default)]
    pub environments: EnvironmentsConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub cdr: CdrConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub media: MediaThreadsConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Domains by name.
    #[serde(default)]
    pub domains: BTreeMap<String, DomainConfig>,
    /// How simulated phones behave (`pbxd run`, tests).
    #[serde(default)]
    pub simulation: SimulationConfig,
    /// SIP trunks by name, tried in name order for a number.
    #[serde(default)]
    pub trunks: BTreeMap<String, TrunkConfig>,
    #[serde(default)]
    pub hotdesk: HotDeskConfig,
    #[serde(default)]
    pub parlay: ParlayConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// Where the file was read from (not a key).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

/// `[sip]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// `ip:port` to listen on, UDP and TCP.
    #[serde(default = "default_sip_listen")]
    pub listen: SocketAddr,
    /// The address phones should reach pbxd (and its RTP) at, when the
    /// listening one is not it (`0.0.0.0`, or behind NAT).
    #[serde(default)]
    pub advertise: Option<std::net::IpAddr>,
    /// A call whose peer sends no RTP for this long is ended.
    #[serde(default = "default_rtp_timeout")]
    pub rtp_timeout_seconds: u64,
    /// How long a digest nonce stays good.
    #[serde(default = "default_nonce_lifetime")]
    pub nonce_lifetime_seconds: u64,
    /// Longest registration accepted, in seconds (and the default).
    #[serde(default = "default_max_expires")]
    pub max_expires_seconds: u32,
    /// Failed authentications allowed per source address per minute
    /// before its requests are refused for a while.
    #[serde(default = "default_auth_failures")]
    pub auth_failures_per_minute: u32,
    /// Failed authentications allowed at one account per minute, from
    /// any addresses, before the account is refused to every address
    /// that has not authenticated as it within the last day (its own
    /// phones go on).
    #[serde(default = "default_auth_failures_per_account")]
    pub auth_failures_per_account_per_minute: u32,
    /// SIP requests a second from one address, past which its requests
    /// are dropped unread until that second is over (0: no limit). Trunks'
    /// proxies and `trusted_sources` are never limited.
    #[serde(default = "default_requests_per_source")]
    pub requests_per_source_per_second: u32,
    /// Addresses whose requests are never rate limited: a SIP proxy or
    /// SBC in front of pbxd that many phones come through.
    #[serde(default)]
    pub trusted_sources: Vec<std::net::IpAddr>,
    /// Pieces of a `User-Agent` that mark a SIP scanner (SIPVicious and
    /// the like), matched ignoring case: its requests are dropped (or
    /// answered 403, `scanner_answer`) before anything else looks at
    /// them. An empty list turns this off.
    #[serde(default = "default_scanners")]
    pub scanner_user_agents: Vec<String>,
    /// `"drop"` (send nothing: the scanner learns nothing) or `"403"`.
    #[serde(default = "default_scanner_answer")]
    pub scanner_answer: String,
    /// Digest algorithms challenged with, most preferred first: `MD5`,
    /// `SHA-256`. MD5 alone by default: many phones know only MD5, and some
    /// (baresip 1.0's libre, sipp) give up when any challenge names an
    /// algorithm they do not know, wherever it is listed.
    #[serde(default = "default_digest_algorithms")]
    pub digest_algorithms: Vec<String>,
    /// RFC 3261's 64×T1, in seconds: how long a transaction waits for a
    /// final response (Timers B, F) and keeps its state once complete, to
    /// answer retransmissions (Timers D, J, L, M). The RFC's 32 s make a
    /// call's transactions outlive it by half a minute; 8 s, like the
    /// 5 s a proxy such as Kamailio keeps them, is plenty on today's networks.
    #[serde(default = "default_transaction_timeout")]
    pub transaction_timeout_seconds: u64,
    /// A TCP connection on which nothing (no message, no keepalive) came
    /// for this long is closed. Phones that register over TCP keep their
    /// connection alive (RFC 5626 keepalives, or re-registering); 120 s,
    /// as Kamailio's `tcp_connection_lifetime`.
    #[serde(default = "default_tcp_idle")]
    pub tcp_idle_seconds: u64,
    /// At most this many TCP connections from one address at once; more
    /// are closed as they come (an office behind one NAT address counts
    /// one for each phone).
    #[serde(default = "default_tcp_per_source")]
    pub tcp_connections_per_source: usize,
    /// `ip:port` for SIP over TLS (RFC 3261 §26.2; 5061 by custom); none:
    /// no TLS. Needs `tls_cert` and `tls_key`.
    #[serde(default)]
    pub tls_listen: Option<SocketAddr>,
    /// The certificate chain TLS clients are shown (PEM).
    #[serde(default)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub tls_key: Option<std::path::PathBuf>,
    /// SRTP (RFC 3711, keys by SDES, RFC 4568, `AES_CM_128_HMAC_SHA1_80`):
    /// `"optional"` takes an encrypted offer or a plain one, and offers SRTP
    /// to phones reached over TLS; `"mandatory"` refuses plain audio (488)
    /// and offers SRTP to every phone; `"off"` refuses SRTP offers and never
    /// offers it. Trunks are offered plain RTP either way.
    #[serde(default = "default_srtp")]
    pub srtp: String,
}

fn default_srtp() -> String {
    "optional".into()
}

fn default_tcp_idle() -> u64 {
    120
}

fn default_tcp_per_source() -> usize {
    100
}

fn default_transaction_timeout() -> u64 {
    8
}

fn default_digest_algorithms() -> Vec<String> {
    vec!["MD5".into()]
}

fn default_sip_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5060))
}

fn default_rtp_timeout() -> u64 {
    30
}

fn default_nonce_lifetime() -> u64 {
    300
}

fn default_max_expires() -> u32 {
    3600
}

fn default_scanners() -> Vec<String> {
    [
        "friendly-scanner",
        "sipvicious",
        "sipcli",
        "sip-scan",
        "sundayddr",
        "vaxsipuseragent",
        "iwar",
    ]
    .into_iter()
    .map(str::to_string)
    .collect()
}

fn default_scanner_answer() -> String {
    "drop".into()
}

fn default_requests_per_source() -> u32 {
    200
}

fn default_auth_failures_per_account() -> u32 {
    30
}

fn default_auth_failures() -> u32 {
    10
}

impl Default for SipConfig {
    fn default() -> SipConfig {
        SipConfig {
            listen: default_sip_listen(),
            advertise: None,
            rtp_timeout_seconds: default_rtp_timeout(),
            nonce_lifetime_seconds: default_nonce_lifetime(),
            max_expires_seconds: default_max_expires(),
            auth_failures_per_minute: default_auth_failures(),
            auth_failures_per_account_per_minute: default_auth_failures_per_account(),
            requests_per_source_per_second: default_requests_per_source(),
            trusted_sources: Vec::new(),
            scanner_user_agents: default_scanners(),
            scanner_answer: default_scanner_answer(),
            digest_algorithms: default_digest_algorithms(),
            transaction_timeout_seconds: default_transaction_timeout(),
            tcp_idle_seconds: default_tcp_idle(),
            tcp_connections_per_source: default_tcp_per_source(),
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            srtp: default_srtp(),
        }
    }
}

/// `[http]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `ip:port` of the web side.
    #[serde(default = "default_http_listen")]
    pub listen: SocketAddr,
    /// Longest an `HTTPCall` may take, in seconds.
    #[serde(default = "default_http_timeout")]
    pub timeout_seconds: u64,
    /// With both, the web side speaks HTTPS: the certificate chain and
    /// its private key, PEM files.
    #[serde(default)]
    pub tls_cert: Option<std::path::PathBuf>,
    #[serde(default)]
    pub tls_key: Option<std::path::PathBuf>,
    /// Certificate authorities (PEM) trusted for `https://` URLs besides
    /// the system's: a company's own, or a test's.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Connections open at once from one address (more are closed as they
    /// come), and in all.
    #[serde(default = "default_http_per_source")]
    pub connections_per_source: usize,
    #[serde(default = "default_http_connections")]
    pub max_connections: usize,
    /// A request's headers (and a TLS handshake) must come within this
    /// many seconds, also between requests on a kept-alive connection.
    #[serde(default = "default_http_header_timeout")]
    pub header_timeout_seconds: u64,
    /// Requests a second from one address (0: no limit): past it, 429
    /// and the connection closed, new ones refused for that second.
    #[serde(default = "default_http_requests_per_source")]
    pub requests_per_source_per_second: u32,
}

fn default_http_requests_per_source() -> u32 {
    100
}

fn default_http_per_source() -> usize {
    32
}

fn default_http_connections() -> usize {
    1024
}

fn default_http_header_timeout() -> u64 {
    10
}

fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_http_timeout() -> u64 {
    30
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            listen: default_http_listen(),
            timeout_seconds: default_http_timeout(),
            connections_per_source: default_http_per_source(),
            max_connections: default_http_connections(),
            header_timeout_seconds: default_http_header_timeout(),
            requests_per_source_per_second: default_http_requests_per_source(),
            tls_cert: None,
            tls_key: None,
            ca_file: None,
        }
    }
}

/// `[smtp]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `host:port` of the relay that takes the mail scripts send.
    #[serde(default = "default_smtp_relay")]
    pub relay: String,
    /// Longest a delivery to the relay may take, in seconds.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_seconds: u64,
    /// `starttls`: the relay must take STARTTLS, and its certificate must
    /// be good for its name; `none` (the default): plain SMTP.
    #[serde(default)]
    pub tls: SmtpTls,
    /// Certificate authorities (PEM) trusted for the relay besides the
    /// system's.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// How often mail the relay could not take is tried again, in
    /// seconds (it is kept in `data_dir/mail-queue`).
    #[serde(default = "default_smtp_retry")]
    pub retry_seconds: u64,
}

fn default_smtp_retry() -> u64 {
    60
}

/// `smtp.tls`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    #[default]
    None,
    Starttls,
}

fn default_smtp_relay() -> String {
    "127.0.0.1:25".into()
}

fn default_smtp_timeout() -> u64 {
    10
}

impl Default for SmtpConfig {
    fn default() -> SmtpConfig {
        SmtpConfig {
            relay: default_smtp_relay(),
            timeout_seconds: default_smtp_timeout(),
            tls: SmtpTls::None,
            ca_file: None,
            retry_seconds: default_smtp_retry(),
        }
    }
}

/// `[clock]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    /// An RFC 3339 instant the server clock starts at (for tests and demos
    /// of time rules); the clock runs on from there.
    #[serde(default, deserialize_with = "instant")]
    pub start: Option<jiff::Timestamp>,
}

/// An RFC 3339 instant, written as a string or as a TOML date-time.
fn instant<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<jiff::Timestamp>, D::Error> {
    let value = toml::Value::deserialize(deserializer)?;
    let text = match &value {
        toml::Value::String(text) => text.clone(),
        toml::Value::Datetime(when) => when.to_string(),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected an RFC 3339 instant, not {}",
                other.type_str()
            )))
        }
    };
    text.parse::<jiff::Timestamp>().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not an RFC 3339 instant like 2026-11-23T10:00:00+03:00"
        ))
    })
}

fn pin<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match toml::Value::deserialize(deserializer)? {
        toml::Value::String(text) => Ok(Some(text)),
        toml::Value::Integer(number) if number >= 0 => Ok(Some(number.to_string())),
        other => Err(serde::de::Error::custom(format!(
            "expected a PIN like \"1234\", not {}",
            other.type_str()
        ))),
    }
}

/// `[environments]`: where programs and prompts are.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentsConfig {
    /// The stock environment shipped with pbxd.
    #[serde(default = "default_stock")]
    pub stock: PathBuf,
    /// The server-wide environment.
    #[serde(default = "default_server_env")]
    pub server: PathBuf,
    /// The folder holding one environment per domain, named after it.
    #[serde(default = "default_domains_env")]
    pub domains: PathBuf,
}

fn default_stock() -> PathBuf {
    PathBuf::from("stdlib-scripts")
}

fn default_server_env() -> PathBuf {
    PathBuf::from("environments/server")
}

fn default_domains_env() -> PathBuf {
    PathBuf::from("environments/domains")
}

impl Default for EnvironmentsConfig {
    fn default() -> EnvironmentsConfig {
        EnvironmentsConfig {
            stock: default_stock(),
            server: default_server_env(),
            domains: default_domains_env(),
        }
    }
}

/// `[cdr]`: call records.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdrConfig {
    /// Records older than this many days are deleted (0: kept for ever).
    #[serde(default = "default_keep_days")]
    pub keep_days: u32,
    /// Where each record is POSTed as JSON when its call ends (retried
    /// until it is taken; kept on disk meanwhile).
    #[serde(default)]
    pub webhook: Option<String>,
}

fn default_keep_days() -> u32 {
    90
}

impl Default for CdrConfig {
    fn default() -> CdrConfig {
        CdrConfig {
            keep_days: default_keep_days(),
            webhook: None,
        }
    }
}

/// `[server]`: server-wide settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The server's time zone (IANA name); accounts without one use it.
    #[serde(default = "default_zone")]
    pub time_zone: String,
}

fn default_zone() -> String {
    "UTC".into()
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            time_zone: default_zone(),
        }
    }
}

/// `[runtime]`: how the SIP stack and the script tasks use the machine.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Shards: threads that each run a share of the calls (their SIP
    /// dialogs and transactions, call legs and script tasks). Default: the
    /// number of cores.
    #[serde(default)]
    pub threads: Option<usize>,
}

impl RuntimeConfig {
    /// How many shards to run.
    pub fn shard_count(&self) -> usize {
        self.threads.unwrap_or_else(cores).max(1)
    }
}

/// `[media]`: the RTP engine.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaThreadsConfig {
    /// Media workers, each with its own 20 ms clock, sending and receiving
    /// the RTP of a share of the calls. Default: one per four cores, at
    /// least two. Admission keeps each worker below
    /// `limits.media_busy_percent` of its time, so one worker alone would
    /// cap the media at most of one core; an idle worker costs nothing (its
    /// clock stops).
    #[serde(default)]
    pub threads: Option<usize>,
}

impl MediaThreadsConfig {
    /// How many media workers to run.
    pub fn worker_count(&self) -> usize {
        self.threads.unwrap_or_else(|| cores().div_ceil(4).max(2)).max(1)
    }
}

/// The cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// `[limits]`: when new calls are refused (`503` with `Retry-After`) so
/// that the calls in progress keep their audio.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// The most calls at once (incoming call legs); none by default.
    #[serde(default)]
    pub max_calls: Option<usize>,
    /// New calls are refused while a media clock's lateness (99th
    /// percentile over the last second) is beyond this, in milliseconds.
    /// A worker that late is near what it can do; audio is lost only past
    /// 100 ms, where a worker gives up making up for lost time.
    #[serde(default = "default_media_lateness")]
    pub media_lateness_ms: u64,
    /// New calls are refused while a media worker spent more than this
    /// share of the last second sending and receiving, in per cent: the
    /// headroom its clock needs to stay on time when the host is busy.
    #[serde(default = "default_media_busy")]
    pub media_busy_percent: u8,
    /// New calls are refused while a shard's tasks wait longer than this
    /// to run (the most over the last second), in milliseconds.
    #[serde(default = "default_task_delay")]
    pub task_delay_ms: u64,
    /// What `Retry-After` says in a refusal for load, in seconds.
    #[serde(default = "default_retry_after")]
    pub retry_after_seconds: u32,
    /// Scripts' files (recordings, voicemail) are refused while fewer
    /// than this many megabytes would stay free on the data disk: the
    /// rest is for call records, registrations, logins and queued mail.
    #[serde(default = "default_disk_reserve")]
    pub disk_reserve_mb: u64,
    /// Wrong PINs in a row (`CheckAccountPIN`: voicemail) before the
    /// account's PIN checks are locked for `pin_lockout_minutes`; its own
    /// phones are never locked out.
    #[serde(default = "default_pin_attempts_per_account")]
    pub pin_attempts: u32,
    #[serde(default = "default_pin_lockout")]
    pub pin_lockout_minutes: u32,
}

fn default_media_busy() -> u8 {
    70
}

fn default_media_lateness() -> u64 {
    20
}

fn default_task_delay() -> u64 {
    100
}

fn default_retry_after() -> u32 {
    5
}

fn default_disk_reserve() -> u64 {
    100
}

fn default_pin_attempts_per_account() -> u32 {
    5
}

fn default_pin_lockout() -> u32 {
    15
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_calls: None,
            media_lateness_ms: default_media_lateness(),
            media_busy_percent: default_media_busy(),
            task_delay_ms: default_task_delay(),
            retry_after_seconds: default_retry_after(),
            disk_reserve_mb: default_disk_reserve(),
            pin_attempts: default_pin_attempts_per_account(),
            pin_lockout_minutes: default_pin_lockout(),
        }
    }
}

/// `[simulation]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationConfig {
    /// Phone (user part or number) → `answer after 3s`, `busy`, `never answer`.
    #[serde(default)]
    pub phones: BTreeMap<String, String>,
}

/// `[domains."example.com"]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// The domain's time zone; accounts without one use it.
    pub time_zone: Option<String>,
    /// The domain's default language.
    pub language: Option<String>,
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountConfig>,
    /// Classes of service accounts name, besides (or instead of) the
    /// built-in ones (`class::BUILT_IN_CLASSES`).
    #[serde(default)]
    pub classes: BTreeMap<String, ClassConfig>,
    /// What a phone of the domain dials → the app it starts for the
    /// calling account: `"*55" = "hotdesk"`. Only authenticated callers
    /// reach them.
    #[serde(default)]
    pub feature_codes: BTreeMap<String, String>,
    /// Host names and IP addresses of this server that mean this domain
    /// in a REGISTER or INVITE (a phone set up with the server's address
    /// as its domain).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Public numbers (a DID from a trunk, an alias) and feature codes
    /// (`*NN`, for the domain's phones), and where each leads.
    #[serde(default)]
    pub numbers: BTreeMap<String, NumberConfig>,
    /// Call queues (ACD), by name: `stdlib-scripts/queue.sppr` serves
    /// their callers, for the domain's `pbx` account.
    #[serde(default)]
    pub queues: BTreeMap<String, QueueConfig>,
}

/// `[log]`: how `pbxd serve` writes its log (to stderr; `RUST_LOG` says
/// what).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
}

/// A line of text per event, or a JSON object per line (for a log
/// collector).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[parlay]`: the Parlay X services (third-party call control).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParlayConfig {
    /// How long `parlayMakeCall` stays after its call ended, answering
    /// status reads.
    #[serde(default = "default_linger")]
    pub linger_seconds: u64,
    /// Whether users may register call notification, direction and call
    /// handling rules for their own accounts (domain administrators
    /// always may, for the domain's).
    #[serde(default = "default_true")]
    pub rules_allowed: bool,
}

fn default_true() -> bool {
    true
}

fn default_linger() -> u64 {
    30
}

impl Default for ParlayConfig {
    fn default() -> ParlayConfig {
        ParlayConfig {
            linger_seconds: default_linger(),
            rules_allowed: true,
        }
    }
}

/// `[hotdesk]`: virtual lines logged in on physical phones.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotDeskConfig {
    /// A phone that made or took no call for this many hours has its
    /// virtual lines logged out (0: never).
    #[serde(default = "default_idle_hours")]
    pub idle_hours: u64,
    /// Every line is logged out at this local time each day (`"03:00"`,
    /// the server's time zone; unset: never).
    pub logout_at: Option<String>,
    /// Wrong PINs in a row before a phone or line is locked out.
    #[serde(default = "default_pin_attempts")]
    pub pin_attempts: u32,
    /// How long a lock-out lasts.
    #[serde(default = "default_lockout_minutes")]
    pub lockout_minutes: u64,
}

fn default_idle_hours() -> u64 {
    12
}

fn default_pin_attempts() -> u32 {
    3
}

fn default_lockout_minutes() -> u64 {
    15
}

impl Default for HotDeskConfig {
    fn default() -> HotDeskConfig {
        HotDeskConfig {
            idle_hours: default_idle_hours(),
            logout_at: None,
            pin_attempts: default_pin_attempts(),
            lockout_minutes: default_lockout_minutes(),
        }
    }
}

impl HotDeskConfig {
    /// `logout_at` as a time of day.
    pub fn logout_time(&self) -> Result<Option<jiff::civil::Time>, String> {
        self.logout_at
            .as_deref()
            .map(|text| {
                text.parse::<jiff::civil::Time>()
                    .map_err(|_| format!("`{text}` is not a time of day like 03:00"))
            })
            .transpose()
    }
}

/// `[domains."example.com".classes.NAME]`: a class of service, by number
/// patterns (`*` any run of digits). A number is decided by the most
/// specific pattern that matches it, of this class or of the one it
/// extends; a number none matches by the scope.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassConfig {
    /// The class (built-in or the domain's) this one adds its patterns
    /// to; its own name means the built-in class of that name.
    pub extends: Option<String>,
    /// Without `extends`: the numbers allowed by their shape alone,
    /// `internal` (up to 5 digits, the default), `local`, `national` or
    /// `international`.
    pub scope: Option<crate::class::CallScope>,
    /// Numbers allowed: `["8*", "+7*"]`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Numbers refused: `["8809*"]`.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// `[domains."example.com".accounts.ivanov]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub password: Option<String>,
    /// Other names and extension numbers the account answers to.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Prompt language: a language folder name (`russian`); English if unset.
    pub language: Option<String>,
    pub time_zone: Option<String>,
    /// Weekly schedule: `Mon-Fri 09:00-18:00; Sat 10:00-14:00`.
    pub working_hours: Option<String>,
    /// Days off: `2026-12-31`.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Signal rules, in order.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// What the account may call: the name of a class of its domain
    /// (`national`), optionally with patterns of its own
    /// (`national; allow 8800*; deny 8809*`). Default: `internal`.
    pub class_of_service: Option<String>,
    pub caller_id: Option<String>,
    #[serde(default)]
    pub speed_dials: BTreeMap<String, String>,
    /// The virtual-phone (and mailbox) PIN. Digits may be written as a
    /// number (`--set ...pin=4321`) when they do not start with 0.
    #[serde(default, deserialize_with = "pin")]
    pub pin: Option<String>,
    /// A domain administrator acts for the domain's other accounts: their
    /// preferences, `Impersonate`, their calls over the API. The `pbx`
    /// account always may (CanImpersonate).
    #[serde(default)]
    pub domain_admin: bool,
    /// Whether callers who do not authenticate (a trunk, another server)
    /// may call the account and its apps. The `pbx` account is public
    /// unless it says `public = false`; others are not unless they say so.
    pub public: Option<bool>,
    /// Preferences scripts read with GetAccountPreferences.
    #[serde(default)]
    pub preferences: BTreeMap<String, toml::Value>,
}

/// One signal rule: `{ when = "after hours", then = "divert #callback" }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub when: String,
    pub then: String,
}

/// A configuration mistake, with where it is.
/// A store in `data_dir` that would not open: where it is, what it holds,
/// and how to recover (a damaged file is moved aside, and pbxd starts
/// with that store empty; or a backup is put back).
pub fn store_error(path: &Path, holds: &str, error: impl std::fmt::Display) -> ConfigError {
    let shown = path.display();
    ConfigError {
        location: shown.to_string(),
        message: format!(
            "cannot open {holds} ({error}). If the file is damaged, put back a backup of it, or move it \
             aside and start again with that store empty: mv {shown} {shown}.damaged"
        ),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ConfigError {
    /// `pbxd.toml:12` or `--set smtp.relay`.
    pub location: String,
    pub message: String,
}

impl Config {
    /// The embedded defaults (no file, no domains).
    pub fn empty() -> Config {
        Config::parse("", "built-in defaults", &[]).unwrap_or_else(|_| unreachable_defaults())
    }

    /// Reads `path` and applies `overrides` (`key=value`).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            location: path.display().to_string(),
            message: format!("cannot read the configuration: {error}"),
        })?;
        let mut config = Config::parse(&text, &path.display().to_string(), overrides)?;
        config.source = Some(path.to_path_buf());
        // Relative paths mean the file's own folder, wherever pbxd was
        // started (`pbxd serve --config /etc/pbxd/pbxd.toml` from `/`).
        if let Some(folder) = path.parent().filter(|folder| !folder.as_os_str().is_empty()) {
            config.resolve_paths(folder);
        }
        Ok(config)
    }

    /// Makes every relative path of the configuration relative to
    /// `folder` instead of the working folder.
    pub fn resolve_paths(&mut self, folder: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = folder.join(&*path);
            }
        };
        resolve(&mut self.data_dir);
        resolve(&mut self.environments.stock);
        resolve(&mut self.environments.server);
        resolve(&mut self.environments.domains);
        for path in [
            &mut self.http.tls_cert,
            &mut self.http.tls_key,
            &mut self.sip.tls_cert,
            &mut self.sip.tls_key,
            &mut self.http.ca_file,
            &mut self.smtp.ca_file,
        ]
        .into_iter()
        .flatten()
        {
            resolve(path);
        }
    }

    /// Parses `text` (shown as `name` in errors) and applies `overrides`.
    pub fn parse(text: &str, name: &str, overrides: &[String]) -> Result<Config, ConfigError> {
        // The file alone first, so that its mistakes carry their line.
        let from_file: Config = toml::from_str(text).map_err(|error: toml::de::Error| {
            let location = locate(name, text, error.span());
            let key = error.span().and_then(|span| key_on_line(text, span.start));
            ConfigError {
                location,
                message: match key {
                    Some(key) if !error.message().contains(&key) => format!("`{key}`: {}", error.message()),
                    _ => error.message().to_string(),
                },
            }
        })?;
        let config = if overrides.is_empty() {
            from_file
        } else {
            let mut table: toml::Table = text.parse().map_err(|error: toml::de::Error| ConfigError {
                location: locate(name, text, error.span()),
                message: error.message().to_string(),
            })?;
            for setting in overrides {
                apply_override(&mut table, setting)?;
            }
            Config::deserialize(toml::Value::Table(table)).map_err(|error| ConfigError {
                location: format!("--set {}", overrides.join(" --set ")),
                message: error.message().to_string(),
            })?
        };
        config.check(name, text)?;
        Ok(config)
    }

    /// Checks what serde cannot: zone names, schedules, rules.
    fn check(&self, name: &str, text: &str) -> Result<(), ConfigError> {
        let at = |key: &str| {
            line_of_key(text, key).map_or_else(|| name.to_string(), |line| format!("{name}:{line}"))
        };
        // Where a nested key is written, found by toml's spans (the first
        // line that mentions its last part may be another table's).
        let at_path = |path: &[&str]| {
            line_of_path(text, path).map_or_else(|| name.to_string(), |line| format!("{name}:{line}"))
        };
        let zone_ok = |zone: &str| jiff::tz::TimeZone::get(zone).is_ok();
        if !matches!(self.sip.scanner_answer.as_str(), "drop" | "403") {
            return Err(ConfigError {
                location: at("scanner_answer"),
                message: format!(
                    "sip.scanner_answer: `{}`; expected \"drop\" or \"403\"",
                    self.sip.scanner_answer
                ),
            });
        }
        for algorithm in &self.sip.digest_algorithms {
            if !algorithm.eq_ignore_ascii_case("MD5") && !algorithm.eq_ignore_ascii_case("SHA-256") {
                return Err(ConfigError {
                    location: at("digest_algorithms"),
                    message: format!("sip.digest_algorithms: `{algorithm}`; expected `MD5` or `SHA-256`"),
                });
            }
        }
        if !(1..=32).contains(&self.sip.transaction_timeout_seconds) {
            return Err(ConfigError {
                location: at("transaction_timeout_seconds"),
                message: "sip.transaction_timeout_seconds: expected 1 to 32 (RFC 3261's 64×T1)".into(),
            });
        }
        if self.sip.tcp_idle_seconds == 0 {
            return Err(ConfigError {
                location: at("tcp_idle_seconds"),
                message: "sip.tcp_idle_seconds: expected at least 1".into(),
            });
        }
        if !matches!(self.sip.srtp.as_str(), "optional" | "mandatory" | "off") {
            return Err(ConfigError {
                location: at_path(&["sip", "srtp"]),
                message: format!(
                    "sip.srtp: `{}`; expected \"optional\", \"mandatory\" or \"off\"",
                    self.sip.srtp
                ),
            });
        }
        match (&self.sip.tls_listen, &self.sip.tls_cert, &self.sip.tls_key) {
            (Some(_), Some(_), Some(_)) | (None, None, None) => {}
            (Some(_), _, _) => {
                return Err(ConfigError {
                    location: at_path(&["sip", "tls_listen"]),
                    message: "sip.tls_listen needs sip.tls_cert and sip.tls_key (PEM files)".into(),
                });
            }
            (None, _, _) => {
                let key = if self.sip.tls_cert.is_some() {
                    "tls_cert"
                } else {
                    "tls_key"
                };
                return Err(ConfigError {
                    location: at_path(&["sip", key]),
                    message: format!("sip.{key} is set but sip.tls_listen is not"),
                });
            }
        }
        if self.sip.tcp_connections_per_source == 0 {
            return Err(ConfigError {
                location: at("tcp_connections_per_source"),
                message: "sip.tcp_connections_per_source: expected at least 1".into(),
            });
        }
        if !(1..=100).contains(&self.limits.media_busy_percent) {
            return Err(ConfigError {
                location: at("media_busy_percent"),
                message: "limits.media_busy_percent: expected 1 to 100".into(),
            });
        }
        for (key, threads) in [
            ("runtime.threads", self.runtime.threads),
            ("media.threads", self.media.threads),
        ] {
            if threads.is_some_and(|threads| !(1..=1024).contains(&threads)) {
                return Err(ConfigError {
                    location: at("threads"),
                    message: format!("{key}: expected a number of threads from 1 to 1024"),
                });
            }
        }
        if !zone_ok(&self.server.time_zone) {
            return Err(ConfigError {
                location: at("time_zone"),
                message: format!(
                    "server.time_zone: unknown time zone `{}`; expected an IANA name such as `Europe/Moscow`",
                    self.server.time_zone
                ),
            });
        }
        for (phone, behaviour) in &self.simulation.phones {
            crate::sim::Phone::parse(behaviour).map_err(|problem| ConfigError {
                location: at(phone),
                message: format!("simulation.phones.{phone}: {problem}"),
            })?;
        }
        self.hotdesk.logout_time().map_err(|problem| ConfigError {
            location: at("logout_at"),
            message: format!("hotdesk.logout_at: {problem}"),
        })?;
        for (name, trunk) in &self.trunks {
            trunk.check().map_err(|problem| ConfigError {
                location: at(&format!("trunks.{name}")),
                message: format!("trunks.{name}.{problem}"),
            })?;
        }
        for (domain_name, domain) in &self.domains {
            for (code, app) in &domain.feature_codes {
                let valid = |text: &str, extra: &str| {
                    !text.is_empty()
                        && text
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
                };
                if !valid(code, "*#") || !valid(app, "_-") {
                    return Err(ConfigError {
                        location: at(code),
                        message: format!(
                            "domains.{domain_name}.feature_codes: `{code}` = `{app}`; expected a code of digits, * and # and an app's name"
                        ),
                    });
                }
            }
            for (number, entry) in &domain.numbers {
                let valid =
                    !number.is_empty() && number.chars().all(|c| c.is_ascii_digit() || "*#+".contains(c));
                let checked = if valid {
                    entry.check()
                } else {
                    Err("expected a number of digits (with *, # or a leading +)".into())
                };
                checked.map_err(|problem| ConfigError {
                    location: at(number),
                    message: format!("domains.{domain_name}.numbers.\"{number}\": {problem}"),
                })?;
            }
            for (name, queue) in &domain.queues {
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
                let checked = if valid {
                    queue.check()
                } else {
                    Err("expected a name of letters, digits, - and _".into())
                };
                checked.map_err(|problem| ConfigError {
                    location: at(name),
                    message: format!("domains.{domain_name}.queues.{name}: {problem}"),
                })?;
            }
            if let Some(zone) = domain.time_zone.as_deref().filter(|zone| !zone_ok(zone)) {
                return Err(ConfigError {
                    location: at("time_zone"),
                    message: format!("domains.{domain_name}.time_zone: unknown time zone `{zone}`"),
                });
            }
            let classes = crate::class::Classes::new(&domain.classes).map_err(|error| {
                let class = error.class.as_str();
                let path = ["domains", domain_name, "classes", class];
                ConfigError {
                    location: error
                        .key
                        .and_then(|key| line_of_path(text, &[&path[..], &[key]].concat()))
                        .map_or_else(|| at_path(&path), |line| format!("{name}:{line}")),
                    message: format!("domains.{domain_name}.{error}"),
                }
            })?;
            for (account_name, account) in &domain.accounts {
                let key = format!("domains.{domain_name}.accounts.{account_name}");
                if let Some(zone) = account.time_zone.as_deref().filter(|zone| !zone_ok(zone)) {
                    return Err(ConfigError {
                        location: at(account_name),
                        message: format!("{key}.time_zone: unknown time zone `{zone}`"),
                    });
                }
                if let Some(hours) = &account.working_hours {
                    crate::calendar::Schedule::parse(hours).map_err(|problem| ConfigError {
                        location: at("working_hours"),
                        message: format!("{key}.working_hours: {problem}"),
                    })?;
                }
                for day in &account.holidays {
                    day.parse::<jiff::civil::Date>().map_err(|_| ConfigError {
                        location: at("holidays"),
                        message: format!("{key}.holidays: `{day}` is not a date like 2026-12-31"),
                    })?;
                }
                for rule in &account.rules {
                    crate::rules::Rule::parse(&rule.when, &rule.then).map_err(|problem| ConfigError {
                        location: at("rules"),
                        message: format!("{key}.rules: {problem}"),
                    })?;
                }
                if let Some(class) = &account.class_of_service {
                    classes.parse(class).map_err(|problem| ConfigError {
                        location: at_path(&[
                            "domains",
                            domain_name,
                            "accounts",
                            account_name,
                            "class_of_service",
                        ]),
                        message: format!("{key}.class_of_service: {problem}"),
                    })?;
                }
            }
        }
        Ok(())
    }
}

fn unreachable_defaults() -> Config {
    Config {
        data_dir: default_data_dir(),
        sip: SipConfig::default(),
        http: HttpConfig::default(),
        smtp: SmtpConfig::default(),
        clock: ClockConfig::default(),
        environments: EnvironmentsConfig::default(),
        server: ServerConfig::default(),
        cdr: CdrConfig::default(),
        runtime: RuntimeConfig::default(),
        media: MediaThreadsConfig::default(),
        limits: LimitsConfig::default(),
        domains: BTreeMap::new(),
        simulation: SimulationConfig::default(),
        trunks: BTreeMap::new(),
        hotdesk: HotDeskConfig::default(),
        parlay: ParlayConfig::default(),
        log: LogConfig::default(),
        source: None,
    }
}

/// `key=value`: the value is read as TOML when it is valid TOML (numbers,
/// booleans, arrays, quoted strings) and as a plain string otherwise.
fn apply_override(table: &mut toml::Table, setting: &str) -> Result<(), ConfigError> {
    let Some((key, raw)) = setting.split_once('=') else {
        return Err(ConfigError {
            location: format!("--set {setting}"),
            message: "expected key=value".into(),
        });
    };
    let key = key.trim();
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut parsed| parsed.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let path = split_key(key);
    if path.is_empty() || path.iter().any(String::is_empty) {
        return Err(ConfigError {
            location: format!("--set {key}"),
            message: "empty key".into(),
        });
    }
    let mut current = table;
    for part in &path[..path.len() - 1] {
        let entry = current
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(inner) => inner,
            _ => {
                return Err(ConfigError {
                    location: format!("--set {key}"),
                    message: format!("`{part}` is not a table"),
                })
            }
        };
    }
    current.insert(path[path.len() - 1].clone(), value);
    Ok(())
}

/// Splits `a.b."c.d".e` into its parts.
fn split_key(key: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for character in key.chars() {
        match character {
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    parts.push(current);
    parts
}

/// `name:line` of a byte span.
fn locate(name: &str, text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{name}:{line}")
        }
        None => name.to_string(),
    }
}

/// The whole key (`smtp.relay`) assigned on the line holding byte `offset`:
/// the table the line is in, then the key the line assigns.
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let start = text.get(..offset)?.rfind('\n').map_or(0, |newline| newline + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let table = text[..start].lines().rev().find_map(|line| {
        let line = line.trim();
        let inner = line.strip_prefix('[')?.split(']').next()?;
        Some(inner.trim_start_matches('[').trim().to_string())
    });
    Some(match table {
        Some(table) if !table.is_empty() => format!("{table}.{key}"),
        _ => key.to_string(),
    })
}

/// The line where the key at `path` (its tables' names, then its own) is
/// written, from toml's spans; `None` when the file does not have it (a
/// `--set`).
fn line_of_path(text: &str, path: &[&str]) -> Option<usize> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let (last, tables) = path.split_last()?;
    let mut table = document.get_ref();
    for part in tables {
        let (_, value) = table.iter().find(|(key, _)| key.get_ref() == part)?;
        table = value.get_ref().as_table()?;
    }
    let (key, _) = table.iter().find(|(key, _)| key.get_ref() == last)?;
    let offset = key.span().start.min(text.len());
    Some(text[..offset].matches('\n').count() + 1)
}

/// The first line where `key` is assigned or names a table.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let bare = line.trim_start_matches('[').trim_start_matches('"');
            (line.starts_with(key) && line[key.len()..].trim_start().starts_with('='))
                || (line.starts_with('[') && line.contains(key))
                || (bare.starts_with(key) && line.starts_with('['))
        })
        .map(|index| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_the_files_folders() {
        let folder = std::env::temp_dir().join(format!("pbxd-config-paths-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let file = folder.join("pbxd.toml");
        std::fs::write(
            &file,
            "data_dir = \"state\"\n[environments]\nstock = \"/opt/pbxd/stock\"\n[http]\ntls_cert = \"tls/cert.pem\"\n",
        )
        .unwrap();
        let config = Config::load(&file, &["smtp.ca_file=ca.pem".into()]).unwrap();
        assert_eq!(config.data_dir, folder.join("state"));
        assert_eq!(config.environments.stock, PathBuf::from("/opt/pbxd/stock"));
        assert_eq!(config.environments.server, folder.join("environments/server"));
        assert_eq!(config.http.tls_cert, Some(folder.join("tls/cert.pem")));
        assert_eq!(config.http.tls_key, None);
        assert_eq!(config.smtp.ca_file, Some(folder.join("ca.pem")));
        let _ = std::fs::remove_dir_all(&folder);
    }

    #[test]
    fn overrides_set_nested_keys_and_values() {
        let config = Config::parse(
            "[smtp]\nrelay = \"mail:25\"\n",
            "t.toml",
            &[
                "smtp.relay=127.0.0.1:2525".into(),
                "sip.listen=127.0.0.1:5070".into(),
            ],
        )
        .unwrap();
        assert_eq!(config.smtp.relay, "127.0.0.1:2525");
        assert_eq!(config.sip.listen.port(), 5070);
    }

    #[test]
    fn unknown_keys_name_their_line() {
        let error = Config::parse("data_dir = \"x\"\n[smtp]\nrealy = \"a\"\n", "t.toml", &[]).unwrap_err();
        assert_eq!(error.location, "t.toml:3");
        assert!(
            error.message.starts_with("`smtp.realy`: unknown field"),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("expected one of `relay`"),
            "{}",
            error.message
        );
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let error = Config::parse("[sip]\nlisten = \"nowhere\"\n", "t.toml", &[]).unwrap_err();
        assert_eq!(error.location, "t.toml:2");
        assert!(error.message.starts_with("`sip.listen`: "), "{}", error.message);
        let error = Config::parse("", "t.toml", &["clock.start=yesterday".into()]).unwrap_err();
        assert_eq!(error.location, "--set clock.start=yesterday");
        let error = Config::parse("", "t.toml", &["nonsense".into()]).unwrap_err();
        assert_eq!(error.message, "expected key=value");
    }

    #[test]
    fn tls_and_srtp_keys_are_checked_with_their_line() {
        let error = Config::parse(
            "[sip]\nlisten = \"127.0.0.1:5060\"\nsrtp = \"sometimes\"\n",
            "t.toml",
            &[],
        )
        .unwrap_err();
        assert_eq!(error.location, "t.toml:3");
        assert!(
            error.message.contains("\"optional\", \"mandatory\" or \"off\""),
            "{}",
            error.message
        );
        let error = Config::parse("[sip]\ntls_listen = \"127.0.0.1:5061\"\n", "t.toml", &[]).unwrap_err();
        assert_eq!(error.location, "t.toml:2");
        assert!(
            error.message.contains("needs sip.tls_cert and sip.tls_key"),
            "{}",
            error.message
        );
        let error = Config::parse("[sip]\n\ntls_key = \"k.pem\"\n", "t.toml", &[]).unwrap_err();
        assert_eq!(error.location, "t.toml:3");
        let text = "[sip]\ntls_listen = \"127.0.0.1:5061\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\nsrtp = \"mandatory\"\n";
        let config = Config::parse(text, "t.toml", &[]).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(config.sip.srtp, "mandatory");
        assert_eq!(
            Config::parse("", "t.toml", &[])
                .map(|config| config.sip.srtp)
                .ok()
                .as_deref(),
            Some("optional")
        );
    }

    #[test]
    fn classes_of_service_named_or_defined_wrong_name_their_line() {
        let text = "[domains.\"example.com\".classes.sales]\nallow = [\"8*\"]\n\
                    [domains.\"example.com\".accounts.ivanov]\nclass_of_service = \"sales\"\n\
                    [domains.\"example.com\".accounts.petrov]\naliases = [\"202\"]\nclass_of_service = \"galactic\"\n";
        let error = Config::parse(text, "t.toml", &[]).unwrap_err();
        // Not line 4, the first `class_of_service`: petrov's own.
        assert_eq!(error.location, "t.toml:7");
        assert!(
            error.message.starts_with(
                "domains.example.com.accounts.petrov.class_of_service: there is no class `galactic`"
            ),
            "{}",
            error.message
        );
        let text = "[domains.\"example.com\".classes.sales]\nallow = [\"8*\"]\n\
                    [domains.\"example.com\".classes.managers]\nallow = [\"+*\"]\nextends = \"salse\"\n";
        let error = Config::parse(text, "t.toml", &[]).unwrap_err();
        assert_eq!(error.location, "t.toml:5");
        assert!(
            error.message.starts_with(
                "domains.example.com.classes.managers: `managers` extends `salse`, which is not a class"
            ),
            "{}",
            error.message
        );
        let error =
            Config::parse("[domains.d.classes.a]\nscope = \"galactic\"\n", "t.toml", &[]).unwrap_err();
        assert_eq!(error.location, "t.toml:2");
    }
}
