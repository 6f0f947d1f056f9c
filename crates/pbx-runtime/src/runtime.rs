//! The runtime: configuration, accounts, environments, running tasks and the
//! services they use, shared by every task (`Runtime` is a cheap handle).

use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use pbx_lang::bytecode::Program;
use pbx_lang::value::time::Clock;
use pbx_lang::value::{Portable, Seconds, TaskId};
use pbx_lang::Limits;

use crate::address::{self, Destination};
use crate::call::{Device, IncomingCall, Leg, LegCommand, Network, Status, Target};
use crate::cdr::CallRecords;
use crate::class;
use crate::config::{Config, ConfigError};
use crate::directory::{Account, Directory};
use crate::env::{Environments, ProgramError};
use crate::hotdesk::HotDesk;
use crate::observe::{Event, Observer};
use crate::parlay::{Criterion, Decision, Mode, Verdict};
use crate::ring::{self, Ringing};
use crate::rules::{self, Action, CallFacts, Plan};
use crate::store::{Meetings, Queues, Storage};
use crate::task::{self, Registry, Start};

/// The server clock: starts at `clock.start` (or the system time) and runs
/// with tokio's clock, so a simulation in virtual time moves it too.
#[derive(Debug)]
pub struct RuntimeClock {
    start_seconds: Seconds,
    start_instant: tokio::time::Instant,
}

impl RuntimeClock {
    /// A clock reading `start` (or now) at this instant.
    pub fn new(start: Option<jiff::Timestamp>) -> RuntimeClock {
        RuntimeClock {
            start_seconds: start.unwrap_or_else(jiff::Timestamp::now).as_second(),
            start_instant: tokio::time::Instant::now(),
        }
    }
}

impl RuntimeClock {
    /// When the clock started, in seconds.
    pub fn start_seconds(&self) -> Seconds {
        self.start_seconds
    }
}

impl Clock for RuntimeClock {
    fn now(&self) -> Seconds {
        self.start_seconds + self.start_instant.elapsed().as_secs() as i64
    }
}

/// What every task shares.
pub struct Shared {
    pub config: Config,
    pub directory: Arc<Directory>,
    /// Virtual lines logged in on phones (`data_dir/hotdesk.redb`).
    pub hotdesk: Arc<HotDesk>,
    pub environments: Arc<Environments>,
    pub registry: Registry,
    /// Call records (`data_dir/cdr.redb`; in memory in virtual time).
    pub records: Arc<CallRecords>,
    pub observer: Arc<dyn Observer>,
    pub network: Arc<dyn Network>,
    pub clock: Arc<RuntimeClock>,
    /// Where SMTP and HTTP run: a real-time executor even when tasks run in
    /// a simulation's virtual time.
    pub io: tokio::runtime::Handle,
    /// Whether tasks run in virtual time (a paused tokio clock). Then the
    /// simulation stands still while real network I/O happens.
    pub virtual_time: bool,
    pub http: reqwest::Client,
    pub server_zone: TimeZone,
    pub limits: Limits,
    /// Each account's files (`data_dir/storage.redb`; in memory in
    /// virtual time).
    pub storage: Storage,
    /// Meetings (CGPL §6.11), in memory.
    pub meetings: Meetings,
    /// Wrong PINs per account (`CheckAccountPIN`) and their lock-outs.
    pub pins: crate::pins::PinGuard,
    /// Programs suspended for running into limits again and again.
    pub breaker: crate::breaker::Breaker,
    /// Task queues (`Enqueue`, `ReadQueue`), by account.
    pub queues: Queues,
    /// What each call queue's dispatcher last said of its agents.
    pub queue_agents: crate::acd::AgentBoard,
    /// Parlay X watches and call handling rules, kept in the store.
    pub parlay: crate::parlay::ParlayRules,
    /// Mail the relay could not take for now, kept on disk and sent again
    /// (`data_dir/mail-queue`; none in virtual time).
    pub mail_queue: Option<Arc<crate::mail_queue::MailQueue>>,
    /// Prompt files decoded, once per version of each.
    pub prompts: pbx_media::prompt::PromptCache,
}

