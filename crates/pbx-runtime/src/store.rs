//! What scripts keep: each account's file storage (CGPL §6.12; voicemail
//! keeps its messages and greeting there) in the embedded store, and the
//! meetings of §6.11 (named rendezvous, e.g. conference rooms) in memory.
//!
//! Storage file names are paths inside the account's own storage:
//! `voicemail/1700000000-1.wav`. Folders are implicit: a file makes its
//! folder exist, and listing a folder shows its files and sub-folders.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};

use pbx_lang::value::{Portable, TaskId};
use redb::{Database, ReadableTable, TableDefinition};

/// File contents by `account@domain/path`.
const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("storage_files");
/// When each file was last written, in seconds since the Unix epoch.
const MODIFIED: TableDefinition<&str, i64> = TableDefinition::new("storage_modified");
/// Preferences scripts set (`SetAccountPreferences`), by
/// `account@domain\tkey`, in CG/PL's textual form: they outlast a restart.
const PREFERENCES: TableDefinition<&str, &str> = TableDefinition::new("account_preferences");
/// PINs their owners set (`SetAccountPIN`), by `account@domain`.
const PINS: TableDefinition<&str, &str> = TableDefinition::new("account_pins");
/// What the runtime keeps whole, by name (the Parlay X rules, as JSON).
const SETTINGS: TableDefinition<&str, &str> = TableDefinition::new("runtime_settings");

/// The largest file a script may keep (a ten-minute recording at 8 kHz,
/// 16-bit, is 9.6 MB).
pub const LARGEST_FILE: usize = 16 * 1024 * 1024;

/// Why a storage operation failed, in words a script can show.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StorageError {
    #[error("bad file name: {0}")]
    BadName(String),
    #[error("file not found")]
    NotFound,
    #[error("a file with that name exists")]
    Exists,
    #[error("the file would exceed {} bytes", LARGEST_FILE)]
    TooLarge,
    /// The data disk is full, or nearly: what is left is kept for call
    /// records, registrations and the like (`limits.disk_reserve_mb`).
    #[error("the disk is full ({free_mb} MB free, {reserve_mb} MB kept for pbxd's records)")]
    DiskFull { free_mb: u64, reserve_mb: u64 },
    #[error("storage failed: {0}")]
    Store(String),
    /// The store's file could not be read or written (the database is
    /// opened again before the next try).
    #[error("storage failed: {0}")]
    Io(String),
}

fn store_failed(error: impl std::fmt::Display) -> StorageError {
    StorageError::Store(error.to_string())
}

/// What a store operation's failure means: the disk full when the
/// store says so (ENOSPC), an I/O failure (now or before) apart from the
/// rest.
fn failed(error: impl Into<redb::Error>) -> StorageError {
    match error.into() {
        redb::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => StorageError::DiskFull {
            free_mb: 0,
            reserve_mb: 0,
        },
        error @ (redb::Error::Io(_) | redb::Error::PreviousIo) => StorageError::Io(error.to_string()),
        other => store_failed(other),
    }
}

/// Bytes free for an unprivileged writer on the file system holding
/// `folder`, if it can be told.
pub fn free_bytes(folder: &Path) -> Option<u64> {
    let stats = rustix::fs::statvfs(folder).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// One entry of a folder listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed {
    File { size: u64, modified: i64 },
    Folder { files: u64 },
}

/// The store's database. After a write meets an I/O error (the disk
/// full) redb refuses every later write until the database is opened
/// again; this opens it again at the next write, so a disk that has room
/// again is used again without a restart.
pub(crate) struct Db {
    database: RwLock<Option<Database>>,
    path: Option<PathBuf>,
}

impl Db {
    fn new(database: Database, path: Option<PathBuf>) -> Db {
        Db {
            database: RwLock::new(Some(database)),
            path,
        }
    }

