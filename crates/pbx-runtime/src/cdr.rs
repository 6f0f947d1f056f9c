//! Call records (FEATURES.md §11; issue 10): one record per call, with one
//! entry per leg, kept in the embedded store (`data_dir/cdr.redb`) so that
//! they survive a restart, pruned after `cdr.keep_days`.
//!
//! A call is the legs that serve one caller: a call that came in, and
//! every leg placed for it (by its task, or by ringing an account's
//! phones), or, for a call a task starts without one (click-to-dial), the
//! first leg it places and those placed for it. Each leg carries a
//! [`Trace`] (on its shared owner, so the network end and the runtime end
//! both see it): the network's reports fill it in (answered, failed, hung
//! up by the peer), and when the last end of the leg is gone its entry
//! joins the record. The record is written when its last leg has ended.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::call::{LegEvent, LegInfo};

/// Records by id (ids grow with time: the start in microseconds, made
/// unique), as JSON.
const RECORDS: TableDefinition<i64, &[u8]> = TableDefinition::new("call_records");
/// The records the webhook has not taken yet, by id.
const UNSENT: TableDefinition<i64, ()> = TableDefinition::new("call_records_unsent");
/// The calls in progress, as they began (written by the writer thread
/// with the finished records): what a process that dies leaves here is
/// written as failed records at the next start.
const LIVE: TableDefinition<i64, &[u8]> = TableDefinition::new("call_records_live");

/// A call, as the API shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub id: i64,
    /// When the first leg started and the last ended, Unix seconds.
    pub start: i64,
    pub end: i64,
    /// Who called whom, as the call's first leg presented them.
    pub caller: String,
    pub called: String,
    /// Every account the call involved (`name@domain`): the caller who
    /// authenticated, the account called, the account a task ran for.
    pub accounts: Vec<String>,
    /// The program that handled it, and its task ID.
    pub program: Option<String>,
    pub task: Option<u64>,
    pub legs: Vec<LegRecord>,
    /// What the scripts wrote with `StoreCDR`.
    pub notes: Vec<String>,
}

/// One leg of a call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LegRecord {
    /// `in` (a caller) or `out` (placed by pbxd).
    pub direction: String,
    /// The caller and the called as presented (From, To).
    pub from: String,
    pub to: String,
    /// The number or address dialled (the Request-URI).
    pub dialled: String,
    /// The account this leg is of: the caller who authenticated, or the
    /// account whose phone was rung.
    pub account: Option<String>,
    /// The trunk it went through, for numbers beyond the server.
    pub trunk: Option<String>,
    pub call_id: String,
    /// Unix seconds.
    pub start: i64,
    pub answer: Option<i64>,
    pub end: i64,
    pub talk_seconds: i64,
    /// `answered`, `busy`, `no answer`, `cancelled` or `failed`.
    pub disposition: String,
    /// The SIP status of a leg that failed.
    pub code: Option<u16>,
    /// `caller`, `callee` (the far end of this leg) or `pbxd`.
    pub hung_up_by: String,
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[error("call records: {0}")]
pub struct RecordsError(String);

fn failed(error: impl std::fmt::Display) -> RecordsError {
    RecordsError(error.to_string())
}

/// The records: those in progress in memory, the finished in the store.
pub struct CallRecords {
    this: Weak<CallRecords>,
    store: Database,
    /// To the writer thread: records to write, or a flush to answer.
    writer: Mutex<std::sync::mpsc::Sender<Write>>,
    keep_days: u32,
    last_id: AtomicI64,
    open: Mutex<HashMap<i64, Open>>,
    /// Woken when a record waits for the webhook.
    unsent: Arc<tokio::sync::Notify>,
    webhook: Mutex<Option<String>>,
    /// Where the legs' hooks' POSTs go (see `start_hooks`).
    hook_posts: Mutex<Option<tokio::sync::mpsc::UnboundedSender<HookPost>>>,
    /// Calls ended since pbxd started, by disposition (their first
    /// leg's): for the metrics.
    ended_by: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl std::fmt::Debug for CallRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecords").finish_non_exhaustive()
    }
}

/// What the writer thread is asked.
enum Write {
    /// A call began: kept as live until its record is written.
    Began(Box<CallRecord>),
    Record(Box<CallRecord>),
    /// Answered once everything sent before is written.
    Flush(std::sync::mpsc::Sender<()>),
}

