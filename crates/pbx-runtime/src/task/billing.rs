//! `DoBalance(parameters, account)` (CGPL §6.9): the billing operations
//! of CommuniGate's Billing Manager on the balances Parlay X Payment uses
//! too (`crate::balance`).
//!
//! `parameters.op` is `list`, `read`, `credit`, `charge`, `reserve`,
//! `release` or `history`; amounts are numbers of thousandths (`1500` is
//! 1.50) or decimal strings (`"1.50"`). The account is the task's own
//! (`account` null) or one it may act for (the `pbx` account and domain
//! administrators: their domain's). The result is a dictionary, or an
//! error string when the operation was refused (and nothing changed).

use pbx_lang::value::time::Clock;
use pbx_lang::value::{text, Bytes, Dict, Portable, Value};
use pbx_lang::HostOutcome;

use super::host::{arg, done, error_string, text_arg, TaskHost};
use super::ops::Op;
use crate::balance::{self, Amount, Balance, Change, Entry, HistoryQuery};

/// How many history entries `history` returns unless `limit` says.
const DEFAULT_LIMIT: usize = 100;

fn entry(key: &str, value: Portable) -> (Bytes, Portable) {
    (Bytes::from(key), value)
}

/// A balance as scripts see it: `{balance; amount; reserved; currency}`,
/// `amount` what is available.
fn balance_portable(balance: &Balance) -> Vec<(Bytes, Portable)> {
    let mut entries = vec![
        entry("balance", Portable::str(&balance.name)),
        entry("amount", Portable::Num(balance.available.0)),
        entry("reserved", Portable::Num(balance.reserved.0)),
    ];
    if let Some(currency) = &balance.currency {
        entries.push(entry("currency", Portable::str(currency)));
    }
    entries
}

fn history_portable(item: &Entry) -> Portable {
    let mut entries = vec![
        entry("time", Portable::Date(item.time)),
        entry("op", Portable::str(item.kind.name())),
        entry("balance", Portable::str(&item.balance)),
        entry("amount", Portable::Num(item.amount.0)),
        entry("available", Portable::Num(item.available.0)),
        entry("reserved", Portable::Num(item.reserved.0)),
        entry("description", Portable::str(&item.description)),
        entry("by", Portable::str(&item.by)),
    ];
    let optional = [
        ("currency", item.currency.clone()),
        ("code", item.code.clone()),
        ("reference", item.reference.clone()),
        ("reserve", item.reservation.map(|id| id.to_string())),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            entries.push(entry(key, Portable::str(&value)));
        }
    }
    Portable::Dict(entries, false)
}

/// The text of a parameter (a string, or any other value's textual
/// form); `None` when absent.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Str(bytes) => Some(bytes.to_str_lossy().into_owned()),
        other => Some(text::to_text(other)),
    }
}

/// An amount: a number of thousandths, or a decimal string.
fn amount_of(value: &Value) -> Result<Amount, String> {
    let amount = match value {
        Value::Num(thousandths) => Amount::thousandths(*thousandths),
        Value::Str(bytes) => Amount::parse(&bytes.to_str_lossy()),
        Value::Null => return Err("the amount is missing".into()),
        other => {
            return Err(format!(
                "the amount must be a number or a string, not {}",
                other.type_name()
            ))
        }
    };
    amount.map_err(|error| error.to_string())
}

/// A reservation's number: a number or a string of digits.
fn reservation_of(value: &Value) -> Result<u64, String> {
    let number = match value {
        Value::Num(number) => u64::try_from(*number).ok(),
        Value::Str(bytes) => bytes.to_str_lossy().trim().parse().ok(),
        _ => None,
    };
    number.ok_or_else(|| "reserve must name a reservation".to_string())
}

