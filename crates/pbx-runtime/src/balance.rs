//! Named balances per account, as CommuniGate's Billing Manager keeps them
//! (FEATURES.md §9; seed 004): Parlay X Payment and Account Management
//! (`pbx-http`) and the CG/PL built-in `DoBalance` work on the same ones.
//!
//! An account has any number of balances, named (`main` when no name is
//! given), each with the funds available and the funds reserved. Amounts
//! are whole thousandths of the currency unit (`Amount`), so no decimal
//! is ever rounded. A balance takes the currency of the first change that
//! names one, and refuses changes in another.
//!
//! - A charge takes funds from what is available; one that would leave
//!   less than nothing is refused and changes nothing.
//! - A credit (a refund, a top-up) adds to it.
//! - A reservation moves funds from available to reserved (refused like a
//!   charge when they are not there) and can be extended; charging a
//!   reservation takes at most what it holds; releasing it returns what is
//!   left.
//!
//! Every change is one redb transaction in `storage.redb` that updates
//! the balance, the reservation, and appends an entry to the account's
//! history, so a crash leaves all of a change or none of it. A reference
//! (Parlay X's `referenceCode`) may be used once per account: the same
//! request sent again is refused instead of charging twice.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

/// The balance meant when none is named.
pub const DEFAULT_BALANCE: &str = "main";

/// Balances by `account@domain\tname`: a `BalanceRow` in JSON.
const BALANCES: TableDefinition<&str, &str> = TableDefinition::new("balances");
/// Open reservations by number: a `ReservationRow` in JSON.
const RESERVATIONS: TableDefinition<u64, &str> = TableDefinition::new("balance_reservations");
/// Each account's history, by account and sequence number: an `Entry`
/// in JSON.
const HISTORY: TableDefinition<(&str, u64), &str> = TableDefinition::new("balance_history");
/// References used, by `account@domain\treference`: the history entry.
const REFERENCES: TableDefinition<&str, u64> = TableDefinition::new("balance_references");
/// The next number for reservations and history entries (one sequence).
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("balance_counters");
const NEXT: &str = "next";

/// Thousandths in a unit of currency.
const PER_UNIT: i64 = 1000;
/// The largest amount taken: a thousand billion units.
const LARGEST: i64 = 1_000_000_000_000 * PER_UNIT;
/// The most history entries one read returns.
pub const MOST_ENTRIES: usize = 1000;

/// An amount of money in thousandths of its unit (`1.5` is 1500).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Amount(pub i64);

impl Amount {
    /// Reads a decimal (`12`, `12.5`, `-0.125`, `.5`): at most three
    /// places that are not zero, at most a thousand billion.
    pub fn parse(text: &str) -> Result<Amount, BalanceError> {
        let bad = || BalanceError::BadAmount(text.chars().take(40).collect());
        let trimmed = text.trim();
        let (negative, digits) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
            return Err(bad());
        }
        let whole = whole.trim_start_matches('0');
        if whole.len() > 13 {
            return Err(bad());
        }
        // Places past the third must be zeros: nothing is rounded away.
        let (places, rest) = fraction.split_at(fraction.len().min(3));
        if rest.bytes().any(|byte| byte != b'0') {
            return Err(bad());
        }
        let units: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let thousandths: i64 = format!("{places:0<3}").parse().map_err(|_| bad())?;
        let value = units
            .checked_mul(PER_UNIT)
            .and_then(|value| value.checked_add(thousandths))
            .filter(|value| *value <= LARGEST)
            .ok_or_else(bad)?;
        Ok(Amount(if negative { -value } else { value }))
    }

    /// An amount given in thousandths, if within bounds.
    pub fn thousandths(value: i64) -> Result<Amount, BalanceError> {
        if value.checked_abs().is_some_and(|magnitude| magnitude <= LARGEST) {
            Ok(Amount(value))
        } else {
            Err(BalanceError::BadAmount(value.to_string()))
        }
    }

    /// Whether it is more than nothing.
    pub fn is_positive(self) -> bool {
        self.0 > 0
    }
}

