//! Virtual telephones (FEATURES.md §6, seed 000 §29): virtual lines logged
//! in on physical phones, kept in the embedded store (`data_dir/hotdesk.redb`)
//! so a restart keeps them.
//!
//! A phone keeps its logins in the order they were made. The settings in
//! force on it are those of the line that logged in last, and only while
//! that line stays logged in: when it logs out the phone's own settings
//! apply again, even if other lines remain; logging one of those in again
//! makes its settings apply. A line is logged in on one phone at a time.
//!
//! PIN guesses are counted per phone and per line: `pin_attempts` wrong
//! ones in a row lock both out for `lockout_minutes`, across calls.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use redb::{Database, ReadableTable, TableDefinition};

use crate::config::HotDeskConfig;
use crate::directory::Account;

/// Each phone's logins, by the phone's address (`ivanov@example.com`).
const DESKS: TableDefinition<&str, &str> = TableDefinition::new("hotdesk_desks");
/// Lock-outs, by `phone:ADDRESS` or `line:ADDRESS`: `failures\tuntil`.
const LOCKS: TableDefinition<&str, &str> = TableDefinition::new("hotdesk_locks");

/// Why a login or logout did not happen, in words a script can show.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HotDeskError {
    #[error("that line has no PIN: it cannot be logged in")]
    NoPin,
    #[error("wrong PIN")]
    WrongPin,
    #[error("locked out for {0} more minutes after wrong PINs")]
    LockedOut(i64),
    #[error("a phone cannot log itself in")]
    Itself,
    #[error("that line is not logged in on this phone")]
    NotLoggedIn,
    #[error("the hot desk store failed: {0}")]
    Store(String),
}

fn failed(error: impl std::fmt::Display) -> HotDeskError {
    HotDeskError::Store(error.to_string())
}

/// One physical phone's logins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Desk {
    /// Lines (addresses) with when each logged in, oldest first.
    lines: Vec<(String, i64)>,
    /// The line whose settings are in force; `None`: the phone's own.
    in_force: Option<String>,
    /// When the phone last made or took a call (or a line logged in).
    active_at: i64,
    /// The `active_at` the store has (it is written at most every
    /// `ACTIVITY_WRITES` seconds of activity, not at every call).
    stored_active_at: i64,
}

/// How much newer a phone's last call must be than the stored one before
/// it is written.
const ACTIVITY_WRITES: i64 = 600;

impl Desk {
    fn to_text(&self) -> String {
        let mut text = format!("{}\t{}\n", self.in_force.as_deref().unwrap_or(""), self.active_at);
        for (line, at) in &self.lines {
            text.push_str(&format!("{line}\t{at}\n"));
        }
        text
    }