/// A record whose call goes on.
struct Open {
    record: CallRecord,
    /// Legs still up.
    legs: usize,
    /// How to hang up its legs.
    handles: Vec<crate::call::LegHandle>,
    /// Who is told of each leg's answer and end.
    hooks: Option<Arc<LegHooks>>,
}

/// URLs told of each leg of a call, as seed 000 §30 has a web-URL
/// number's `answer_url` and `hangup_url`: POSTed `fields` (a form) with
/// the leg's `uniqueid` and `state` (`answer`, or `hangup` with
/// `totaltime`, `talktime`, `status` and `recording`). Their replies are
/// ignored; the calls never wait for them.
#[derive(Clone, Debug, Default)]
pub struct LegHooks {
    pub answer_url: Option<String>,
    pub hangup_url: Option<String>,
    pub fields: Vec<(String, String)>,
}

/// A POST for the hooks' sender: the URL and the form.
type HookPost = (String, Vec<(String, String)>);

/// A leg's `uniqueid` for the hooks: its SIP Call-ID.
fn unique_id(record: i64, entry: &LegRecord) -> String {
    if entry.call_id.is_empty() {
        format!("{record}-{}", entry.start)
    } else {
        entry.call_id.clone()
    }
}

/// A leg's disposition in the words of seed 000 §30's `status`.
fn hook_status(disposition: &str) -> &'static str {
    match disposition {
        "answered" => "answer",
        "busy" => "busy",
        "cancelled" => "cancel",
        "no answer" => "noanswer",
        _ => "congestion",
    }
}

impl CallRecords {
    /// The records in `path` (made if missing), kept `keep_days`.
    pub fn open(path: &Path, keep_days: u32) -> Result<Arc<CallRecords>, RecordsError> {
        CallRecords::prepared(Database::create(path).map_err(failed)?, keep_days)
    }

    /// Records in memory only (`pbxd run`, tests).
    pub fn in_memory() -> Result<Arc<CallRecords>, RecordsError> {
        let store = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(failed)?;
        CallRecords::prepared(store, 0)
    }

    fn prepared(store: Database, keep_days: u32) -> Result<Arc<CallRecords>, RecordsError> {
        let write = store.begin_write().map_err(failed)?;
        write.open_table(RECORDS).map_err(failed)?;
        write.open_table(UNSENT).map_err(failed)?;
        let orphans = close_orphans(&write)?;
        write.commit().map_err(failed)?;
        if orphans > 0 {
            tracing::warn!(
                calls = orphans,
                "calls in progress when pbxd last stopped without ending them are recorded as failed"
            );
        }
        let (writer, writes) = std::sync::mpsc::channel();
        let records = Arc::new_cyclic(|this: &Weak<CallRecords>| {
            let this = this.clone();
            let thread_records = this.clone();
            // The calls' threads never wait for the disk: records are
            // written here, as many as have come in one transaction.
            let spawned = std::thread::Builder::new()
                .name("pbxd-cdr".into())
                .spawn(move || write_records(&writes, &thread_records));
            if let Err(error) = spawned {
                tracing::error!(%error, "the call records' writer did not start");
            }
            CallRecords {
                this,
                store,
                writer: Mutex::new(writer),
                keep_days,
                last_id: AtomicI64::new(0),
                open: Mutex::new(HashMap::new()),
                unsent: Arc::new(tokio::sync::Notify::new()),
                webhook: Mutex::new(None),
                hook_posts: Mutex::new(None),
                ended_by: Mutex::new(std::collections::BTreeMap::new()),
            }
        });
        records.prune()?;
        Ok(records)
    }

    /// Waits until every record of a call that has ended is written.
    pub fn flush(&self) {
        let (done, written) = std::sync::mpsc::channel();
        let sent = self
            .writer
            .lock()
            .is_ok_and(|writer| writer.send(Write::Flush(done)).is_ok());
        if sent {
            let _ = written.recv_timeout(std::time::Duration::from_secs(10));
        }
    }

    /// A new record's id: its start in microseconds, made unique.
    fn new_id(&self) -> i64 {
        let wanted = jiff::Timestamp::now().as_microsecond();
        let mut last = self.last_id.load(Ordering::Relaxed);
        loop {
            let id = wanted.max(last + 1);
            match self
                .last_id
                .compare_exchange(last, id, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return id,
                Err(now) => last = now,
            }
        }
    }