/// The name the Parlay X rules are kept under.
const PARLAY_RULES: &str = "parlay_rules";

/// A handle on the runtime.
#[derive(Clone)]
pub struct Runtime(Arc<Shared>);

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("tasks", &self.0.registry.count())
            .finish()
    }
}

impl std::ops::Deref for Runtime {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Why a call or app could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Address(#[from] address::AddressError),
    #[error(transparent)]
    Program(#[from] ProgramError),
    #[error("program `{0}` has no entry `{1}`")]
    NoEntry(String, String),
}

impl StartError {
    /// The SIP response a caller gets.
    pub fn status(&self) -> Status {
        match self {
            StartError::Address(_) => Status::NOT_FOUND,
            StartError::Program(ProgramError::Missing(_) | ProgramError::Refused(_)) => Status::NOT_FOUND,
            _ => Status::SERVER_INTERNAL_ERROR,
        }
    }
}

impl Runtime {
    /// A reference that does not keep the runtime alive (for its timers).
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Shared> {
        Arc::downgrade(&self.0)
    }

    /// A runtime for `config` and its accounts, placing calls on `network`,
    /// reporting to `observer`, doing network I/O on `io`. Built by
    /// `server::Server::start`.
    pub(crate) fn new(
        config: Config,
        directory: Arc<Directory>,
        hotdesk: Arc<HotDesk>,
        network: Arc<dyn Network>,
        observer: Arc<dyn Observer>,
        io: tokio::runtime::Handle,
        virtual_time: bool,
    ) -> Result<Runtime, ConfigError> {
        let server_zone = TimeZone::get(&config.server.time_zone).map_err(|error| ConfigError {
            location: "server.time_zone".into(),
            message: error.to_string(),
        })?;
        let environments = Arc::new(Environments::new(
            config.environments.stock.clone(),
            config.environments.server.clone(),
            config.environments.domains.clone(),
            observer.clone(),
        ));
        let clock = Arc::new(RuntimeClock::new(config.clock.start));
        let tls =
            crate::tls::client_config(config.http.ca_file.as_deref()).map_err(|message| ConfigError {
                location: "http.ca_file".into(),
                message,
            })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.http.timeout_seconds))
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|error| ConfigError {
                location: "http".into(),
                message: error.to_string(),
            })?;
        let storage_path = config.data_dir.join("storage.redb");
        let storage = if virtual_time {
            Storage::in_memory()
        } else {
            Storage::open(&storage_path)
                .map(|storage| storage.with_reserve(config.limits.disk_reserve_mb.saturating_mul(1_000_000)))
        }
        .map_err(|error| {
            crate::config::store_error(
                &storage_path,
                "the scripts' files, kept preferences and PINs, balances and Parlay X rules",
                error,
            )
        })?;
        let records_path = config.data_dir.join("cdr.redb");
        let records = if virtual_time {
            CallRecords::in_memory()
        } else {
            CallRecords::open(&records_path, config.cdr.keep_days)
        }
        .map_err(|error| crate::config::store_error(&records_path, "the call records", error))?;
        records.start_hooks(http.clone(), &io);
        if let (Some(url), false) = (&config.cdr.webhook, virtual_time) {
            records.start_webhook(url.clone(), http.clone(), &io);
        }
        // Preferences scripts set before a restart.
        for (address, key, value) in storage.kept_preferences().map_err(|error| ConfigError {
            location: "data_dir".into(),
            message: error.to_string(),
        })? {
            let found = address
                .split_once('@')
                .and_then(|(name, domain)| directory.find(name, domain));
            if let Some(account) = found {
                account.set_preference(&key, value);
            }
        }
        let kept_pins = storage.kept_pins().map_err(|error| ConfigError {
            location: "data_dir".into(),
            message: error.to_string(),
        })?;
        for (address, pin) in kept_pins {
            let found = address
                .split_once('@')
                .and_then(|(name, domain)| directory.find(name, domain));
            if let Some(account) = found {
                account.set_pin(&pin);
            }
        }
        let parlay_kept = storage.kept_setting(PARLAY_RULES).map_err(|error| ConfigError {
            location: "data_dir".into(),
            message: error.to_string(),
        })?;
        let parlay = crate::parlay::ParlayRules::from_kept(parlay_kept.as_deref());
        let mail_queue = (!virtual_time).then(|| {
            let queue = Arc::new(crate::mail_queue::MailQueue::new(
                config.data_dir.join("mail-queue"),
            ));
            queue.start(
                crate::mail::Relay::of(&config.smtp),
                Duration::from_secs(config.smtp.retry_seconds.max(1)),
                &io,
            );
            queue
        });
        let registry = Registry::new(config.runtime.shard_count());
        let pins = crate::pins::PinGuard::new(config.limits.pin_attempts, config.limits.pin_lockout_minutes);
        Ok(Runtime(Arc::new(Shared {
            records,
            config,
            directory,
            hotdesk,
            environments,
            registry,
            observer,
            network,
            clock,
            io,
            virtual_time,
            http,
            server_zone,
            limits: Limits::default(),
            storage,
            meetings: Meetings::default(),
            pins,
            breaker: crate::breaker::Breaker::default(),
            queues: Queues::default(),
            queue_agents: crate::acd::AgentBoard::default(),
            parlay,
            mail_queue,
            prompts: pbx_media::prompt::PromptCache::default(),
        })))
    }

    /// Runs `work` (network I/O) on the I/O executor and returns its result.
    /// In virtual time the calling thread waits for it without letting the
    /// simulation's clock move.
    pub async fn io<F>(&self, work: F) -> Option<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.virtual_time {
            let (sender, receiver) = std::sync::mpsc::channel();
            self.io.spawn(async move {
                let _ = sender.send(work.await);
            });
            receiver.recv().ok()
        } else {
            self.io.spawn(work).await.ok()
        }
    }

    /// Starts app `app` on behalf of `account`, with `leg` (a call) and
    /// start parameters. Must be called on a tokio `LocalSet`.
    pub fn start_app(
        &self,
        app: &str,
        account: Arc<Account>,
        leg: Option<Leg>,
        parameters: Vec<Portable>,
    ) -> Result<TaskId, StartError> {
        let failed = Status::with_reason(500, "Failed to load the application");
        self.start_app_or(app, account, leg, parameters, failed)
    }

    /// As `start_app`; a call the app cannot take (no program, or one that
    /// does not compile) is refused with `failed`.
    fn start_app_or(
        &self,
        app: &str,
        account: Arc<Account>,
        leg: Option<Leg>,
        parameters: Vec<Portable>,
        failed: Status,
    ) -> Result<TaskId, StartError> {
        let (program, shown) = match self.environments.program(&account.domain, app) {
            Ok(found) => found,
            Err(error) => {
                if let ProgramError::Compile {
                    diagnostics, file, ..
                } = &error
                {
                    self.observer.event(Event::ProgramProblem {
                        file: file.clone(),
                        text: crate::env::one_per_line(diagnostics),
                    });
                }
                if let Some(leg) = &leg {
                    leg.send(LegCommand::Reject { status: failed });
                }
                return Err(error.into());
            }
        };
        self.start_program(program, shown, "Main", account, leg, parameters)
    }

    /// Starts entry `entry` of a compiled program on behalf of `account`.
    /// Must be called on a tokio `LocalSet`.
    pub fn start_program(
        &self,
        program: Arc<Program>,
        shown: String,
        entry: &str,
        account: Arc<Account>,
        leg: Option<Leg>,
        parameters: Vec<Portable>,
    ) -> Result<TaskId, StartError> {
        let Some(entry) = program.entry(entry) else {
            if let Some(leg) = &leg {
                leg.send(LegCommand::Reject {
                    status: Status::with_reason(500, "Failed to load the application"),
                });
            }
            return Err(StartError::NoEntry(shown, entry.to_string()));
        };
        let parameters = if parameters.is_empty() {
            Portable::Null
        } else {
            Portable::Array(parameters)
        };
        Ok(task::start(
            self,
            Start {
                program,
                shown,
                entry,
                account,
                leg,
                parameters,
            },
        ))
    }

    /// A call arrived: starts the task addressing chose, or applies the
    /// account's rules. Must be called on a shard (a `LocalSet`).
    pub fn incoming_call(&self, call: IncomingCall) -> Result<Routed, StartError> {
        if call.leg.trace().is_none() {
            call.leg
                .set_trace(Some(self.records.begin(&call.leg.info, false)));
        }
        self.route(call.leg, call.destination, 0)
    }

    /// A call arrived for `target` (an address, as dialled): resolves it,
    /// then as `incoming_call`. For callers that have not resolved it
    /// (the simulator, `pbxd run`).
    pub fn call_address(&self, leg: Leg, target: &str) -> Result<Routed, StartError> {
        match address::resolve(&self.directory, target, None, None) {
            Ok(destination) => self.route(leg, destination, 0),
            Err(error) => {
                leg.send(LegCommand::Reject {
                    status: Status::NOT_FOUND,
                });
                Err(error.into())
            }
        }
    }

    /// Takes the calls a network hands this shard, until it stops.
    pub async fn take_calls(&self, mut calls: tokio::sync::mpsc::UnboundedReceiver<IncomingCall>) {
        while let Some(call) = calls.recv().await {
            let shown = call.leg.info.request_uri.clone();
            match self.incoming_call(call) {
                Ok(routed) => tracing::debug!(?routed, to = %shown, "incoming call"),
                Err(error) => tracing::info!(to = %shown, "incoming call refused: {error}"),
            }
        }
    }

    pub(crate) fn route(&self, leg: Leg, destination: Destination, depth: u8) -> Result<Routed, StartError> {
        match destination {
            // The program learns the name it was called by (`pbx.sppr`
            // acts on it: `conference` is the conference center).
            Destination::App {
                app,
                account,
                called_as,
            } => {
                if let Some(trace) = leg.trace() {
                    self.records.involve(trace.record(), &account.address());
                }
                // A call its class of service refused (`class::screen`)
                // gets 403 where the refusal cannot be played.
                let failed = if app.eq_ignore_ascii_case(class::NOT_ALLOWED_APP) {
                    Status::with_reason(403, "Not Allowed by the Class of Service")
                } else {
                    Status::with_reason(500, "Failed to load the application")
                };
                self.start_app_or(&app, account, Some(leg), vec![Portable::str(&called_as)], failed)
                    .map(Routed::Task)
            }
            Destination::Account { account, .. } if depth < 8 => {
                if let Some(trace) = leg.trace() {
                    self.records.involve(trace.record(), &account.address());
                }
                self.call_account(leg, account, depth)
            }
            // Loop protection: too many diverts in a row.
            Destination::Account { .. } => Ok(reject(leg, Status::LOOP_DETECTED)),
            Destination::Outside(number) => {
                // A number beyond the server: the network (a trunk) carries
                // it. Whoever may call out was checked where the call came
                // in (the SIP side authenticates and applies the class of
                // service); the number is shown the caller's caller ID.
                let caller = leg.info.settings().cloned();
                self.observer.event(Event::Routing {
                    what: format!("to {number}: out through the network"),
                });
                let plan = Ringing {
                    from: caller
                        .as_ref()
                        .map(|account| account.caller_id.clone().unwrap_or_else(|| account.address())),
                    account: caller,
                    targets: vec![Target::outside(&number)],
                    no_answer: None,
                    busy: None,
                    depth,
                };
                ring::start(self, leg, plan);
                Ok(Routed::Ringing)
            }
        }
    }

    /// Where `account` can be called now: its registered devices, and the
    /// phones it is logged in on as a virtual line (hot desk), which are
    /// shown the line called.
    pub fn devices(&self, account: &Account) -> Vec<Device> {
        let mut devices = self.network.devices(account);
        let now = self.clock.now();
        // A phone with lines logged in on it takes a call: it is not idle.
        self.hotdesk.touch(&account.address(), now);
        for phone in self.hotdesk.phones_of(&account.address()) {
            let Some(phone_account) = phone
                .split_once('@')
                .and_then(|(name, domain)| self.directory.find(name, domain))
            else {
                continue;
            };
            self.hotdesk.touch(&phone, now);
            devices.extend(
                self.network
                    .devices(&phone_account)
                    .into_iter()
                    .map(|device| Device {
                        account: account.address(),
                        via: Some(phone.clone()),
                        ..device
                    }),
            );
        }
        devices
    }

    /// Applies `account`'s rules to a call.
    fn call_account(&self, leg: Leg, account: Arc<Account>, depth: u8) -> Result<Routed, StartError> {
        let who = account.address();
        // Parlay X call handling first: callers blocked, or not on the
        // accept list, are refused; a forward list takes every call.
        if let Some(handling) = self.parlay.handling(&who) {
            match handling.verdict(&leg.info.remote_uri) {
                Verdict::Refuse(why) => {
                    self.observer.event(Event::Routing {
                        what: format!("to {who}: the caller is {why} (Parlay X call handling)"),
                    });
                    return Ok(reject(leg, Status::DECLINE));
                }
                Verdict::Forward(targets) => {
                    let action = Action::Divert(targets);
                    self.observer.event(Event::Routing {
                        what: format!("to {who}: {action} (Parlay X call handling)"),
                    });
                    return self.act(leg, Some(account), action, depth);
                }
                Verdict::Pass => {}
            }
        }
        // A Parlay X client watching every call to the account is told
        // (or asked, and its answer decides) before anything else.
        if !self.parlay.watches(&who, Criterion::CalledNumber).is_empty() {
            self.directed(
                leg,
                account,
                depth,
                Criterion::CalledNumber,
                |runtime, leg, account, depth| runtime.call_account_by_rules(leg, account, depth, Vec::new()),
            );
            return Ok(Routed::Ringing);
        }
        self.call_account_by_rules(leg, account, depth, Vec::new())
    }

    /// Tells the Parlay X clients watching `account` for `criterion` of
    /// the call on `leg`, and does what a direction client answers:
    /// `Continue` is `go_on`; `EndCall` refuses the call (603); `Route`
    /// diverts it; `Fork` adds the addresses to those `go_on` rings (or,
    /// where nothing rings any more, rings them). The call counts as being
    /// routed meanwhile.
    pub(crate) fn directed(
        &self,
        leg: Leg,
        account: Arc<Account>,
        depth: u8,
        criterion: Criterion,
        go_on: impl FnOnce(&Runtime, Leg, Arc<Account>, u8) -> Result<Routed, StartError> + 'static,
    ) {
        self.registry.start_routing();
        let runtime = self.clone();
        tokio::task::spawn_local(async move {
            let who = account.address();
            let caller = leg.info.remote_uri.clone();
            let decision = runtime.parlay_event(&who, criterion, &caller).await;
            let routed = match decision {
                Decision::Continue => go_on(&runtime, leg, account, depth),
                Decision::EndCall => Ok(reject(leg, Status::DECLINE)),
                Decision::Route(targets) => runtime.act(leg, Some(account), Action::Divert(targets), depth),
                Decision::Fork(targets) if criterion == Criterion::CalledNumber => {
                    runtime.call_account_by_rules(leg, account, depth, targets)
                }
                Decision::Fork(targets) => runtime.act(leg, Some(account), Action::Fork(targets), depth),
            };
            if let Err(error) = routed {
                runtime.observer.event(Event::Routing {
                    what: format!("to {who}: {error}"),
                });
            }
            runtime.registry.end_routing();
        });
    }

    /// Tells the Parlay X notification clients watching `account` (an
    /// address) for `criterion` of a call from `calling` (without waiting
    /// for them), and asks its direction client what to do: `Continue`
    /// when there is none, or it fails or does not answer in time.
    pub(crate) async fn parlay_event(&self, account: &str, criterion: Criterion, calling: &str) -> Decision {
        let called = format!("sip:{account}");
        let mut decision = Decision::Continue;
        let mut asked = false;
        for watch in self.parlay.watches(account, criterion) {
            let body = crate::parlay::message(&watch, calling, &called);
            let request = self
                .http
                .post(&watch.endpoint)
                .header("Content-Type", "text/xml; charset=utf-8")
                .header("SOAPAction", "\"\"")
                .timeout(crate::parlay::DIRECTION_TIMEOUT)
                .body(body);
            let what = format!(
                "to {account}: Parlay X {} to {}",
                criterion.name(),
                watch.endpoint
            );
            match watch.mode {
                Mode::Notification => {
                    let observer = self.observer.clone();
                    self.io.spawn(async move {
                        let failed = match request.send().await {
                            Ok(response) if response.status().is_success() => None,
                            Ok(response) => Some(response.status().to_string()),
                            Err(error) => Some(error.to_string()),
                        };
                        let what = match failed {
                            None => format!("{what}: notified"),
                            Some(why) => format!("{what}: not notified ({why})"),
                        };
                        observer.event(Event::Routing { what });
                    });
                }
                Mode::Direction if !asked => {
                    asked = true;
                    let answer = self
                        .io(async move {
                            let response = request.send().await.map_err(|error| error.to_string())?;
                            response.bytes().await.map_err(|error| error.to_string())
                        })
                        .await
                        .unwrap_or_else(|| Err("pbxd is stopping".into()));
                    decision = match answer.and_then(|body| crate::parlay::decision(&body)) {
                        Ok(decision) => {
                            self.observer.event(Event::Routing {
                                what: format!("{what}: {decision}"),
                            });
                            decision
                        }
                        Err(why) => {
                            self.observer.event(Event::Routing {
                                what: format!("{what}: no answer ({why}); the call goes on"),
                            });
                            Decision::Continue
                        }
                    };
                }
                Mode::Direction => {}
            }
        }
        decision
    }

    /// Keeps the Parlay X rules after a change (`text`: all of them).
    pub fn keep_parlay_rules(&self, text: &str) {
        if let Err(error) = self.storage.keep_setting(PARLAY_RULES, text) {
            tracing::error!(%error, "the Parlay X rules were not kept");
        }
    }

    /// A call to `account` as its own settings and rules route it, with
    /// `extra` addresses ringing beside its phones (a Parlay X `Fork`).
    /// An account with no phone to ring is "not reachable" for a Parlay X
    /// client watching it, told (or asked) before its rules act.
    fn call_account_by_rules(
        &self,
        leg: Leg,
        account: Arc<Account>,
        depth: u8,
        extra: Vec<String>,
    ) -> Result<Routed, StartError> {
        let who = account.address();
        let watched = !self.parlay.watches(&who, Criterion::NotReachable).is_empty();
        if watched && extra.is_empty() && self.devices(&account).is_empty() {
            self.directed(
                leg,
                account,
                depth,
                Criterion::NotReachable,
                |runtime, leg, account, depth| runtime.call_account_planned(leg, account, depth, Vec::new()),
            );
            return Ok(Routed::Ringing);
        }
        self.call_account_planned(leg, account, depth, extra)
    }

    /// As `call_account_by_rules`, the Parlay X clients told.
    fn call_account_planned(
        &self,
        leg: Leg,
        account: Arc<Account>,
        depth: u8,
        extra: Vec<String>,
    ) -> Result<Routed, StartError> {
        let now = jiff::Timestamp::from_second(self.clock.now()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let working = account.working_hours.as_ref().map(|hours| hours.is_working(now));
        let caller = leg.info.remote_uri.clone();
        let devices = self.devices(&account);
        let facts = CallFacts {
            working,
            caller: &caller,
            registered: !devices.is_empty(),
        };
        let who = account.address();
        // The user forwarded every call (the `service` app): before any
        // rule, and only where the account's class of service reaches.
        if let Portable::Str(target) = account.preference(rules::FORWARD_ALL) {
            let target = target.to_str_lossy().trim().to_string();
            if !target.is_empty() && depth < 8 {
                self.observer.event(Event::Routing {
                    what: format!("to {who}: forwarded to {target}"),
                });
                let destination =
                    address::resolve(&self.directory, &target, Some(&account.domain), Some(&account))?;
                return self.route(leg, crate::class::screen(&account, destination), depth + 1);
            }
        }
        let do_not_disturb = !matches!(account.preference(rules::DO_NOT_DISTURB), Portable::Null);
        match rules::own_settings(do_not_disturb, rules::plan(&account.rules, &facts)) {
            Plan::Act(action) => {
                self.observer.event(Event::Routing {
                    what: format!("to {who}: {action}"),
                });
                self.act(leg, Some(account), action, depth)
            }
            Plan::Ring {
                no_answer,
                busy,
                also,
            } => {
                let mut targets: Vec<Target> = devices.into_iter().map(Target::Device).collect();
                targets.extend(ring::expand(self, &also, Some(&account)));
                targets.extend(ring::expand(self, &extra, Some(&account)));
                if targets.is_empty() {
                    self.observer.event(Event::Routing {
                        what: format!("to {who}: no device to ring"),
                    });
                    return Ok(reject(leg, Status::TEMPORARILY_UNAVAILABLE));
                }
                self.observer.event(Event::Routing {
                    what: format!("to {who}: ringing"),
                });
                // A phone with a virtual line in force calls as that line.
                let from = leg.info.acting_as.as_ref().map(|line| line.address());
                let plan = Ringing {
                    from,
                    account: Some(account),
                    targets,
                    no_answer,
                    busy,
                    depth,
                };
                ring::start(self, leg, plan);
                Ok(Routed::Ringing)
            }
        }
    }

    /// Does what a rule says with a call to `account`.
    pub(crate) fn act(
        &self,
        leg: Leg,
        account: Option<Arc<Account>>,
        action: Action,
        depth: u8,
    ) -> Result<Routed, StartError> {
        if depth >= 8 {
            return Ok(reject(leg, Status::LOOP_DETECTED));
        }
        match action {
            Action::Divert(targets) if targets.len() == 1 => {
                let destination = address::resolve(
                    &self.directory,
                    &targets[0],
                    account.as_ref().map(|account| account.domain.as_str()),
                    account.as_ref(),
                )?;
                self.route(leg, destination, depth + 1)
            }
            // Several addresses at once: ring them all.
            Action::Divert(targets) | Action::Fork(targets) => {
                let targets = ring::expand(self, &targets, account.as_ref());
                if targets.is_empty() {
                    return Ok(reject(leg, Status::TEMPORARILY_UNAVAILABLE));
                }
                let plan = Ringing {
                    from: None,
                    account,
                    targets,
                    no_answer: None,
                    busy: None,
                    depth,
                };
                ring::start(self, leg, plan);
                Ok(Routed::Ringing)
            }
            Action::Reject(code) => Ok(reject(leg, Status::new(code))),
        }
    }
}

/// What became of an incoming call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routed {
    /// A task handles it.
    Task(TaskId),
    /// The account's phones ring (no task; see `ring`).
    Ringing,
    /// It was refused with this SIP code.
    Rejected(u16),
}

fn reject(leg: Leg, status: Status) -> Routed {
    let code = status.code();
    leg.send(LegCommand::Reject { status });
    Routed::Rejected(code)
}