/// Two places at least, three when the third is not zero: `1.50`,
/// `0.125`, `-3.00`.
impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let (units, thousandths) = (magnitude / 1000, magnitude % 1000);
        if thousandths % 10 == 0 {
            write!(f, "{sign}{units}.{:02}", thousandths / 10)
        } else {
            write!(f, "{sign}{units}.{thousandths:03}")
        }
    }
}

/// Why a balance operation was refused, in words a script or a client
/// can show.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum BalanceError {
    #[error("bad amount: {0}")]
    BadAmount(String),
    #[error("the amount must be more than zero")]
    NotPositive,
    #[error("bad balance name: {0}")]
    BadName(String),
    #[error("bad currency: {0}")]
    BadCurrency(String),
    #[error("the balance is kept in {0}")]
    OtherCurrency(String),
    #[error("insufficient funds: {available} available")]
    Insufficient { available: Amount },
    #[error("no such reservation")]
    NoReservation,
    #[error("the charge is more than the {reserved} reserved")]
    BeyondReservation { reserved: Amount },
    #[error("reference {0} was used already")]
    UsedReference(String),
    #[error("balances failed: {0}")]
    Store(String),
}

fn store_failed(error: impl std::fmt::Display) -> BalanceError {
    BalanceError::Store(error.to_string())
}

/// Checks a balance name (empty means `main`): at most 64 characters,
/// none of them a control character.
pub fn balance_name(name: &str) -> Result<&str, BalanceError> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(DEFAULT_BALANCE);
    }
    if name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(BalanceError::BadName(name.chars().take(40).collect()));
    }
    Ok(name)
}

/// Checks a currency code: letters and digits, at most 8, upper-cased.
pub fn currency_code(code: &str) -> Result<String, BalanceError> {
    let code = code.trim();
    if code.is_empty() || code.len() > 8 || !code.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
        return Err(BalanceError::BadCurrency(code.chars().take(20).collect()));
    }
    Ok(code.to_ascii_uppercase())
}

/// One balance as it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balance {
    pub name: String,
    /// What may be charged or reserved.
    pub available: Amount,
    /// What open reservations hold.
    pub reserved: Amount,
    pub currency: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct BalanceRow {
    available: i64,
    reserved: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
}

/// An open reservation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The account, `name@domain`.
    pub account: String,
    pub balance: String,
    /// What it holds now.
    pub amount: Amount,
    /// When it was made, in seconds since 1970.
    pub created: i64,
}

/// What a history entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    Charge,
    Credit,
    Reserve,
    ChargeReservation,
    Release,
}

impl Kind {
    /// The name histories show.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Charge => "charge",
            Kind::Credit => "credit",
            Kind::Reserve => "reserve",
            Kind::ChargeReservation => "chargeReservation",
            Kind::Release => "release",
        }
    }
}

/// One change of a balance, as the history keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its place in the account's history (later changes, larger).
    #[serde(skip)]
    pub sequence: u64,
    /// Seconds since 1970.
    pub time: i64,
    pub balance: String,
    pub kind: Kind,
    /// The amount the change was for (never negative).
    pub amount: Amount,
    /// The balance's available and reserved funds after it.
    pub available: Amount,
    pub reserved: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<u64>,
    /// Who asked: an account's address, or a program's name.
    #[serde(default)]
    pub by: String,
}

/// What a change is for, besides the account.
#[derive(Clone, Debug, Default)]
pub struct Change {
    /// The balance's name (checked with `balance_name`).
    pub balance: String,
    pub amount: Amount,
    /// A currency code (checked with `currency_code`).
    pub currency: Option<String>,
    pub description: String,
    pub code: Option<String>,
    pub reference: Option<String>,
    /// Who asks (for the history).
    pub by: String,
    /// Seconds since 1970.
    pub now: i64,
}