    /// Starts a call: its first leg's trace.
    pub fn begin(&self, info: &LegInfo, outgoing: bool) -> Trace {
        let id = self.new_id();
        // A call pbxd starts (placing its first leg) is from the leg's
        // local side; one that comes in, from its remote side.
        let (caller, called) = if outgoing {
            (info.local_uri.clone(), info.remote_uri.clone())
        } else {
            (info.remote_uri.clone(), info.request_uri.clone())
        };
        let record = CallRecord {
            id,
            start: now(),
            caller,
            called,
            ..CallRecord::default()
        };
        if let Ok(writer) = self.writer.lock() {
            let _ = writer.send(Write::Began(Box::new(record.clone())));
        }
        if let Ok(mut open) = self.open.lock() {
            open.insert(
                id,
                Open {
                    record,
                    legs: 0,
                    handles: Vec::new(),
                    hooks: None,
                },
            );
        }
        self.trace(id, info, outgoing)
    }

    /// A leg pbxd places from `from` to `to`, for call `record`, or
    /// starting a call of its own.
    pub fn outgoing(&self, record: Option<i64>, from: &str, to: &str) -> Trace {
        let info = LegInfo {
            remote_uri: to.to_string(),
            local_uri: from.to_string(),
            request_uri: to.to_string(),
            ..LegInfo::default()
        };
        match record {
            Some(record) => self.trace(record, &info, true),
            None => self.begin(&info, true),
        }
    }

    /// A leg joins call `record` (a leg placed for it); a call already
    /// written (all its legs ended) is not reopened: the leg begins one of
    /// its own (see [`Trace::record`]).
    pub fn trace(&self, record: i64, info: &LegInfo, outgoing: bool) -> Trace {
        let joined = self
            .open
            .lock()
            .is_ok_and(|mut open| match open.get_mut(&record) {
                Some(open) => {
                    open.legs += 1;
                    true
                }
                None => false,
            });
        if !joined {
            return self.begin(info, outgoing);
        }
        let entry = LegRecord {
            direction: if outgoing { "out" } else { "in" }.to_string(),
            from: info.remote_uri.clone(),
            to: info.local_uri.clone(),
            dialled: info.request_uri.clone(),
            account: info.authenticated.as_ref().map(|account| account.address()),
            call_id: info.call_id.clone(),
            start: now(),
            ..LegRecord::default()
        };
        if outgoing {
            // Placed by pbxd: the far end is the called party.
            let mut entry = entry;
            std::mem::swap(&mut entry.from, &mut entry.to);
            return self.traced(record, entry);
        }
        if let Some(account) = &entry.account {
            self.involve(record, account);
        }
        self.traced(record, entry)
    }

    fn traced(&self, record: i64, entry: LegRecord) -> Trace {
        Trace(Arc::new(TraceInner {
            records: self.this.clone(),
            record,
            entry: Mutex::new(TraceState {
                entry,
                peer_hung_up: false,
            }),
        }))
    }

    /// Call `record` involves `account` (the live copy kept for a crash
    /// says so too, so that a failed record left by one is its accounts').
    pub fn involve(&self, record: i64, account: &str) {
        self.change_live(record, |call| {
            if call.accounts.iter().any(|known| known == account) {
                return false;
            }
            call.accounts.push(account.to_string());
            true
        });
    }

    /// Call `record` is handled by `program`'s task `task` (the live copy
    /// kept for a crash says so too).
    pub fn handled_by(&self, record: i64, program: &str, task: u64) {
        self.change_live(record, |call| {
            if call.program.is_some() {
                return false;
            }
            call.program = Some(program.to_string());
            call.task = Some(task);
            true
        });
    }

    /// Changes open call `record` with `change`, which says whether it
    /// changed anything; if it did, the live copy kept for a crash is
    /// written again. Sent while the call is held open: its record, if it
    /// ends now, follows this on the writer's channel.
    fn change_live(&self, record: i64, change: impl FnOnce(&mut CallRecord) -> bool) {
        let Ok(mut open) = self.open.lock() else {
            return;
        };
        let Some(call) = open.get_mut(&record) else {
            return;
        };
        if !change(&mut call.record) {
            return;
        }
        if let Ok(writer) = self.writer.lock() {
            let _ = writer.send(Write::Began(Box::new(call.record.clone())));
        }
    }

    /// From now on `hooks` are told of each leg of call `record` that is
    /// answered or ends (those up already included).
    pub fn watch(&self, record: i64, hooks: LegHooks) {
        self.with_open(record, |open| open.hooks = Some(Arc::new(hooks)));
    }