impl TaskHost {
    pub(super) fn do_balance(&self, args: &[Value]) -> HostOutcome<Op> {
        let parameters = match arg(args, 0) {
            Value::Dict(parameters) => parameters.clone(),
            other => {
                return error_string(format!(
                    "the parameters must be a dictionary, not {}",
                    other.type_name()
                ))
            }
        };
        let account = match text_arg(args, 1) {
            None => self.account.clone(),
            Some(name) => match self.account_acted_for(&name, "balances") {
                Ok(account) => account,
                Err(message) => return error_string(message),
            },
        };
        match self.balance_operation(&account.address(), &parameters) {
            Ok(result) => done(Portable::Dict(result, false).to_value()),
            Err(message) => error_string(message),
        }
    }

    fn balance_operation(&self, account: &str, parameters: &Dict) -> Result<Vec<(Bytes, Portable)>, String> {
        let get = |key: &str| parameters.get(key.as_bytes());
        let op = text_of(&get("op")).unwrap_or_default().to_ascii_lowercase();
        let name = balance::balance_name(&text_of(&get("balance")).unwrap_or_default())
            .map_err(|error| error.to_string())?
            .to_string();
        let balances = self.runtime.storage.balances();
        let failed = |error: balance::BalanceError| error.to_string();
        // The change a credit, charge, reserve or release makes.
        let change = || -> Result<Change, String> {
            let currency = text_of(&get("currency"))
                .map(|code| balance::currency_code(&code))
                .transpose()
                .map_err(failed)?;
            Ok(Change {
                balance: name.clone(),
                amount: match op.as_str() {
                    "release" => Amount(0),
                    _ => amount_of(&get("amount"))?,
                },
                currency,
                description: text_of(&get("description")).unwrap_or_default(),
                code: text_of(&get("code")),
                reference: text_of(&get("reference")),
                by: format!("{} ({})", self.account.address(), self.program),
                now: self.runtime.clock.now(),
            })
        };
        let reservation = || match get("reserve") {
            Value::Null => Ok(None),
            value => reservation_of(&value).map(Some),
        };
        match op.as_str() {
            "list" => {
                let all = balances.list(account).map_err(failed)?;
                let items = all
                    .iter()
                    .map(|balance| Portable::Dict(balance_portable(balance), false))
                    .collect();
                Ok(vec![entry("balances", Portable::Array(items))])
            }
            "read" => Ok(balance_portable(&balances.read(account, &name).map_err(failed)?)),
            "credit" => Ok(balance_portable(
                &balances.credit(account, &change()?).map_err(failed)?,
            )),
            "charge" => {
                let change = change()?;
                let charged = match reservation()? {
                    Some(id) => {
                        let release = get("release").is_true();
                        balances.charge_reservation(account, id, &change, release)
                    }
                    None => balances.charge(account, &change),
                };
                Ok(balance_portable(&charged.map_err(failed)?))
            }
            "reserve" => {
                let (id, reserved) = balances
                    .reserve(account, &change()?, reservation()?)
                    .map_err(failed)?;
                let mut result = balance_portable(&reserved);
                result.push(entry("reserve", Portable::str(&id.to_string())));
                Ok(result)
            }
            "release" => {
                let id = reservation()?.ok_or("reserve must name a reservation")?;
                Ok(balance_portable(
                    &balances.release(account, id, &change()?).map_err(failed)?,
                ))
            }
            "history" => {
                let limit = get("limit")
                    .as_num()
                    .map_or(DEFAULT_LIMIT, |limit| limit.max(0) as usize);
                let date = |key: &str| match get(key) {
                    Value::Date(seconds) => Ok(Some(seconds)),
                    Value::Null => Ok(None),
                    _ => Err(format!("{key} must be a date")),
                };
                let query = HistoryQuery {
                    balance: text_of(&get("balance")).map(|_| name.clone()),
                    from: date("from")?,
                    until: date("till")?,
                    most: limit,
                };
                let entries = balances.history(account, &query).map_err(failed)?;
                let items = entries.iter().map(history_portable).collect();
                Ok(vec![entry("history", Portable::Array(items))])
            }
            "" => Err("op is missing".into()),
            other => Err(format!("unknown op {other}")),
        }
    }
}