    fn with<T>(
        &self,
        run: impl Fn(&Database) -> Result<T, redb::TransactionError>,
    ) -> Result<T, StorageError> {
        let attempt = || match self
            .database
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            Some(database) => run(database).map_err(failed),
            None => Err(StorageError::Io(
                "the store is closed after a failed write".into(),
            )),
        };
        match attempt() {
            Err(StorageError::Io(_)) if self.path.is_some() => {
                self.reopen();
                attempt()
            }
            other => other,
        }
    }

    pub(crate) fn begin_write(&self) -> Result<redb::WriteTransaction, StorageError> {
        self.with(Database::begin_write)
    }

    pub(crate) fn begin_read(&self) -> Result<redb::ReadTransaction, StorageError> {
        self.with(Database::begin_read)
    }

    /// Closes the database and opens it again (another thread may have
    /// done so already). While a transaction of the old one lives, the
    /// file stays locked and this is tried again at the next write.
    fn reopen(&self) {
        let Some(path) = &self.path else { return };
        let mut database = self.database.write().unwrap_or_else(PoisonError::into_inner);
        if database.as_ref().is_some_and(|open| open.begin_write().is_ok()) {
            return;
        }
        *database = None;
        match Database::create(path) {
            Ok(opened) => {
                tracing::warn!(store = %path.display(), "the store is opened again after a failed write");
                *database = Some(opened);
            }
            Err(error) => {
                tracing::warn!(store = %path.display(), %error, "the store cannot be opened again yet");
            }
        }
    }
}

/// Every account's files.
pub struct Storage {
    database: Db,
    /// The folder holding the store, whose disk a write must leave
    /// `reserve` bytes free on (none in memory).
    folder: Option<PathBuf>,
    reserve: u64,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Storage")
    }
}

/// Checks a script's file name: relative, no `..`, no empty or hidden
/// parts, printable, not too long. Returns it without a trailing `/`.
pub fn check_name(name: &str) -> Result<&str, StorageError> {
    let trimmed = name.trim_end_matches('/');
    let bad = trimmed.is_empty()
        || trimmed.len() > 255
        || trimmed.starts_with('/')
        || trimmed.chars().any(|c| c.is_control() || c == '\\')
        || trimmed
            .split('/')
            .any(|part| part.is_empty() || part.starts_with('.'));
    if bad {
        return Err(StorageError::BadName(name.chars().take(80).collect()));
    }
    Ok(trimmed)
}

fn key(account: &str, name: &str) -> String {
    format!("{account}/{name}")
}