    /// Sends the legs' hooks' POSTs, one after the other, on `io`: each
    /// tried up to three times (1 s, then 2 s apart) while the server
    /// cannot be reached or answers 5xx.
    pub fn start_hooks(&self, http: reqwest::Client, io: &tokio::runtime::Handle) {
        let (posts, mut queue) = tokio::sync::mpsc::unbounded_channel::<HookPost>();
        if let Ok(mut sender) = self.hook_posts.lock() {
            *sender = Some(posts);
        }
        io.spawn(async move {
            while let Some((url, form)) = queue.recv().await {
                let mut pause = std::time::Duration::from_secs(1);
                for attempt in 1..=3 {
                    let sent = http
                        .post(&url)
                        .form(&form)
                        .timeout(std::time::Duration::from_secs(10))
                        .send()
                        .await;
                    let why = match sent {
                        Ok(response) if !response.status().is_server_error() => break,
                        Ok(response) => response.status().to_string(),
                        Err(error) => error.to_string(),
                    };
                    tracing::info!(%url, attempt, "a call's answer or hangup URL: {why}");
                    if attempt < 3 {
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                    }
                }
            }
        });
    }

    /// Queues a hook's POST of `fields` with `extra`.
    fn post_hook(&self, url: &str, hooks: &LegHooks, extra: Vec<(&str, String)>) {
        let mut form = hooks.fields.clone();
        form.retain(|(key, _)| !extra.iter().any(|(name, _)| name == key));
        form.extend(extra.into_iter().map(|(key, value)| (key.to_string(), value)));
        if let Ok(sender) = self.hook_posts.lock() {
            if let Some(sender) = sender.as_ref() {
                let _ = sender.send((url.to_string(), form));
            }
        }
    }

    fn hooks(&self, record: i64) -> Option<Arc<LegHooks>> {
        self.open.lock().ok()?.get(&record)?.hooks.clone()
    }

    /// A leg of call `record` was answered: its answer hook.
    fn leg_answered(&self, record: i64, entry: &LegRecord) {
        let Some(hooks) = self.hooks(record) else { return };
        if let Some(url) = &hooks.answer_url {
            let extra = vec![
                ("uniqueid", unique_id(record, entry)),
                ("state", "answer".to_string()),
            ];
            self.post_hook(url, &hooks, extra);
        }
    }

    /// A script's `StoreCDR` line for call `record`.
    pub fn note(&self, record: i64, text: &str) {
        self.with_open(record, |open| open.record.notes.push(text.to_string()));
    }

    fn with_open(&self, record: i64, change: impl FnOnce(&mut Open)) {
        if let Ok(mut open) = self.open.lock() {
            if let Some(open) = open.get_mut(&record) {
                change(open);
            }
        }
    }

    /// A leg of `record` ended: its entry joins the record, and a record
    /// with no leg left is written.
    fn ended(&self, record: i64, entry: LegRecord) {
        if let Some(hooks) = self.hooks(record) {
            if let Some(url) = &hooks.hangup_url {
                let extra = vec![
                    ("uniqueid", unique_id(record, &entry)),
                    ("state", "hangup".to_string()),
                    ("totaltime", (entry.end - entry.start).max(0).to_string()),
                    ("talktime", entry.talk_seconds.max(0).to_string()),
                    ("status", hook_status(&entry.disposition).to_string()),
                    ("recording", String::new()),
                ];
                self.post_hook(url, &hooks, extra);
            }
        }
        let finished = {
            let Ok(mut open) = self.open.lock() else {
                return;
            };
            let Some(call) = open.get_mut(&record) else {
                return;
            };
            call.record.legs.push(entry);
            call.legs = call.legs.saturating_sub(1);
            if call.legs > 0 {
                return;
            }
            let Some(Open { mut record, .. }) = open.remove(&record) else {
                return;
            };
            record.end = now();
            record.legs.sort_by_key(|leg| leg.start);
            // Sent before the call leaves `open`'s lock: nothing about it
            // can follow it on the writer's channel.
            let disposition = record.legs.first().map(|first| first.disposition.clone());
            if let Ok(writer) = self.writer.lock() {
                let _ = writer.send(Write::Record(Box::new(record)));
            }
            disposition
        };
        if let (Some(disposition), Ok(mut ended)) = (finished, self.ended_by.lock()) {
            *ended.entry(disposition).or_default() += 1;
        }
    }