/// Which entries a history read returns.
#[derive(Clone, Debug)]
pub struct HistoryQuery {
    /// One balance, or all of them.
    pub balance: Option<String>,
    /// Entries from this time on (seconds since 1970).
    pub from: Option<i64>,
    /// Entries before this time.
    pub until: Option<i64>,
    /// At most this many, the latest (at most `MOST_ENTRIES`).
    pub most: usize,
}

impl HistoryQuery {
    /// The latest `most` entries, of every balance.
    pub fn latest(most: usize) -> HistoryQuery {
        HistoryQuery {
            balance: None,
            from: None,
            until: None,
            most,
        }
    }
}

/// Every account's balances, in the store's database.
pub struct Balances<'a> {
    database: &'a crate::store::Db,
}

/// Makes the tables (a new store has none).
pub(crate) fn create_tables(write: &WriteTransaction) -> Result<(), redb::TableError> {
    write.open_table(BALANCES)?;
    write.open_table(RESERVATIONS)?;
    write.open_table(HISTORY)?;
    write.open_table(REFERENCES)?;
    write.open_table(COUNTERS)?;
    Ok(())
}

fn key(account: &str, name: &str) -> String {
    format!("{account}\t{name}")
}

fn to_json(value: &impl Serialize) -> Result<String, BalanceError> {
    serde_json::to_string(value).map_err(store_failed)
}

fn from_json<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, BalanceError> {
    serde_json::from_str(text).map_err(store_failed)
}

fn balance_of(name: &str, row: &BalanceRow) -> Balance {
    Balance {
        name: name.to_string(),
        available: Amount(row.available),
        reserved: Amount(row.reserved),
        currency: row.currency.clone(),
    }
}

/// The work of one change, inside its write transaction.
struct Tx<'t> {
    write: &'t WriteTransaction,
}