impl Storage {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Storage, StorageError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(store_failed)?;
        }
        let mut storage = Storage::prepared(Database::create(path).map_err(failed)?, Some(path))?;
        storage.folder = path.parent().map(Path::to_path_buf);
        Ok(storage)
    }

    /// Refuses files that would leave less than `bytes` free on the
    /// store's disk: what is left is for call records, registrations,
    /// logins and queued mail.
    pub fn with_reserve(mut self, bytes: u64) -> Storage {
        self.reserve = bytes;
        self
    }

    /// Whether `size` more bytes of files leave the reserve free.
    fn room_for(&self, size: usize) -> Result<(), StorageError> {
        let Some(free) = self.folder.as_deref().and_then(free_bytes) else {
            return Ok(());
        };
        if free < self.reserve.saturating_add(size as u64) {
            return Err(StorageError::DiskFull {
                free_mb: free / 1_000_000,
                reserve_mb: self.reserve / 1_000_000,
            });
        }
        Ok(())
    }

    /// A store that lives in memory only (simulations and tests).
    pub fn in_memory() -> Result<Storage, StorageError> {
        let database = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(failed)?;
        Storage::prepared(database, None)
    }

    fn prepared(database: Database, path: Option<&Path>) -> Result<Storage, StorageError> {
        let write = database.begin_write().map_err(failed)?;
        write.open_table(FILES).map_err(failed)?;
        write.open_table(MODIFIED).map_err(failed)?;
        write.open_table(PREFERENCES).map_err(failed)?;
        write.open_table(PINS).map_err(failed)?;
        crate::balance::create_tables(&write).map_err(failed)?;
        write.commit().map_err(failed)?;
        Ok(Storage {
            database: Db::new(database, path.map(Path::to_path_buf)),
            folder: None,
            reserve: 0,
        })
    }

    /// The accounts' balances, kept in the same database.
    pub fn balances(&self) -> crate::balance::Balances<'_> {
        crate::balance::Balances::new(&self.database)
    }

    /// Keeps a preference a script set for `account` (null removes it).
    pub fn keep_preference(&self, account: &str, key: &str, value: &Portable) -> Result<(), StorageError> {
        let id = format!("{account}\t{key}");
        let write = self.database.begin_write()?;
        {
            let mut table = write.open_table(PREFERENCES).map_err(failed)?;
            match value {
                Portable::Null => {
                    table.remove(id.as_str()).map_err(failed)?;
                }
                value => {
                    let text = pbx_lang::value::text::to_text(&value.to_value());
                    table.insert(id.as_str(), text.as_str()).map_err(failed)?;
                }
            }
        }
        write.commit().map_err(failed)
    }

    /// Keeps `text` as the setting `name` (replacing what was kept).
    pub fn keep_setting(&self, name: &str, text: &str) -> Result<(), StorageError> {
        let write = self.database.begin_write()?;
        write
            .open_table(SETTINGS)
            .map_err(failed)?
            .insert(name, text)
            .map_err(failed)?;
        write.commit().map_err(failed)
    }

    /// The setting `name`, if one was kept.
    pub fn kept_setting(&self, name: &str) -> Result<Option<String>, StorageError> {
        let read = self.database.begin_read()?;
        let table = match read.open_table(SETTINGS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(store_failed(error)),
        };
        let text = table.get(name).map_err(failed)?;
        Ok(text.map(|text| text.value().to_string()))
    }

    /// Keeps the PIN `account`'s owner set.
    pub fn keep_pin(&self, account: &str, pin: &str) -> Result<(), StorageError> {
        let write = self.database.begin_write()?;
        write
            .open_table(PINS)
            .map_err(failed)?
            .insert(account, pin)
            .map_err(failed)?;
        write.commit().map_err(failed)
    }

    /// The PINs owners set, as `(account, pin)`.
    pub fn kept_pins(&self) -> Result<Vec<(String, String)>, StorageError> {
        let read = self.database.begin_read()?;
        let table = read.open_table(PINS).map_err(failed)?;
        let mut kept = Vec::new();
        for entry in table.iter().map_err(failed)? {
            let (account, pin) = entry.map_err(failed)?;
            kept.push((account.value().to_string(), pin.value().to_string()));
        }
        Ok(kept)
    }

    /// The preferences scripts set, as `(account, key, value)`.
    pub fn kept_preferences(&self) -> Result<Vec<(String, String, Portable)>, StorageError> {
        let read = self.database.begin_read()?;
        let table = read.open_table(PREFERENCES).map_err(failed)?;
        let mut kept = Vec::new();
        for entry in table.iter().map_err(failed)? {
            let (id, text) = entry.map_err(failed)?;
            let Some((account, key)) = id.value().split_once('\t') else {
                continue;
            };
            let value = pbx_lang::value::text::parse_object(text.value().as_bytes())
                .and_then(|value| value.to_portable().ok());
            match value {
                Some(value) => kept.push((account.to_string(), key.to_string(), value)),
                None => tracing::warn!(%account, %key, "a kept preference is not readable: skipped"),
            }
        }
        Ok(kept)
    }

    /// Runs `operation`; after an I/O failure the database is opened
    /// again (redb refuses everything after one until it is) and an
    /// operation that met an earlier failure is tried once more.
    fn recovering<T>(&self, operation: impl Fn() -> Result<T, StorageError>) -> Result<T, StorageError> {
        match operation() {
            Err(StorageError::Io(_)) => {
                self.database.reopen();
                operation()
            }
            Err(full @ StorageError::DiskFull { .. }) => {
                self.database.reopen();
                Err(full)
            }
            other => other,
        }
    }

    /// The contents of `account`'s file `name`.
    pub fn read(&self, account: &str, name: &str) -> Result<Vec<u8>, StorageError> {
        self.recovering(|| self.read_once(account, name))
    }

    fn read_once(&self, account: &str, name: &str) -> Result<Vec<u8>, StorageError> {
        let name = check_name(name)?;
        let read = self.database.begin_read()?;
        let table = read.open_table(FILES).map_err(failed)?;
        let found = table.get(key(account, name).as_str()).map_err(failed)?;
        found
            .map(|value| value.value().to_vec())
            .ok_or(StorageError::NotFound)
    }

    /// Writes (or, with `append`, adds to) `account`'s file `name`.
    /// Refused when the disk is full or would be past the reserve.
    pub fn write(
        &self,
        account: &str,
        name: &str,
        data: &[u8],
        append: bool,
        now: i64,
    ) -> Result<(), StorageError> {
        self.recovering(|| self.write_once(account, name, data, append, now))
    }

    fn write_once(
        &self,
        account: &str,
        name: &str,
        data: &[u8],
        append: bool,
        now: i64,
    ) -> Result<(), StorageError> {
        let name = check_name(name)?;
        let key = key(account, name);
        self.room_for(data.len())?;
        let write = self.database.begin_write()?;
        {
            let mut files = write.open_table(FILES).map_err(failed)?;
            let mut contents = if append {
                let existing = files.get(key.as_str()).map_err(failed)?;
                existing.map(|value| value.value().to_vec()).unwrap_or_default()
            } else {
                Vec::new()
            };
            if contents.len() + data.len() > LARGEST_FILE {
                return Err(StorageError::TooLarge);
            }
            contents.extend_from_slice(data);
            files.insert(key.as_str(), contents.as_slice()).map_err(failed)?;
            let mut modified = write.open_table(MODIFIED).map_err(failed)?;
            modified.insert(key.as_str(), now).map_err(failed)?;
        }
        write.commit().map_err(failed)
    }

    /// Removes `account`'s file `name`.
    pub fn delete(&self, account: &str, name: &str) -> Result<(), StorageError> {
        let name = check_name(name)?;
        let key = key(account, name);
        let write = self.database.begin_write()?;
        {
            let mut files = write.open_table(FILES).map_err(failed)?;
            if files.remove(key.as_str()).map_err(failed)?.is_none() {
                return Err(StorageError::NotFound);
            }
            let mut modified = write.open_table(MODIFIED).map_err(failed)?;
            modified.remove(key.as_str()).map_err(failed)?;
        }
        write.commit().map_err(failed)
    }

    /// Renames `account`'s file `old` to `new` (which must not exist).
    pub fn rename(&self, account: &str, old: &str, new: &str) -> Result<(), StorageError> {
        let (old, new) = (key(account, check_name(old)?), key(account, check_name(new)?));
        let write = self.database.begin_write()?;
        {
            let mut files = write.open_table(FILES).map_err(failed)?;
            if files.get(new.as_str()).map_err(failed)?.is_some() {
                return Err(StorageError::Exists);
            }
            let contents = files
                .remove(old.as_str())
                .map_err(failed)?
                .map(|value| value.value().to_vec())
                .ok_or(StorageError::NotFound)?;
            files.insert(new.as_str(), contents.as_slice()).map_err(failed)?;
            let mut modified = write.open_table(MODIFIED).map_err(failed)?;
            let when = modified
                .remove(old.as_str())
                .map_err(failed)?
                .map_or(0, |value| value.value());
            modified.insert(new.as_str(), when).map_err(failed)?;
        }
        write.commit().map_err(failed)
    }

    /// The files and sub-folders directly in `account`'s folder `folder`
    /// (the top with `None`), in name order.
    pub fn list(&self, account: &str, folder: Option<&str>) -> Result<Vec<(String, Listed)>, StorageError> {
        let prefix = match folder {
            Some(folder) => format!("{}/", key(account, check_name(folder)?)),
            None => format!("{account}/"),
        };
        let read = self.database.begin_read()?;
        let files = read.open_table(FILES).map_err(failed)?;
        let modified = read.open_table(MODIFIED).map_err(failed)?;
        let mut listed: Vec<(String, Listed)> = Vec::new();
        for entry in files.range(prefix.as_str()..).map_err(failed)? {
            let (name, contents) = entry.map_err(failed)?;
            let Some(rest) = name.value().strip_prefix(prefix.as_str()) else {
                break;
            };
            match rest.split_once('/') {
                Some((sub, _)) => match listed.last_mut() {
                    Some((last, Listed::Folder { files })) if last == sub => *files += 1,
                    _ => listed.push((sub.to_string(), Listed::Folder { files: 1 })),
                },
                None => {
                    let when = modified
                        .get(name.value())
                        .map_err(failed)?
                        .map_or(0, |value| value.value());
                    listed.push((
                        rest.to_string(),
                        Listed::File {
                            size: contents.value().len() as u64,
                            modified: when,
                        },
                    ));
                }
            }
        }
        Ok(listed)
    }
}