    /// Writes `batch` in one transaction (and marks it for the webhook, if
    /// there is one, in the same).
    fn write(&self, began: &[Box<CallRecord>], batch: &[Box<CallRecord>]) -> Result<(), RecordsError> {
        let hooked = self.webhook.lock().is_ok_and(|webhook| webhook.is_some());
        let write = self.store.begin_write().map_err(failed)?;
        {
            let mut live = write.open_table(LIVE).map_err(failed)?;
            for record in began {
                let json = serde_json::to_vec(record).map_err(failed)?;
                live.insert(record.id, json.as_slice()).map_err(failed)?;
            }
            for record in batch {
                live.remove(record.id).map_err(failed)?;
            }
        }
        {
            let mut records = write.open_table(RECORDS).map_err(failed)?;
            let mut unsent = write.open_table(UNSENT).map_err(failed)?;
            for record in batch {
                let json = serde_json::to_vec(record).map_err(failed)?;
                records.insert(record.id, json.as_slice()).map_err(failed)?;
                if hooked {
                    // A record the webhook must get is never kept without
                    // being marked for it.
                    unsent.insert(record.id, ()).map_err(failed)?;
                }
            }
        }
        write.commit().map_err(failed)?;
        if hooked {
            self.unsent.notify_one();
        }
        Ok(())
    }