impl Tx<'_> {
    fn row(&self, account: &str, name: &str) -> Result<BalanceRow, BalanceError> {
        let table = self.write.open_table(BALANCES).map_err(store_failed)?;
        let found = table.get(key(account, name).as_str()).map_err(store_failed)?;
        match found {
            Some(text) => from_json(text.value()),
            None => Ok(BalanceRow::default()),
        }
    }

    fn put_row(&self, account: &str, name: &str, row: &BalanceRow) -> Result<(), BalanceError> {
        let mut table = self.write.open_table(BALANCES).map_err(store_failed)?;
        table
            .insert(key(account, name).as_str(), to_json(row)?.as_str())
            .map_err(store_failed)?;
        Ok(())
    }

    fn next_number(&self) -> Result<u64, BalanceError> {
        let mut table = self.write.open_table(COUNTERS).map_err(store_failed)?;
        let next = table
            .get(NEXT)
            .map_err(store_failed)?
            .map_or(1, |value| value.value());
        table.insert(NEXT, next + 1).map_err(store_failed)?;
        Ok(next)
    }

    /// Takes the change's currency for the balance (the first one named
    /// stays), or refuses another.
    fn currency(&self, row: &mut BalanceRow, change: &Change) -> Result<(), BalanceError> {
        match (&row.currency, &change.currency) {
            (Some(kept), Some(asked)) if kept != asked => Err(BalanceError::OtherCurrency(kept.clone())),
            (None, Some(asked)) => {
                row.currency = Some(asked.clone());
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Refuses a reference used before on the account; else notes it.
    fn reference(&self, account: &str, change: &Change, sequence: u64) -> Result<(), BalanceError> {
        let Some(reference) = change.reference.as_deref().filter(|text| !text.is_empty()) else {
            return Ok(());
        };
        let mut table = self.write.open_table(REFERENCES).map_err(store_failed)?;
        let id = key(account, reference);
        if table.get(id.as_str()).map_err(store_failed)?.is_some() {
            return Err(BalanceError::UsedReference(reference.chars().take(80).collect()));
        }
        table.insert(id.as_str(), sequence).map_err(store_failed)?;
        Ok(())
    }

    /// Appends the history entry of a change that left the balance `row`.
    fn record(
        &self,
        account: &str,
        kind: Kind,
        change: &Change,
        row: &BalanceRow,
        reservation: Option<u64>,
    ) -> Result<(), BalanceError> {
        let sequence = self.next_number()?;
        self.reference(account, change, sequence)?;
        let entry = Entry {
            sequence,
            time: change.now,
            balance: change.balance.clone(),
            kind,
            amount: change.amount,
            available: Amount(row.available),
            reserved: Amount(row.reserved),
            currency: row.currency.clone(),
            description: change.description.clone(),
            code: change.code.clone(),
            reference: change.reference.clone(),
            reservation,
            by: change.by.clone(),
        };
        let mut table = self.write.open_table(HISTORY).map_err(store_failed)?;
        table
            .insert((account, sequence), to_json(&entry)?.as_str())
            .map_err(store_failed)?;
        Ok(())
    }

    fn reservation(&self, account: &str, id: u64) -> Result<Reservation, BalanceError> {
        let table = self.write.open_table(RESERVATIONS).map_err(store_failed)?;
        let found = table.get(id).map_err(store_failed)?;
        let reservation: Reservation = match found {
            Some(text) => from_json(text.value())?,
            None => return Err(BalanceError::NoReservation),
        };
        if reservation.account != account {
            return Err(BalanceError::NoReservation);
        }
        Ok(reservation)
    }

    fn put_reservation(&self, id: u64, reservation: Option<&Reservation>) -> Result<(), BalanceError> {
        let mut table = self.write.open_table(RESERVATIONS).map_err(store_failed)?;
        match reservation {
            Some(reservation) => {
                table
                    .insert(id, to_json(reservation)?.as_str())
                    .map_err(store_failed)?;
            }
            None => {
                table.remove(id).map_err(store_failed)?;
            }
        }
        Ok(())
    }
}

fn checked(change: &Change) -> Result<(), BalanceError> {
    if !change.amount.is_positive() {
        return Err(BalanceError::NotPositive);
    }
    Amount::thousandths(change.amount.0)?;
    balance_name(&change.balance)?;
    Ok(())
}

impl<'a> Balances<'a> {
    pub(crate) fn new(database: &'a crate::store::Db) -> Balances<'a> {
        Balances { database }
    }

    /// Runs `work` in one write transaction: committed when it succeeds,
    /// dropped (nothing changed) when it fails.
    fn change<T>(&self, work: impl FnOnce(&Tx<'_>) -> Result<T, BalanceError>) -> Result<T, BalanceError> {
        let write = self.database.begin_write().map_err(store_failed)?;
        let result = work(&Tx { write: &write });
        match result {
            Ok(value) => {
                write.commit().map_err(store_failed)?;
                Ok(value)
            }
            Err(error) => {
                write.abort().map_err(store_failed)?;
                Err(error)
            }
        }
    }

    /// Balance `name` of `account` (nothing in it when never used).
    pub fn read(&self, account: &str, name: &str) -> Result<Balance, BalanceError> {
        let name = balance_name(name)?;
        let read = self.database.begin_read().map_err(store_failed)?;
        let table = read.open_table(BALANCES).map_err(store_failed)?;
        let found = table.get(key(account, name).as_str()).map_err(store_failed)?;
        let row = match found {
            Some(text) => from_json(text.value())?,
            None => BalanceRow::default(),
        };
        Ok(balance_of(name, &row))
    }

    /// Every balance `account` has used, by name.
    pub fn list(&self, account: &str) -> Result<Vec<Balance>, BalanceError> {
        let prefix = format!("{account}\t");
        let read = self.database.begin_read().map_err(store_failed)?;
        let table = read.open_table(BALANCES).map_err(store_failed)?;
        let mut balances = Vec::new();
        for entry in table.range(prefix.as_str()..).map_err(store_failed)? {
            let (id, text) = entry.map_err(store_failed)?;
            let Some(name) = id.value().strip_prefix(prefix.as_str()) else {
                break;
            };
            balances.push(balance_of(name, &from_json(text.value())?));
        }
        Ok(balances)
    }

    /// Takes `change.amount` from what is available, or refuses when
    /// there is not that much.
    pub fn charge(&self, account: &str, change: &Change) -> Result<Balance, BalanceError> {
        checked(change)?;
        self.change(|tx| {
            let mut row = tx.row(account, &change.balance)?;
            tx.currency(&mut row, change)?;
            if row.available < change.amount.0 {
                return Err(BalanceError::Insufficient {
                    available: Amount(row.available),
                });
            }
            row.available -= change.amount.0;
            tx.put_row(account, &change.balance, &row)?;
            tx.record(account, Kind::Charge, change, &row, None)?;
            Ok(balance_of(&change.balance, &row))
        })
    }

    /// Adds `change.amount` to what is available (a refund, a top-up).
    pub fn credit(&self, account: &str, change: &Change) -> Result<Balance, BalanceError> {
        checked(change)?;
        self.change(|tx| {
            let mut row = tx.row(account, &change.balance)?;
            tx.currency(&mut row, change)?;
            row.available = Amount::thousandths(row.available + change.amount.0)?.0;
            tx.put_row(account, &change.balance, &row)?;
            tx.record(account, Kind::Credit, change, &row, None)?;
            Ok(balance_of(&change.balance, &row))
        })
    }

    /// Reserves `change.amount`: a new reservation, or more for
    /// `extend` (which must be `account`'s, on the same balance). Refused
    /// when that much is not available. Returns the reservation's number.
    pub fn reserve(
        &self,
        account: &str,
        change: &Change,
        extend: Option<u64>,
    ) -> Result<(u64, Balance), BalanceError> {
        checked(change)?;
        self.change(|tx| {
            let (id, mut reservation) = match extend {
                Some(id) => {
                    let reservation = tx.reservation(account, id)?;
                    if reservation.balance != change.balance {
                        return Err(BalanceError::NoReservation);
                    }
                    (id, reservation)
                }
                None => (
                    tx.next_number()?,
                    Reservation {
                        account: account.to_string(),
                        balance: change.balance.clone(),
                        amount: Amount(0),
                        created: change.now,
                    },
                ),
            };
            let mut row = tx.row(account, &change.balance)?;
            tx.currency(&mut row, change)?;
            if row.available < change.amount.0 {
                return Err(BalanceError::Insufficient {
                    available: Amount(row.available),
                });
            }
            row.available -= change.amount.0;
            row.reserved += change.amount.0;
            reservation.amount = Amount(reservation.amount.0 + change.amount.0);
            tx.put_row(account, &change.balance, &row)?;
            tx.put_reservation(id, Some(&reservation))?;
            tx.record(account, Kind::Reserve, change, &row, Some(id))?;
            Ok((id, balance_of(&change.balance, &row)))
        })
    }

    /// Reservation `id`, while it is open.
    pub fn reservation(&self, id: u64) -> Result<Option<Reservation>, BalanceError> {
        let read = self.database.begin_read().map_err(store_failed)?;
        let table = read.open_table(RESERVATIONS).map_err(store_failed)?;
        let found = table.get(id).map_err(store_failed)?;
        found.map(|text| from_json(text.value())).transpose()
    }

    /// Charges `change.amount` from reservation `id` (which must be
    /// `account`'s; its balance, whatever `change.balance` says): at most
    /// what it holds. With `release`, what is left goes back to the
    /// available funds and the reservation closes.
    pub fn charge_reservation(
        &self,
        account: &str,
        id: u64,
        change: &Change,
        release: bool,
    ) -> Result<Balance, BalanceError> {
        if !change.amount.is_positive() {
            return Err(BalanceError::NotPositive);
        }
        self.change(|tx| {
            let mut reservation = tx.reservation(account, id)?;
            if change.amount > reservation.amount {
                return Err(BalanceError::BeyondReservation {
                    reserved: reservation.amount,
                });
            }
            let change = Change {
                balance: reservation.balance.clone(),
                ..change.clone()
            };
            let mut row = tx.row(account, &change.balance)?;
            tx.currency(&mut row, &change)?;
            row.reserved -= change.amount.0;
            reservation.amount = Amount(reservation.amount.0 - change.amount.0);
            tx.put_row(account, &change.balance, &row)?;
            tx.put_reservation(id, Some(&reservation))?;
            tx.record(account, Kind::ChargeReservation, &change, &row, Some(id))?;
            if release {
                Self::release_in(tx, account, id, &change)
            } else {
                Ok(balance_of(&change.balance, &row))
            }
        })
    }

    /// Closes reservation `id` (`account`'s), returning what it holds to
    /// the available funds. `change` says who and when.
    pub fn release(&self, account: &str, id: u64, change: &Change) -> Result<Balance, BalanceError> {
        self.change(|tx| Self::release_in(tx, account, id, change))
    }

    fn release_in(tx: &Tx<'_>, account: &str, id: u64, change: &Change) -> Result<Balance, BalanceError> {
        let reservation = tx.reservation(account, id)?;
        let change = Change {
            balance: reservation.balance.clone(),
            amount: reservation.amount,
            currency: None,
            code: None,
            reference: None,
            ..change.clone()
        };
        let mut row = tx.row(account, &change.balance)?;
        row.reserved -= reservation.amount.0;
        row.available += reservation.amount.0;
        tx.put_row(account, &change.balance, &row)?;
        tx.put_reservation(id, None)?;
        tx.record(account, Kind::Release, &change, &row, Some(id))?;
        Ok(balance_of(&change.balance, &row))
    }

    /// `account`'s history, latest first.
    pub fn history(&self, account: &str, query: &HistoryQuery) -> Result<Vec<Entry>, BalanceError> {
        let most = query.most.min(MOST_ENTRIES);
        let read = self.database.begin_read().map_err(store_failed)?;
        let table = read.open_table(HISTORY).map_err(store_failed)?;
        let mut entries = Vec::new();
        let range = table
            .range((account, 0)..=(account, u64::MAX))
            .map_err(store_failed)?;
        for item in range.rev() {
            if entries.len() >= most {
                break;
            }
            let (id, text) = item.map_err(store_failed)?;
            let mut entry: Entry = from_json(text.value())?;
            entry.sequence = id.value().1;
            if query.from.is_some_and(|from| entry.time < from) {
                // Entries are in time order: the rest are older still.
                break;
            }
            if query.until.is_some_and(|until| entry.time >= until)
                || query.balance.as_ref().is_some_and(|name| *name != entry.balance)
            {
                continue;
            }
            entries.push(entry);
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Storage;

    fn change(amount: &str) -> Change {
        Change {
            balance: DEFAULT_BALANCE.into(),
            amount: Amount::parse(amount).unwrap(),
            description: "test".into(),
            by: "test".into(),
            now: 1_700_000_000,
            ..Change::default()
        }
    }

    #[test]
    fn amounts_are_read_and_written_exactly() {
        for (text, thousandths) in [
            ("12", 12_000),
            ("12.5", 12_500),
            ("0.125", 125),
            (".5", 500),
            ("1.", 1000),
            ("-3.10", -3100),
            ("+7.000000", 7000),
            ("0.1", 100),
        ] {
            assert_eq!(Amount::parse(text), Ok(Amount(thousandths)), "{text}");
        }
        for text in [
            "",
            ".",
            "1.0001",
            "abc",
            "1e3",
            "--1",
            "1,5",
            "10000000000000",
            " - 1",
        ] {
            assert!(Amount::parse(text).is_err(), "{text}");
        }
        assert_eq!(Amount(1500).to_string(), "1.50");
        assert_eq!(Amount(125).to_string(), "0.125");
        assert_eq!(Amount(-3000).to_string(), "-3.00");
        assert_eq!(Amount(1).to_string(), "0.001");
        assert_eq!(balance_name(" "), Ok("main"));
        assert!(balance_name("a\tb").is_err());
        assert_eq!(currency_code("rub"), Ok("RUB".to_string()));
        assert!(currency_code("R U B").is_err());
    }

    #[test]
    fn charges_credits_and_reservations_keep_the_balance_and_the_history() {
        let storage = Storage::in_memory().unwrap();
        let balances = storage.balances();
        let account = "ivanov@example.com";
        // Nothing yet: a charge is refused and leaves no trace.
        assert_eq!(
            balances.charge(account, &change("1")),
            Err(BalanceError::Insufficient { available: Amount(0) })
        );
        assert!(balances
            .history(account, &HistoryQuery::latest(10))
            .unwrap()
            .is_empty());
        let credited = balances
            .credit(
                account,
                &Change {
                    currency: Some("RUB".into()),
                    ..change("10")
                },
            )
            .unwrap();
        assert_eq!(credited.available, Amount(10_000));
        assert_eq!(credited.currency.as_deref(), Some("RUB"));
        assert_eq!(
            balances.charge(
                account,
                &Change {
                    currency: Some("USD".into()),
                    ..change("1")
                }
            ),
            Err(BalanceError::OtherCurrency("RUB".into()))
        );
        assert_eq!(
            balances.charge(account, &change("2.5")).unwrap().available,
            Amount(7500)
        );
        // 7.50 left: a reservation of 5, then 3 more is too much.
        let (id, reserved) = balances.reserve(account, &change("5"), None).unwrap();
        assert_eq!(
            (reserved.available, reserved.reserved),
            (Amount(2500), Amount(5000))
        );
        assert!(matches!(
            balances.reserve(account, &change("3"), Some(id)),
            Err(BalanceError::Insufficient { .. })
        ));
        assert!(matches!(
            balances.charge(account, &change("3")),
            Err(BalanceError::Insufficient { .. })
        ));
        // Another account cannot touch it.
        assert_eq!(
            balances.release("petrov@example.com", id, &change("0")),
            Err(BalanceError::NoReservation)
        );
        assert_eq!(
            balances.charge_reservation(account, id, &change("6"), false),
            Err(BalanceError::BeyondReservation {
                reserved: Amount(5000)
            })
        );
        let charged = balances
            .charge_reservation(account, id, &change("4"), false)
            .unwrap();
        assert_eq!(
            (charged.available, charged.reserved),
            (Amount(2500), Amount(1000))
        );
        let released = balances.release(account, id, &change("0")).unwrap();
        assert_eq!((released.available, released.reserved), (Amount(3500), Amount(0)));
        assert_eq!(balances.reservation(id).unwrap(), None);
        assert_eq!(
            balances.release(account, id, &change("0")),
            Err(BalanceError::NoReservation)
        );
        // A reference is taken once.
        let referenced = Change {
            reference: Some("order-1".into()),
            ..change("1")
        };
        assert!(balances.charge(account, &referenced).is_ok());
        assert_eq!(
            balances.charge(account, &referenced),
            Err(BalanceError::UsedReference("order-1".into()))
        );
        assert_eq!(balances.read(account, "").unwrap().available, Amount(2500));
        let everything = HistoryQuery::latest(100);
        let kinds: Vec<Kind> = balances
            .history(account, &everything)
            .unwrap()
            .iter()
            .map(|entry| entry.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                Kind::Charge,
                Kind::Release,
                Kind::ChargeReservation,
                Kind::Reserve,
                Kind::Charge,
                Kind::Credit
            ]
        );
        let latest = balances.history(account, &HistoryQuery::latest(1)).unwrap();
        assert_eq!(latest[0].reference.as_deref(), Some("order-1"));
        assert_eq!(latest[0].available, Amount(2500));
        // Balances are separate.
        let other = Change {
            balance: "bonus".into(),
            ..change("1")
        };
        balances.credit(account, &other).unwrap();
        assert_eq!(
            balances
                .list(account)
                .unwrap()
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>(),
            ["bonus", "main"]
        );
        let bonus = HistoryQuery {
            balance: Some("bonus".into()),
            ..everything
        };
        assert_eq!(balances.history(account, &bonus).unwrap().len(), 1);
        assert!(balances.list("petrov@example.com").unwrap().is_empty());
    }
}