/// One meeting: a parameter and, while a task holds it, that task.
#[derive(Clone, Debug)]
pub struct Meeting {
    pub parameter: Portable,
    pub task: Option<TaskId>,
}

/// Meetings by account, set and key.
#[derive(Debug, Default)]
pub struct Meetings {
    meetings: Mutex<HashMap<(String, String, String), Meeting>>,
}

/// Why a meeting operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MeetingError {
    #[error("meeting already exists")]
    Exists,
    #[error("meeting not found")]
    NotFound,
    #[error("the meeting is active in another task")]
    Busy,
}

impl Meetings {
    fn with<T>(&self, work: impl FnOnce(&mut HashMap<(String, String, String), Meeting>) -> T) -> T {
        let mut meetings = self
            .meetings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        work(&mut meetings)
    }

    /// `CreateMeeting`.
    pub fn create(
        &self,
        account: &str,
        set: &str,
        key: &str,
        parameter: Portable,
    ) -> Result<(), MeetingError> {
        self.with(|meetings| {
            let id = (account.to_string(), set.to_string(), key.to_string());
            if meetings.contains_key(&id) {
                return Err(MeetingError::Exists);
            }
            meetings.insert(
                id,
                Meeting {
                    parameter,
                    task: None,
                },
            );
            Ok(())
        })
    }