    /// POSTs every record, as JSON, to `url` when its call ends, on
    /// `io`: those not taken (no answer, not 2xx) are kept and sent again
    /// after 1 s, 2 s, 4 s… up to a minute; those left from before a
    /// restart are sent first. The calls never wait for it.
    pub fn start_webhook(self: &Arc<Self>, url: String, http: reqwest::Client, io: &tokio::runtime::Handle) {
        if let Ok(mut webhook) = self.webhook.lock() {
            *webhook = Some(url.clone());
        }
        let records = Arc::downgrade(self);
        let unsent = self.unsent.clone();
        io.spawn(async move {
            let mut pause = std::time::Duration::from_secs(1);
            loop {
                let Some(this) = records.upgrade() else { return };
                let next = match this.next_unsent() {
                    Ok(next) => next,
                    Err(error) => {
                        tracing::error!(%error, "the call records' webhook cannot read the store");
                        None
                    }
                };
                let Some((id, json)) = next else {
                    drop(this);
                    unsent.notified().await;
                    continue;
                };
                let sent = http
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .body(json)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        pause = std::time::Duration::from_secs(1);
                        if let Err(error) = this.sent(id) {
                            tracing::error!(%error, "a call record sent to the webhook stays marked");
                        }
                    }
                    outcome => {
                        let why = match outcome {
                            Ok(response) => response.status().to_string(),
                            Err(error) => error.to_string(),
                        };
                        tracing::info!(%url, "call records' webhook: {why}; again in {} s", pause.as_secs());
                        drop(this);
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(std::time::Duration::from_secs(60));
                    }
                }
            }
        });
    }

    /// The oldest record the webhook has not taken.
    fn next_unsent(&self) -> Result<Option<(i64, Vec<u8>)>, RecordsError> {
        loop {
            let (id, json) = {
                let read = self.store.begin_read().map_err(failed)?;
                let unsent = read.open_table(UNSENT).map_err(failed)?;
                let Some(first) = unsent.first().map_err(failed)? else {
                    return Ok(None);
                };
                let id = first.0.value();
                let records = read.open_table(RECORDS).map_err(failed)?;
                let json = records.get(id).map_err(failed)?.map(|json| json.value().to_vec());
                (id, json)
            };
            match json {
                Some(json) => return Ok(Some((id, json))),
                // Pruned before it could be sent.
                None => self.sent(id)?,
            }
        }
    }

    /// The webhook took record `id`.
    fn sent(&self, id: i64) -> Result<(), RecordsError> {
        let write = self.store.begin_write().map_err(failed)?;
        write
            .open_table(UNSENT)
            .map_err(failed)?
            .remove(id)
            .map_err(failed)?;
        write.commit().map_err(failed)
    }

    /// Calls ended since pbxd started, by disposition.
    pub fn ended_by_disposition(&self) -> Vec<(String, u64)> {
        self.ended_by
            .lock()
            .map(|ended| {
                ended
                    .iter()
                    .map(|(disposition, count)| (disposition.clone(), *count))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Hangs up every leg of call `record` still up; false when there is
    /// no such call in progress.
    pub fn hang_up(&self, record: i64) -> bool {
        let handles = self
            .open
            .lock()
            .ok()
            .and_then(|open| open.get(&record).map(|call| call.handles.clone()));
        let Some(handles) = handles else {
            return false;
        };
        for handle in handles {
            handle.send(crate::call::LegCommand::Disconnect { reason: None });
        }
        true
    }

    /// The calls in progress (their legs so far, none until one ends) and
    /// how many legs each has up.
    pub fn live(&self) -> Vec<(CallRecord, usize)> {
        let mut live: Vec<(CallRecord, usize)> = self
            .open
            .lock()
            .map(|open| {
                open.values()
                    .map(|call| (call.record.clone(), call.legs))
                    .collect()
            })
            .unwrap_or_default();
        live.sort_by_key(|(record, _)| record.id);
        live
    }

    /// Deletes what is older than `keep_days` (0: keeps everything).
    pub fn prune(&self) -> Result<(), RecordsError> {
        if self.keep_days == 0 {
            return Ok(());
        }
        let cutoff = (now() - i64::from(self.keep_days) * 86_400) * 1_000_000;
        let write = self.store.begin_write().map_err(failed)?;
        write
            .open_table(RECORDS)
            .map_err(failed)?
            .retain_in(..cutoff, |_, _| false)
            .map_err(failed)?;
        write.commit().map_err(failed)
    }

    /// Finished records that started from `since` up to `until` (Unix
    /// seconds) and that `visible` lets through, oldest first, at most
    /// `limit`.
    pub fn query(
        &self,
        since: Option<i64>,
        until: Option<i64>,
        limit: usize,
        visible: impl Fn(&CallRecord) -> bool,
    ) -> Result<Vec<CallRecord>, RecordsError> {
        // What has ended is there to read.
        self.flush();
        let from = since.map_or(i64::MIN, |since| since.saturating_mul(1_000_000));
        let to = until.map_or(i64::MAX, |until| {
            until.saturating_add(1).saturating_mul(1_000_000)
        });
        let read = self.store.begin_read().map_err(failed)?;
        let table = read.open_table(RECORDS).map_err(failed)?;
        let mut found = Vec::new();
        for row in table.range(from..to).map_err(failed)? {
            let (_, json) = row.map_err(failed)?;
            match serde_json::from_slice::<CallRecord>(json.value()) {
                Ok(record) if visible(&record) => found.push(record),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "a stored call record could not be read"),
            }
            if found.len() >= limit {
                break;
            }
        }
        Ok(found)
    }
}

/// How long the writer gathers records before it commits them: at 600
/// calls a second, ten commits a second instead of six hundred.
const GATHER: std::time::Duration = std::time::Duration::from_millis(100);

/// The writer thread: gathers what comes for up to [`GATHER`] (less when
/// asked to flush), writes it in one transaction, answers flushes; ends
/// when the records are dropped.
/// The calls a process left live when it died: each written as a failed
/// record (ended when it began: when it truly ended is not known), and
/// no longer live. How many.
fn close_orphans(write: &redb::WriteTransaction) -> Result<usize, RecordsError> {
    let mut live = write.open_table(LIVE).map_err(failed)?;
    let mut orphans = Vec::new();
    for entry in live.iter().map_err(failed)? {
        let (id, json) = entry.map_err(failed)?;
        orphans.push((id.value(), json.value().to_vec()));
    }
    let mut records = write.open_table(RECORDS).map_err(failed)?;
    for (id, json) in &orphans {
        live.remove(*id).map_err(failed)?;
        let Ok(mut record) = serde_json::from_slice::<CallRecord>(json) else {
            continue;
        };
        record.end = record.start;
        record
            .notes
            .push("pbxd stopped during the call: found unfinished at the next start".into());
        record.legs.push(LegRecord {
            direction: "in".into(),
            from: record.caller.clone(),
            to: record.called.clone(),
            dialled: record.called.clone(),
            start: record.start,
            end: record.start,
            disposition: "failed".into(),
            code: Some(500),
            hung_up_by: "pbxd".into(),
            ..LegRecord::default()
        });
        let json = serde_json::to_vec(&record).map_err(failed)?;
        records.insert(*id, json.as_slice()).map_err(failed)?;
    }
    Ok(orphans.len())
}

fn write_records(writes: &std::sync::mpsc::Receiver<Write>, records: &Weak<CallRecords>) {
    while let Ok(first) = writes.recv() {
        let mut began = Vec::new();
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let until = std::time::Instant::now() + GATHER;
        let mut next = Some(first);
        while let Some(write) = next.take() {
            match write {
                Write::Began(record) => began.push(record),
                Write::Record(record) => batch.push(record),
                Write::Flush(done) => flushes.push(done),
            }
            if !flushes.is_empty() || batch.len() >= 1_000 {
                // Whatever else is there already goes in too.
                next = writes.try_recv().ok();
                continue;
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            next = writes.recv_timeout(left).ok();
        }
        if !batch.is_empty() || !began.is_empty() {
            match records.upgrade() {
                Some(records) => {
                    if let Err(error) = records.write(&began, &batch) {
                        tracing::error!(%error, "{} call record(s) were not kept", batch.len());
                    }
                }
                None => return,
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// A leg's part in its call's record.
#[derive(Clone)]
pub struct Trace(Arc<TraceInner>);

struct TraceInner {
    records: Weak<CallRecords>,
    record: i64,
    entry: Mutex<TraceState>,
}

struct TraceState {
    entry: LegRecord,
    peer_hung_up: bool,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace").field("record", &self.0.record).finish()
    }
}

impl Trace {
    /// The call this leg belongs to.
    pub fn record(&self) -> i64 {
        self.0.record
    }

    /// The records it is kept in.
    pub fn records(&self) -> Option<Arc<CallRecords>> {
        self.0.records.upgrade()
    }

    /// What the network reported of the leg.
    pub fn reported(&self, event: &LegEvent) {
        let Ok(mut state) = self.0.entry.lock() else {
            return;
        };
        match event {
            // The first answer is told to the call's hooks (the lock let go
            // first: the records take their own).
            LegEvent::Answered if state.entry.answer.is_none() => {
                state.entry.answer = Some(now());
                let entry = state.entry.clone();
                drop(state);
                if let Some(records) = self.records() {
                    records.leg_answered(self.0.record, &entry);
                }
            }
            LegEvent::Failed(error) => {
                let code = error.status.code();
                let disposition = match code {
                    486 | 600 => "busy",
                    408 | 480 => "no answer",
                    487 => "cancelled",
                    _ => "failed",
                };
                state.entry.disposition = disposition.to_string();
                state.entry.code = Some(code);
            }
            LegEvent::Disconnected => state.peer_hung_up = true,
            _ => {}
        }
    }

    /// How to hang the leg up, for its call's record.
    pub fn reach(&self, handle: crate::call::LegHandle) {
        if let Some(records) = self.records() {
            records.with_open(self.0.record, |open| open.handles.push(handle));
        }
    }

    /// The SIP Call-ID of the leg, once the network chose it.
    pub fn call_id(&self, call_id: &str) {
        if let Ok(mut state) = self.0.entry.lock() {
            state.entry.call_id = call_id.to_string();
        }
    }

    /// The leg was answered (an incoming call pbxd answered).
    pub fn answered(&self) {
        self.reported(&LegEvent::Answered);
    }

    /// The account whose phone this leg rang, or the trunk it went to.
    pub fn reaches(&self, account: Option<&str>, trunk: Option<&str>) {
        if let Ok(mut state) = self.0.entry.lock() {
            if let Some(account) = account {
                state.entry.account = Some(account.to_string());
            }
            if let Some(trunk) = trunk {
                state.entry.trunk = Some(trunk.to_string());
            }
        }
        if let (Some(account), Some(records)) = (account, self.records()) {
            records.involve(self.0.record, account);
        }
    }
}

impl Drop for TraceInner {
    fn drop(&mut self) {
        let Some(records) = self.records.upgrade() else {
            return;
        };
        let Ok(state) = self.entry.get_mut() else {
            return;
        };
        let mut entry = std::mem::take(&mut state.entry);
        entry.end = now();
        if let Some(answer) = entry.answer {
            entry.talk_seconds = entry.end - answer;
            entry.disposition = "answered".to_string();
        } else if entry.disposition.is_empty() {
            // Ended before an answer and without a final response: the
            // caller gave up (in), or pbxd stopped ringing (out).
            entry.disposition = "cancelled".to_string();
        }
        entry.hung_up_by = match (state.peer_hung_up, entry.direction.as_str()) {
            (true, "in") => "caller",
            (true, _) => "callee",
            (false, _) => "pbxd",
        }
        .to_string();
        records.ended(self.record, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(from: &str, to: &str) -> LegInfo {
        LegInfo {
            remote_uri: from.into(),
            local_uri: to.into(),
            request_uri: to.into(),
            call_id: "c1".into(),
            ..LegInfo::default()
        }
    }

    #[test]
    fn a_record_is_written_when_its_last_leg_ends() {
        let records = CallRecords::in_memory().unwrap();
        let caller = records.begin(&info("sip:a@x", "sip:200@example.com"), false);
        let record = caller.record();
        records.handled_by(record, "pbx.sppr", 7);
        records.note(record, "menu 1");
        let phone = records.trace(record, &info("sip:ivanov@example.com", "sip:a@x"), true);
        phone.reaches(Some("ivanov@example.com"), None);
        phone.reported(&LegEvent::Answered);
        caller.answered();
        drop(phone);
        assert!(records.query(None, None, 10, |_| true).unwrap().is_empty());
        caller.reported(&LegEvent::Disconnected);
        drop(caller);
        let found = records.query(None, None, 10, |_| true).unwrap();
        assert_eq!(found.len(), 1);
        let call = &found[0];
        assert_eq!((call.program.as_deref(), call.task), (Some("pbx.sppr"), Some(7)));
        assert_eq!(call.notes, ["menu 1"]);
        assert_eq!(call.accounts, ["ivanov@example.com"]);
        assert_eq!(call.legs.len(), 2);
        let hung_up: Vec<&str> = call.legs.iter().map(|leg| leg.hung_up_by.as_str()).collect();
        assert!(
            hung_up.contains(&"caller") && hung_up.contains(&"pbxd"),
            "{hung_up:?}"
        );
        assert!(call.legs.iter().all(|leg| leg.disposition == "answered"));
        let outgoing = call.legs.iter().find(|leg| leg.direction == "out").unwrap();
        assert_eq!(outgoing.to, "sip:ivanov@example.com");
        // Outside the window asked for: none.
        assert!(records
            .query(Some(call.start + 10), None, 10, |_| true)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn calls_a_dead_process_left_are_recorded_as_failed_at_the_next_start() {
        let path = std::env::temp_dir().join(format!("cdr-orphans-{}.redb", std::process::id()));
        let _ = std::fs::remove_file(&path);
        {
            let records = CallRecords::open(&path, 0).unwrap();
            // One call ends, one is still up when the process "dies".
            let done = records.begin(&info("sip:a@x", "sip:200@example.com"), false);
            done.reported(&LegEvent::Disconnected);
            drop(done);
            let up = records.begin(&info("sip:b@x", "sip:ivanov@example.com"), false);
            records.flush();
            // Never ended: what a process killed mid-call leaves.
            std::mem::forget(up);
            drop(records);
        }
        // The writer thread lets go of the store once its owner is gone.
        let reopen = || {
            for _ in 0..100 {
                if let Ok(records) = CallRecords::open(&path, 0) {
                    return records;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            panic!("the store does not open again");
        };
        let records = reopen();
        let found = records.query(None, None, 10, |_| true).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        let orphan = found.iter().find(|call| call.caller == "sip:b@x").unwrap();
        assert_eq!(orphan.legs.len(), 1);
        assert_eq!(orphan.legs[0].disposition, "failed");
        assert!(
            orphan.notes[0].contains("pbxd stopped during the call"),
            "{orphan:?}"
        );
        drop(records);
        // Recorded once: a further start finds nothing more to add.
        assert_eq!(reopen().query(None, None, 10, |_| true).unwrap().len(), 2);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    #[ignore = "a measurement: cargo test -p pbx-runtime --release --lib cdr::tests::time_writes -- --ignored --nocapture"]
    fn time_writes() {
        let dir = std::env::temp_dir().join(format!("cdr-time-{}", std::process::id()));
        let records = CallRecords::open(&dir, 0).unwrap();
        let started = std::time::Instant::now();
        for _ in 0..200 {
            drop(records.begin(&info("sip:a@x", "sip:b@x"), false));
        }
        println!("{:?} per record", started.elapsed() / 200);
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn a_leg_placed_for_a_call_already_written_begins_a_record_of_its_own() {
        let records = CallRecords::in_memory().unwrap();
        let first = records.outgoing(None, "sip:a@x", "sip:b@x");
        let record = first.record();
        drop(first);
        let later = records.outgoing(Some(record), "sip:a@x", "sip:c@x");
        assert_ne!(later.record(), record);
        drop(later);
        let found = records.query(None, None, 10, |_| true).unwrap();
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|call| call.legs.len() == 1));
        assert!(records.live().is_empty());
    }
}
