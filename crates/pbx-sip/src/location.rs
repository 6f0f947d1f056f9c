//! The location store: where each account's devices registered, kept in
//! the embedded store (redb) so registrations survive a restart.
//!
//! A binding is one Contact of one account, with when it expires and the
//! address its REGISTER came from (for a phone behind NAT, the address to
//! send to is that one, not the private address in its Contact).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableTable, TableDefinition};

/// Bindings by account address (`ivanov@example.com`), one per line.
const BINDINGS: TableDefinition<&str, &str> = TableDefinition::new("bindings");

/// One registered contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI, as the device gave it.
    pub contact: String,
    /// Where the REGISTER came from, and how (`udp`/`tcp`).
    pub source: SocketAddr,
    pub transport: String,
    /// Seconds since the Unix epoch when it lapses.
    pub expires_at: u64,
    /// The REGISTER's Call-ID and CSeq: a device refreshing its binding
    /// keeps its Call-ID, and an older CSeq is stale.
    pub call_id: String,
    pub cseq: u32,
    pub user_agent: String,
}

impl Binding {
    fn to_line(&self) -> String {
        // Tabs and line breaks cannot appear in these fields once parsed
        // from SIP headers; they are replaced to keep the format whole.
        let clean = |text: &str| text.replace(['\t', '\n', '\r'], " ");
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            clean(&self.contact),
            self.source,
            clean(&self.transport),
            self.expires_at,
            clean(&self.call_id),
            self.cseq,
            clean(&self.user_agent)
        )
    }

    fn from_line(line: &str) -> Option<Binding> {
        let mut parts = line.split('\t');
        Some(Binding {
            contact: parts.next()?.to_string(),
            source: parts.next()?.parse().ok()?,
            transport: parts.next()?.to_string(),
            expires_at: parts.next()?.parse().ok()?,
            call_id: parts.next()?.to_string(),
            cseq: parts.next()?.parse().ok()?,
            user_agent: parts.next().unwrap_or("").to_string(),
        })
    }

    /// Seconds left, at `now`.
    pub fn remaining(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[error("location store: {0}")]
pub struct StoreError(String);

fn failed(error: impl std::fmt::Display) -> StoreError {
    StoreError(error.to_string())
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// The registrations of every account.
pub struct LocationStore {
    database: Database,
}

impl std::fmt::Debug for LocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocationStore")
    }
}

impl LocationStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<LocationStore, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        let database = Database::create(path).map_err(failed)?;
        let store = LocationStore { database };
        // Make sure the table exists, so reads never fail on a new store.
        let write = store.database.begin_write().map_err(failed)?;
        write.open_table(BINDINGS).map_err(failed)?;
        write.commit().map_err(failed)?;
        Ok(store)
    }

    /// The live bindings of `account`, newest first.
    pub fn lookup(&self, account: &str) -> Result<Vec<Binding>, StoreError> {
        let read = self.database.begin_read().map_err(failed)?;
        let table = read.open_table(BINDINGS).map_err(failed)?;
        let now = now();
        let mut bindings: Vec<Binding> = match table.get(account).map_err(failed)? {
            Some(value) => value
                .value()
                .lines()
                .filter_map(Binding::from_line)
                .filter(|binding| binding.expires_at > now)
                .collect(),
            None => Vec::new(),
        };
        bindings.sort_by_key(|binding| std::cmp::Reverse(binding.expires_at));
        Ok(bindings)
    }

    /// Replaces `account`'s bindings with `bindings` (expired ones dropped).
    pub fn store(&self, account: &str, bindings: &[Binding]) -> Result<(), StoreError> {
        let now = now();
        let text: Vec<String> = bindings
            .iter()
            .filter(|binding| binding.expires_at > now)
            .map(Binding::to_line)
            .collect();
        let write = self.database.begin_write().map_err(failed)?;
        {
            let mut table = write.open_table(BINDINGS).map_err(failed)?;
            if text.is_empty() {
                table.remove(account).map_err(failed)?;
            } else {
                table.insert(account, text.join("\n").as_str()).map_err(failed)?;
            }
        }
        write.commit().map_err(failed)
    }

    /// Every account with a live binding.
    pub fn accounts(&self) -> Result<Vec<String>, StoreError> {
        let read = self.database.begin_read().map_err(failed)?;
        let table = read.open_table(BINDINGS).map_err(failed)?;
        let mut accounts = Vec::new();
        for entry in table.iter().map_err(failed)? {
            let (key, _) = entry.map_err(failed)?;
            accounts.push(key.value().to_string());
        }
        Ok(accounts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, expires_at: u64) -> Binding {
        Binding {
            contact: contact.into(),
            source: "192.0.2.1:5060".parse().unwrap(),
            transport: "udp".into(),
            expires_at,
            call_id: "abc".into(),
            cseq: 1,
            user_agent: "test\tphone".into(),
        }
    }

    #[test]
    fn bindings_survive_reopening_and_expire() {
        let dir = std::env::temp_dir().join(format!("pbx-sip-location-{}", std::process::id()));
        let path = dir.join("store.redb");
        let _ = std::fs::remove_dir_all(&dir);
        {
            let store = LocationStore::open(&path).unwrap();
            let live = binding("sip:ivanov@192.168.1.5:5062", now() + 600);
            let lapsed = binding("sip:ivanov@192.168.1.6:5062", now().saturating_sub(1));
            store.store("ivanov@example.com", &[live, lapsed]).unwrap();
        }
        let store = LocationStore::open(&path).unwrap();
        let found = store.lookup("ivanov@example.com").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].contact, "sip:ivanov@192.168.1.5:5062");
        assert_eq!(found[0].user_agent, "test phone");
        assert_eq!(store.accounts().unwrap(), ["ivanov@example.com"]);
        store.store("ivanov@example.com", &[]).unwrap();
        assert!(store.lookup("ivanov@example.com").unwrap().is_empty());
        assert!(store.accounts().unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