    /// `ActivateMeeting` (`task` takes it; `alive` says whether a task
    /// still runs, so a meeting left by a task that ended can be taken) and
    /// `DeactivateMeeting` (`task` lets it go).
    pub fn activate(
        &self,
        account: &str,
        set: &str,
        key: &str,
        parameter: Option<Portable>,
        task: TaskId,
        on: bool,
        alive: impl Fn(TaskId) -> bool,
    ) -> Result<(), MeetingError> {
        self.with(|meetings| {
            let id = (account.to_string(), set.to_string(), key.to_string());
            let meeting = meetings.get_mut(&id).ok_or(MeetingError::NotFound)?;
            match meeting.task {
                Some(holder) if holder != task && alive(holder) => return Err(MeetingError::Busy),
                _ => {}
            }
            meeting.task = on.then_some(task);
            if let Some(parameter) = parameter {
                meeting.parameter = parameter;
            }
            Ok(())
        })
    }

    /// `FindMeeting`: the meeting, its task only while that task runs.
    pub fn find(
        &self,
        account: &str,
        set: &str,
        key: &str,
        alive: impl Fn(TaskId) -> bool,
    ) -> Option<Meeting> {
        self.with(|meetings| {
            let id = (account.to_string(), set.to_string(), key.to_string());
            meetings.get(&id).map(|meeting| Meeting {
                parameter: meeting.parameter.clone(),
                task: meeting.task.filter(|task| alive(*task)),
            })
        })
    }

    /// `ClearMeeting` (the task is forgotten) or `RemoveMeeting`.
    pub fn clear(&self, account: &str, set: &str, key: &str, remove: bool) -> Result<(), MeetingError> {
        self.with(|meetings| {
            let id = (account.to_string(), set.to_string(), key.to_string());
            if remove {
                return meetings.remove(&id).map(drop).ok_or(MeetingError::NotFound);
            }
            let meeting = meetings.get_mut(&id).ok_or(MeetingError::NotFound)?;
            meeting.task = None;
            Ok(())
        })
    }
}

/// Per-account task queues (CGPL §6.11; what call-centre apps build on):
/// tasks wait in a named queue of their account, higher priority first and
/// in the order they came within a priority; another task takes the head.
/// A task that ends leaves its queues (its entries are passed over, then
/// dropped, whenever the queue is next used). Shared by every shard.
#[derive(Debug, Default)]
pub struct Queues {
    queues: Mutex<HashMap<(String, String), Vec<Queued>>>,
    /// The order tasks came in.
    arrivals: std::sync::atomic::AtomicU64,
}

/// A task waiting in a queue.
#[derive(Clone, Debug)]
pub struct Queued {
    pub task: TaskId,
    pub parameter: Portable,
    /// Thousandths (`"1.5"` is 1500).
    priority: i64,
    arrival: u64,
    /// When it first joined (kept when it enqueues again).
    since: std::time::Instant,
}