    fn from_text(text: &str) -> Option<Desk> {
        let mut rows = text.lines();
        let (in_force, active_at) = rows.next()?.split_once('\t')?;
        let lines = rows
            .map(|row| {
                let (line, at) = row.split_once('\t')?;
                Some((line.to_string(), at.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()?;
        let active_at = active_at.parse().ok()?;
        Some(Desk {
            lines,
            in_force: Some(in_force.to_string()).filter(|line| !line.is_empty()),
            active_at,
            stored_active_at: active_at,
        })
    }
}

/// Wrong PINs in a row, and until when a lock-out lasts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Lock {
    failures: u32,
    until: i64,
}

#[derive(Debug, Default)]
struct State {
    desks: BTreeMap<String, Desk>,
    locks: HashMap<String, Lock>,
}

/// What a login did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedIn {
    /// The phone the line was logged out of to be logged in here.
    pub moved_from: Option<String>,
    /// Whether it was logged in here already (a login again).
    pub again: bool,
}

/// The logins of every phone, and the lock-outs.
pub struct HotDesk {
    database: Database,
    config: HotDeskConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for HotDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HotDesk")
    }
}

fn phone_key(phone: &str) -> String {
    format!("phone:{phone}")
}

fn line_key(line: &str) -> String {
    format!("line:{line}")
}

/// Compares PINs without stopping at the first difference.
pub(crate) fn same_pin(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

impl HotDesk {
    /// Opens (or creates) the store at `path`, and reads what it keeps.
    pub fn open(path: &Path, config: HotDeskConfig) -> Result<HotDesk, HotDeskError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        HotDesk::prepared(Database::create(path).map_err(failed)?, config)
    }

    /// A store in memory only (simulations and tests).
    pub fn in_memory(config: HotDeskConfig) -> Result<HotDesk, HotDeskError> {
        let database = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(failed)?;
        HotDesk::prepared(database, config)
    }

    fn prepared(database: Database, config: HotDeskConfig) -> Result<HotDesk, HotDeskError> {
        let write = database.begin_write().map_err(failed)?;
        write.open_table(DESKS).map_err(failed)?;
        write.open_table(LOCKS).map_err(failed)?;
        write.commit().map_err(failed)?;
        let mut state = State::default();
        {
            let read = database.begin_read().map_err(failed)?;
            for entry in read.open_table(DESKS).map_err(failed)?.iter().map_err(failed)? {
                let (phone, text) = entry.map_err(failed)?;
                match Desk::from_text(text.value()) {
                    Some(desk) => {
                        state.desks.insert(phone.value().to_string(), desk);
                    }
                    None => tracing::warn!(phone = phone.value(), "hot desk logins not readable: dropped"),
                }
            }
            for entry in read.open_table(LOCKS).map_err(failed)?.iter().map_err(failed)? {
                let (key, text) = entry.map_err(failed)?;
                let lock = text
                    .value()
                    .split_once('\t')
                    .and_then(|(failures, until)| {
                        Some(Lock {
                            failures: failures.parse().ok()?,
                            until: until.parse().ok()?,
                        })
                    })
                    .unwrap_or_default();
                state.locks.insert(key.value().to_string(), lock);
            }
        }
        Ok(HotDesk {
            database,
            config,
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes the desks and locks named (their state now) in one
    /// transaction.
    fn save(&self, state: &mut State, phones: &[&str], locks: &[String]) -> Result<(), HotDeskError> {
        let write = self.database.begin_write().map_err(failed)?;
        {
            let mut desks = write.open_table(DESKS).map_err(failed)?;
            for phone in phones {
                match state.desks.get_mut(*phone) {
                    Some(desk) => {
                        desks.insert(*phone, desk.to_text().as_str()).map_err(failed)?;
                        desk.stored_active_at = desk.active_at;
                    }
                    None => {
                        desks.remove(*phone).map_err(failed)?;
                    }
                }
            }
            let mut table = write.open_table(LOCKS).map_err(failed)?;
            for key in locks {
                match state.locks.get(key) {
                    Some(lock) => {
                        table
                            .insert(
                                key.as_str(),
                                format!("{}\t{}", lock.failures, lock.until).as_str(),
                            )
                            .map_err(failed)?;
                    }
                    None => {
                        table.remove(key.as_str()).map_err(failed)?;
                    }
                }
            }
        }
        write.commit().map_err(failed)
    }

    /// Logs `line` in on `phone`. A line logged in here already needs no
    /// PIN: its settings come into force again. Otherwise `pin` must be
    /// the line's, and neither the phone nor the line may be locked out.
    pub fn login(
        &self,
        phone: &Account,
        line: &Account,
        pin: Option<&str>,
        now: i64,
    ) -> Result<LoggedIn, HotDeskError> {
        let (phone, line_address) = (phone.address(), line.address());
        if phone == line_address {
            return Err(HotDeskError::Itself);
        }
        let mut state = self.state();
        let again = state
            .desks
            .get(&phone)
            .is_some_and(|desk| desk.lines.iter().any(|(known, _)| *known == line_address));
        let mut locks = Vec::new();
        if !again {
            let expected = line.pin().ok_or(HotDeskError::NoPin)?;
            let keys = [phone_key(&phone), line_key(&line_address)];
            let until = keys
                .iter()
                .filter_map(|key| state.locks.get(key))
                .map(|lock| lock.until)
                .max()
                .unwrap_or(0);
            if until > now {
                return Err(HotDeskError::LockedOut((until - now + 59) / 60));
            }
            let right = pin.is_some_and(|pin| same_pin(pin, &expected));
            for key in &keys {
                if right {
                    state.locks.remove(key);
                } else {
                    let lock = state.locks.entry(key.clone()).or_default();
                    lock.failures += 1;
                    if lock.failures >= self.config.pin_attempts.max(1) {
                        lock.failures = 0;
                        lock.until = now + 60 * self.config.lockout_minutes as i64;
                    }
                }
            }
            locks.extend(keys);
            if !right {
                self.save(&mut state, &[], &locks)?;
                tracing::info!(%phone, line = %line_address, "hot desk login refused: wrong PIN");
                return Err(HotDeskError::WrongPin);
            }
        }
        // A line is logged in on one phone at a time.
        let moved_from = state
            .desks
            .iter()
            .find(|(other, desk)| {
                **other != phone && desk.lines.iter().any(|(known, _)| *known == line_address)
            })
            .map(|(other, _)| other.clone());
        if let Some(other) = &moved_from {
            remove_line(&mut state, other, &line_address);
        }
        let desk = state.desks.entry(phone.clone()).or_default();
        desk.lines.retain(|(known, _)| *known != line_address);
        desk.lines.push((line_address.clone(), now));
        desk.in_force = Some(line_address.clone());
        desk.active_at = now;
        let mut phones = vec![phone.as_str()];
        phones.extend(moved_from.as_deref());
        self.save(&mut state, &phones, &locks)?;
        tracing::info!(%phone, line = %line_address, again, "hot desk login");
        Ok(LoggedIn { moved_from, again })
    }

    /// Logs `line` out of `phone`; the phone's own settings apply again if
    /// the line's were in force.
    pub fn logout(&self, phone: &str, line: &str) -> Result<(), HotDeskError> {
        let mut state = self.state();
        if !remove_line(&mut state, phone, line) {
            return Err(HotDeskError::NotLoggedIn);
        }
        self.save(&mut state, &[phone], &[])?;
        tracing::info!(%phone, %line, "hot desk logout");
        Ok(())
    }

    /// The lines logged in on `phone`, oldest login first.
    pub fn lines(&self, phone: &str) -> Vec<String> {
        self.state()
            .desks
            .get(phone)
            .map(|desk| desk.lines.iter().map(|(line, _)| line.clone()).collect())
            .unwrap_or_default()
    }

    /// The line whose settings are in force on `phone`, if not its own.
    pub fn in_force(&self, phone: &str) -> Option<String> {
        self.state().desks.get(phone)?.in_force.clone()
    }

    /// The phones `line` is logged in on (one at most).
    pub fn phones_of(&self, line: &str) -> Vec<String> {
        self.state()
            .desks
            .iter()
            .filter(|(_, desk)| desk.lines.iter().any(|(known, _)| known == line))
            .map(|(phone, _)| phone.clone())
            .collect()
    }

    /// `phone` made or took a call now (for the idle logout). Kept in
    /// memory, and written when it is `ACTIVITY_WRITES` newer than what
    /// the store has (a restart may bring a logout that much earlier).
    pub fn touch(&self, phone: &str, now: i64) {
        let mut state = self.state();
        let Some(desk) = state.desks.get_mut(phone) else {
            return;
        };
        desk.active_at = desk.active_at.max(now);
        if desk.active_at - desk.stored_active_at >= ACTIVITY_WRITES {
            if let Err(error) = self.save(&mut state, &[phone], &[]) {
                tracing::warn!(%error, "hot desk activity not stored");
            }
        }
    }

    /// Logs out what has been idle `idle_hours`, and, when `daily_at` (the
    /// last daily logout time, in seconds) is later than a login, that
    /// login. Returns `(phone, line)` for each logout.
    pub fn expire(&self, now: i64, daily_at: Option<i64>) -> Vec<(String, String)> {
        let idle = (self.config.idle_hours > 0).then(|| 3600 * self.config.idle_hours as i64);
        let mut state = self.state();
        let mut gone = Vec::new();
        for (phone, desk) in state.desks.iter_mut() {
            let idle_out = idle.is_some_and(|idle| now - desk.active_at >= idle);
            let before = desk.lines.len();
            desk.lines.retain(|(line, at)| {
                let out = idle_out || daily_at.is_some_and(|daily| *at < daily && daily <= now);
                if out {
                    gone.push((phone.clone(), line.clone()));
                }
                !out
            });
            if desk.lines.len() != before
                && desk
                    .in_force
                    .as_ref()
                    .is_some_and(|line| !desk.lines.iter().any(|(known, _)| known == line))
            {
                desk.in_force = None;
            }
        }
        let phones: Vec<String> = gone.iter().map(|(phone, _)| phone.clone()).collect();
        state.desks.retain(|_, desk| !desk.lines.is_empty());
        if !gone.is_empty() {
            let phones: Vec<&str> = phones.iter().map(String::as_str).collect();
            if let Err(error) = self.save(&mut state, &phones, &[]) {
                tracing::warn!(%error, "hot desk logouts not stored");
            }
            for (phone, line) in &gone {
                tracing::info!(%phone, %line, "hot desk: logged out automatically");
            }
        }
        gone
    }
}

/// When the daily logout at `at` (local time in `zone`) last came, at or
/// before `now` (seconds since the epoch).
pub fn last_daily(now: i64, at: jiff::civil::Time, zone: &jiff::tz::TimeZone) -> Option<i64> {
    let today = jiff::Timestamp::from_second(now)
        .ok()?
        .to_zoned(zone.clone())
        .date();
    let moment = |date: jiff::civil::Date| {
        Some(
            date.to_datetime(at)
                .to_zoned(zone.clone())
                .ok()?
                .timestamp()
                .as_second(),
        )
    };
    let this_day = moment(today)?;
    if this_day <= now {
        Some(this_day)
    } else {
        moment(today.yesterday().ok()?)
    }
}

/// Logs out idle lines, and at the daily logout time, every minute until
/// the runtime goes (on its I/O executor).
pub(crate) fn start_expiry(runtime: &crate::runtime::Runtime) {
    let at = runtime.config.hotdesk.logout_time().ok().flatten();
    if at.is_none() && runtime.config.hotdesk.idle_hours == 0 {
        return;
    }
    let weak = runtime.downgrade();
    runtime.io.spawn(async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            ticks.tick().await;
            let Some(runtime) = weak.upgrade() else { return };
            let now = jiff::Timestamp::now().as_second();
            let daily = at.and_then(|at| last_daily(now, at, &runtime.server_zone));
            runtime.hotdesk.expire(now, daily);
        }
    });
}

/// Takes `line` off `phone`; true when it was there.
fn remove_line(state: &mut State, phone: &str, line: &str) -> bool {
    let Some(desk) = state.desks.get_mut(phone) else {
        return false;
    };
    let before = desk.lines.len();
    desk.lines.retain(|(known, _)| known != line);
    if desk.in_force.as_deref() == Some(line) {
        desk.in_force = None;
    }
    let removed = desk.lines.len() != before;
    if desk.lines.is_empty() {
        state.desks.remove(phone);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::directory::Directory;

    fn directory() -> Directory {
        let config = Config::parse(
            "[domains.\"example.com\".accounts.desk1]\n[domains.\"example.com\".accounts.desk2]\n\
             [domains.\"example.com\".accounts.anna]\npin = \"1111\"\n\
             [domains.\"example.com\".accounts.boris]\npin = \"2222\"\n\
             [domains.\"example.com\".accounts.vera]\npin = \"3333\"\n",
            "t",
            &[],
        )
        .unwrap();
        Directory::from_config(&config).unwrap()
    }

    /// A fresh folder for a test's store, and the store's path in it.
    fn scratch_store(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("hotdesk.redb");
        (dir, path)
    }

    #[test]
    fn the_last_login_is_in_force_until_it_logs_out() {
        let directory = directory();
        let find = |name: &str| directory.find(name, "example.com").unwrap();
        let (desk, anna, boris) = (find("desk1"), find("anna"), find("boris"));
        let hotdesk = HotDesk::in_memory(HotDeskConfig::default()).unwrap();
        hotdesk.login(&desk, &anna, Some("1111"), 10).unwrap();
        hotdesk.login(&desk, &boris, Some("2222"), 20).unwrap();
        assert_eq!(
            hotdesk.in_force("desk1@example.com").as_deref(),
            Some("boris@example.com")
        );
        assert_eq!(
            hotdesk.lines("desk1@example.com"),
            ["anna@example.com", "boris@example.com"]
        );
        // Boris logs out: the phone's own settings, though Anna remains.
        hotdesk.logout("desk1@example.com", "boris@example.com").unwrap();
        assert_eq!(hotdesk.in_force("desk1@example.com"), None);
        assert_eq!(hotdesk.lines("desk1@example.com"), ["anna@example.com"]);
        // Anna logs in again, without her PIN: hers apply.
        let again = hotdesk.login(&desk, &anna, None, 30).unwrap();
        assert!(again.again);
        assert_eq!(
            hotdesk.in_force("desk1@example.com").as_deref(),
            Some("anna@example.com")
        );
    }

    #[test]
    fn a_line_moves_to_the_phone_it_logs_in_on() {
        let directory = directory();
        let find = |name: &str| directory.find(name, "example.com").unwrap();
        let hotdesk = HotDesk::in_memory(HotDeskConfig::default()).unwrap();
        hotdesk
            .login(&find("desk1"), &find("vera"), Some("3333"), 1)
            .unwrap();
        let moved = hotdesk
            .login(&find("desk2"), &find("vera"), Some("3333"), 2)
            .unwrap();
        assert_eq!(moved.moved_from.as_deref(), Some("desk1@example.com"));
        assert_eq!(hotdesk.phones_of("vera@example.com"), ["desk2@example.com"]);
        assert!(hotdesk.lines("desk1@example.com").is_empty());
        assert_eq!(hotdesk.in_force("desk1@example.com"), None);
    }

    #[test]
    fn wrong_pins_lock_the_phone_and_the_line_out_across_calls() {
        let directory = directory();
        let find = |name: &str| directory.find(name, "example.com").unwrap();
        let hotdesk = HotDesk::in_memory(HotDeskConfig::default()).unwrap();
        let (desk, anna) = (find("desk1"), find("anna"));
        for _ in 0..3 {
            assert_eq!(
                hotdesk.login(&desk, &anna, Some("9999"), 100),
                Err(HotDeskError::WrongPin)
            );
        }
        assert_eq!(
            hotdesk.login(&desk, &anna, Some("1111"), 101),
            Err(HotDeskError::LockedOut(15))
        );
        // The line from another phone, too.
        assert!(matches!(
            hotdesk.login(&find("desk2"), &anna, Some("1111"), 102),
            Err(HotDeskError::LockedOut(_))
        ));
        // Once the lock-out is over, the right PIN works.
        hotdesk.login(&desk, &anna, Some("1111"), 100 + 15 * 60).unwrap();
        assert_eq!(
            hotdesk.login(&desk, &find("desk1"), Some("x"), 1),
            Err(HotDeskError::Itself)
        );
        assert_eq!(
            hotdesk.login(&desk, &find("desk2"), Some("x"), 1),
            Err(HotDeskError::NoPin)
        );
    }

    #[test]
    fn logins_and_lockouts_survive_reopening_and_idle_phones_log_out() {
        let (dir, path) = scratch_store("pbx-hotdesk");
        let directory = directory();
        let find = |name: &str| directory.find(name, "example.com").unwrap();
        {
            let hotdesk = HotDesk::open(&path, HotDeskConfig::default()).unwrap();
            hotdesk
                .login(&find("desk1"), &find("anna"), Some("1111"), 1000)
                .unwrap();
            hotdesk
                .login(&find("desk1"), &find("boris"), Some("2222"), 1001)
                .unwrap();
            let _ = hotdesk.login(&find("desk2"), &find("vera"), Some("0"), 1002);
        }
        let hotdesk = HotDesk::open(&path, HotDeskConfig::default()).unwrap();
        assert_eq!(
            hotdesk.lines("desk1@example.com"),
            ["anna@example.com", "boris@example.com"]
        );
        assert_eq!(
            hotdesk.in_force("desk1@example.com").as_deref(),
            Some("boris@example.com")
        );
        assert_eq!(hotdesk.state().locks[&line_key("vera@example.com")].failures, 1);
        // Twelve hours without a call: both log out.
        assert!(hotdesk.expire(1001 + 11 * 3600, None).is_empty());
        hotdesk.touch("desk1@example.com", 1001 + 11 * 3600);
        assert!(hotdesk.expire(1001 + 12 * 3600, None).is_empty());
        assert_eq!(hotdesk.expire(1001 + 23 * 3600 + 1, None).len(), 2);
        assert!(hotdesk.lines("desk1@example.com").is_empty());
        // The daily logout takes logins made before it.
        hotdesk
            .login(&find("desk2"), &find("anna"), Some("1111"), 5000)
            .unwrap();
        assert!(hotdesk.expire(5100, Some(4000)).is_empty());
        assert_eq!(
            hotdesk.expire(6100, Some(6000)),
            [("desk2@example.com".to_string(), "anna@example.com".to_string())]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_phones_calls_keep_its_lines_across_a_restart() {
        let (dir, path) = scratch_store("pbx-hotdesk-touch");
        let directory = directory();
        let find = |name: &str| directory.find(name, "example.com").unwrap();
        {
            let hotdesk = HotDesk::open(&path, HotDeskConfig::default()).unwrap();
            hotdesk
                .login(&find("desk1"), &find("anna"), Some("1111"), 1000)
                .unwrap();
            // A call ten hours later is written (a minute later is not yet).
            hotdesk.touch("desk1@example.com", 1060);
            hotdesk.touch("desk1@example.com", 1000 + 10 * 3600);
        }
        let hotdesk = HotDesk::open(&path, HotDeskConfig::default()).unwrap();
        // Twelve hours after the login, but two after that call: kept.
        assert!(hotdesk.expire(1000 + 12 * 3600, None).is_empty());
        assert_eq!(hotdesk.expire(1000 + 22 * 3600, None).len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_daily_logout_is_the_last_one_in_local_time() {
        let zone = jiff::tz::TimeZone::get("Europe/Moscow").unwrap();
        let at: jiff::civil::Time = "03:00".parse().unwrap();
        // 2026-12-07 10:00 in Moscow (UTC+3) is 07:00 UTC.
        let now = "2026-12-07T07:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_second();
        let today = "2026-12-07T00:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_second();
        assert_eq!(last_daily(now, at, &zone), Some(today));
        // At 02:00 local, the last one was yesterday's.
        assert_eq!(last_daily(today - 3600, at, &zone), Some(today - 86400));
    }
}