/// A priority as CG/PL writes it, `"d.ddd"` (`"1.0"`, `"2.5"`, `"10"`), in
/// thousandths; `None` for anything else.
pub fn parse_priority(text: &str) -> Option<i64> {
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty() || whole.len() > 9 || fraction.len() > 3 {
        return None;
    }
    if !whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<3}").parse().ok()?;
    Some(whole * 1000 + fraction)
}

impl Queues {
    fn with<T>(
        &self,
        account: &str,
        queue: &str,
        alive: impl Fn(TaskId) -> bool,
        work: impl FnOnce(&mut Vec<Queued>) -> T,
    ) -> T {
        let mut queues = self
            .queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (account.to_string(), queue.to_string());
        let entries = queues.entry(key.clone()).or_default();
        entries.retain(|entry| alive(entry.task));
        let result = work(entries);
        if entries.is_empty() {
            queues.remove(&key);
        }
        result
    }

    /// `Enqueue`: `task` joins the queue (or, in it already, keeps its
    /// turn with a new parameter and priority). Its length and the task's
    /// position (0 is the head).
    pub fn enqueue(
        &self,
        account: &str,
        queue: &str,
        task: TaskId,
        parameter: Portable,
        priority: i64,
        alive: impl Fn(TaskId) -> bool,
    ) -> (usize, usize) {
        let arrival = self.arrivals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.with(account, queue, alive, |entries| {
            let (arrival, since) = match entries.iter().position(|entry| entry.task == task) {
                Some(index) => {
                    let old = entries.remove(index);
                    (old.arrival, old.since)
                }
                None => (arrival, std::time::Instant::now()),
            };
            let entry = Queued {
                task,
                parameter,
                priority,
                arrival,
                since,
            };
            let place = entries
                .iter()
                .position(|other| {
                    (other.priority, std::cmp::Reverse(other.arrival))
                        < (priority, std::cmp::Reverse(arrival))
                })
                .unwrap_or(entries.len());
            entries.insert(place, entry);
            (entries.len(), place)
        })
    }

    /// `CheckQueue`: the queue's length, and `task`'s position if it is in
    /// it.
    pub fn check(
        &self,
        account: &str,
        queue: &str,
        task: TaskId,
        alive: impl Fn(TaskId) -> bool,
    ) -> (usize, Option<usize>) {
        self.with(account, queue, alive, |entries| {
            (entries.len(), entries.iter().position(|entry| entry.task == task))
        })
    }

    /// `Dequeue`: `task` leaves the queue.
    pub fn dequeue(&self, account: &str, queue: &str, task: TaskId, alive: impl Fn(TaskId) -> bool) {
        self.with(account, queue, alive, |entries| {
            entries.retain(|entry| entry.task != task)
        });
    }

    /// How many tasks wait in the queue, and the longest any has waited.
    pub fn figures(
        &self,
        account: &str,
        queue: &str,
        alive: impl Fn(TaskId) -> bool,
    ) -> (usize, std::time::Duration) {
        self.with(account, queue, alive, |entries| {
            let longest = entries
                .iter()
                .map(|entry| entry.since.elapsed())
                .max()
                .unwrap_or_default();
            (entries.len(), longest)
        })
    }

    /// `ReadQueue`: the head leaves the queue, to whoever asked.
    pub fn read(&self, account: &str, queue: &str, alive: impl Fn(TaskId) -> bool) -> Option<Queued> {
        self.with(account, queue, alive, |entries| {
            (!entries.is_empty()).then(|| entries.remove(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_serve_higher_priorities_first_and_forget_tasks_that_ended() {
        let queues = Queues::default();
        let alive = |_: TaskId| true;
        let (a, b, c) = (TaskId(1), TaskId(2), TaskId(3));
        let who = "pbx@example.com";
        assert_eq!(
            queues.enqueue(who, "sales", a, Portable::str("a"), 1000, alive),
            (1, 0)
        );
        assert_eq!(
            queues.enqueue(who, "sales", b, Portable::str("b"), 1000, alive),
            (2, 1)
        );
        // Higher priority: before both.
        assert_eq!(
            queues.enqueue(who, "sales", c, Portable::str("c"), 2500, alive),
            (3, 0)
        );
        assert_eq!(queues.check(who, "sales", b, alive), (3, Some(2)));
        // Another account's queue of the same name is another queue.
        assert_eq!(queues.check("ivanov@example.com", "sales", b, alive), (0, None));
        // a enqueues again at its priority: it keeps its turn, before b.
        assert_eq!(
            queues.enqueue(who, "sales", a, Portable::str("a2"), 1000, alive),
            (3, 1)
        );
        let head = queues.read(who, "sales", alive).unwrap();
        assert_eq!((head.task, head.parameter), (c, Portable::str("c")));
        // b ended: a task that ends leaves its queues.
        let (length, position) = queues.check(who, "sales", a, |task| task != b);
        assert_eq!((length, position), (1, Some(0)));
        queues.dequeue(who, "sales", a, alive);
        assert!(queues.read(who, "sales", alive).is_none());
        assert_eq!(parse_priority("1.0"), Some(1000));
        assert_eq!(parse_priority("2.25"), Some(2250));
        assert_eq!(parse_priority("10"), Some(10000));
        assert_eq!(parse_priority("-1"), None);
        assert_eq!(parse_priority("1.2345"), None);
        assert_eq!(parse_priority("x"), None);
    }

    #[test]
    fn files_are_written_read_listed_renamed_and_deleted() {
        let storage = Storage::in_memory().unwrap();
        let who = "ivanov@example.com";
        storage.write(who, "voicemail/1.wav", b"one", false, 10).unwrap();
        storage.write(who, "voicemail/2.wav", b"two", false, 20).unwrap();
        storage
            .write(who, "voicemail/old/3.wav", b"3", false, 30)
            .unwrap();
        storage.write(who, "notes", b"a", false, 40).unwrap();
        storage.write(who, "notes", b"b", true, 41).unwrap();
        storage
            .write("petrov@example.com", "voicemail/9.wav", b"x", false, 1)
            .unwrap();
        assert_eq!(storage.read(who, "notes").unwrap(), b"ab");
        assert_eq!(
            storage.list(who, Some("voicemail")).unwrap(),
            vec![
                (
                    "1.wav".into(),
                    Listed::File {
                        size: 3,
                        modified: 10
                    }
                ),
                (
                    "2.wav".into(),
                    Listed::File {
                        size: 3,
                        modified: 20
                    }
                ),
                ("old".into(), Listed::Folder { files: 1 }),
            ]
        );
        assert_eq!(storage.list(who, None).unwrap().len(), 2);
        storage
            .rename(who, "voicemail/1.wav", "voicemail/2.wav")
            .unwrap_err();
        storage
            .rename(who, "voicemail/1.wav", "voicemail/kept.wav")
            .unwrap();
        assert_eq!(storage.read(who, "voicemail/kept.wav").unwrap(), b"one");
        storage.delete(who, "voicemail/kept.wav").unwrap();
        assert_eq!(
            storage.read(who, "voicemail/kept.wav"),
            Err(StorageError::NotFound)
        );
        assert_eq!(
            storage.delete(who, "voicemail/kept.wav"),
            Err(StorageError::NotFound)
        );
    }

    #[test]
    fn names_cannot_leave_the_account() {
        for name in [
            "",
            "/x",
            "../petrov@example.com/x",
            "a//b",
            "a/../b",
            ".hidden",
            "a\\b",
            "a\nb",
        ] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        assert_eq!(check_name("voicemail/").unwrap(), "voicemail");
    }

    #[test]
    fn a_meeting_is_held_by_one_running_task_at_a_time() {
        let meetings = Meetings::default();
        let who = "pbx@example.com";
        meetings.create(who, "conference", "1", Portable::Null).unwrap();
        assert_eq!(
            meetings.create(who, "conference", "1", Portable::Null),
            Err(MeetingError::Exists)
        );
        meetings
            .activate(who, "conference", "1", None, TaskId(1), true, |_| true)
            .unwrap();
        assert_eq!(
            meetings.activate(who, "conference", "1", None, TaskId(2), true, |_| true),
            Err(MeetingError::Busy)
        );
        // Task 1 ended: task 2 may take the room.
        meetings
            .activate(who, "conference", "1", None, TaskId(2), true, |task| {
                task != TaskId(1)
            })
            .unwrap();
        assert_eq!(
            meetings.find(who, "conference", "1", |_| true).unwrap().task,
            Some(TaskId(2))
        );
        assert_eq!(
            meetings.find(who, "conference", "1", |_| false).unwrap().task,
            None
        );
        meetings.clear(who, "conference", "1", true).unwrap();
        assert!(meetings.find(who, "conference", "1", |_| true).is_none());
    }

    /// A scratch folder of its own for a test.
    fn scratch(name: &str) -> std::path::PathBuf {
        let folder = std::env::temp_dir().join(format!("pbx-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        folder
    }

    #[test]
    fn files_that_would_eat_the_reserve_are_refused_and_nothing_else_changes() {
        let folder = scratch("reserve");
        let path = folder.join("storage.redb");
        let free = free_bytes(&folder).expect("statvfs of a temporary folder");
        let who = "ivanov@example.com";
        {
            let storage = Storage::open(&path).unwrap();
            storage.write(who, "voicemail/1.wav", b"first", false, 1).unwrap();
        }
        // A reserve of all the disk has and more: nothing more fits.
        let storage = Storage::open(&path).unwrap().with_reserve(free + 1_000_000_000);
        let refused = storage.write(who, "voicemail/2.wav", b"second", false, 2);
        assert!(
            matches!(refused, Err(StorageError::DiskFull { .. })),
            "{refused:?}"
        );
        let said = refused.unwrap_err().to_string();
        assert!(said.starts_with("the disk is full ("), "{said}");
        // What was kept is still there; reading, deleting and preferences go on.
        assert_eq!(storage.read(who, "voicemail/1.wav").unwrap(), b"first");
        assert_eq!(storage.read(who, "voicemail/2.wav"), Err(StorageError::NotFound));
        storage.keep_pin(who, "4321").unwrap();
        storage.delete(who, "voicemail/1.wav").unwrap();
        // With the reserve the disk can give, files are taken again.
        let storage = storage.with_reserve(0);
        storage
            .write(who, "voicemail/2.wav", b"second", false, 3)
            .unwrap();
        drop(storage);
        let _ = std::fs::remove_dir_all(&folder);
    }

    /// A disk that really is full: a 2 MB tmpfs (where this test may
    /// mount one: root, a kernel that lets it). The write that does not
    /// fit is refused as the disk full; what was kept stays readable, and
    /// once room is made files are taken again, in the same open store.
    #[test]
    fn a_really_full_disk_refuses_the_file_and_keeps_what_was_kept() {
        let folder = scratch("tmpfs");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&folder)
            .output();
        match mounted {
            Ok(output) if output.status.success() => {}
            other => {
                eprintln!("skipped: cannot mount a tmpfs here ({other:?})");
                return;
            }
        }
        struct Unmount(std::path::PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount").arg(&self.0).status();
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _unmount = Unmount(folder.clone());
        let who = "ivanov@example.com";
        let mut storage = Storage::open(&folder.join("storage.redb")).unwrap();
        // As if the free space could not be told: the write itself meets
        // the full disk (ENOSPC), not the reserve's check.
        storage.folder = None;
        storage.write(who, "kept.wav", &[7u8; 100_000], false, 1).unwrap();
        // The disk is filled to its last block by something else.
        let filler = folder.join("filler");
        let free = free_bytes(&folder).unwrap();
        std::fs::write(&filler, vec![0u8; free as usize]).unwrap_or_else(|error| {
            assert_eq!(error.kind(), std::io::ErrorKind::StorageFull, "{error}");
        });
        let refused = storage.write(who, "big.wav", &[1u8; 600_000], false, 2);
        assert!(
            matches!(refused, Err(StorageError::DiskFull { .. })),
            "{refused:?}"
        );
        assert_eq!(storage.read(who, "kept.wav").unwrap(), vec![7u8; 100_000]);
        std::fs::remove_file(&filler).unwrap();
        storage.write(who, "big.wav", &[1u8; 600_000], false, 3).unwrap();
        assert_eq!(storage.read(who, "big.wav").unwrap().len(), 600_000);
        assert_eq!(storage.read(who, "kept.wav").unwrap(), vec![7u8; 100_000]);
    }
}
