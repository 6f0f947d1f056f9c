//! Parlay X Payment (ES 202 391-6) and Account Management (ES 202 391-7)
//! on the accounts' balances (`pbx_runtime::balance`), as CommuniGate's
//! Billing Manager offers them: every operation takes an optional
//! `balanceType` (the balance `main` when absent).
//!
//! - `chargeAmount`, `refundAmount`: take from, or give back to, the end
//!   user's balance; a charge that would leave less than nothing is
//!   refused (`SVC0270`) and changes nothing;
//! - `reserveAmount` (its identifier returned), `reserveAdditionalAmount`,
//!   `chargeReservation` (at most what it holds), `releaseReservation`;
//! - `getBalance` (the funds available: reservations held apart),
//!   `balanceUpdate` (a signed amount), `getHistory` (latest first).
//!
//! The end user is an account: `sip:ivanov@example.com`,
//! `ivanov@example.com`, or a name or number (`tel:201`) of the asker's
//! domain. A user acts on their own balances and a domain administrator
//! on the domain's; giving money (`refundAmount`, `balanceUpdate`) is the
//! administrator's alone. `referenceCode` is taken once per account, so a
//! request sent twice does not charge twice.

use std::sync::Arc;

use pbx_lang::value::time::Clock;
use pbx_runtime::balance::{self, Amount, Balance, BalanceError, Change, Entry, HistoryQuery, Reservation};
use pbx_runtime::directory::Account;
use pbx_runtime::Runtime;

use super::soap::{self, Exception};
use super::tpc::Parts;
use crate::Sources;

const AMOUNT_CHARGING: &str = "http://www.csapi.org/schema/parlayx/payment/amount_charging/v2_1/local";
const RESERVE_AMOUNT_CHARGING: &str =
    "http://www.csapi.org/schema/parlayx/payment/reserve_amount_charging/v2_1/local";
const ACCOUNT_MANAGEMENT: &str = "http://www.csapi.org/schema/parlayx/account_management/v2_1/local";

const PAYMENT_WSDL: &str = include_str!("payment.wsdl");
const ACCOUNT_MANAGEMENT_WSDL: &str = include_str!("account_management.wsdl");

/// How many history entries `getHistory` gives unless `maxEntries` says.
const DEFAULT_ENTRIES: usize = 100;

/// The two services, each with its own address and description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Payment,
    AccountManagement,
}

impl Service {
    pub(super) fn description(self) -> &'static str {
        match self {
            Service::Payment => PAYMENT_WSDL,
            Service::AccountManagement => ACCOUNT_MANAGEMENT_WSDL,
        }
    }

    /// The service an operation belongs to.
    pub(super) fn of(operation: &str) -> Option<Service> {
        match operation {
            "chargeAmount"
            | "refundAmount"
            | "reserveAmount"
            | "reserveAdditionalAmount"
            | "chargeReservation"
            | "releaseReservation" => Some(Service::Payment),
            "getBalance" | "balanceUpdate" | "getHistory" => Some(Service::AccountManagement),
            _ => None,
        }
    }
}

/// The namespace of an operation's elements (each Payment interface has
/// its own).
fn namespace(operation: &str) -> &'static str {
    match operation {
        "chargeAmount" | "refundAmount" => AMOUNT_CHARGING,
        "getBalance" | "balanceUpdate" | "getHistory" => ACCOUNT_MANAGEMENT,
        _ => RESERVE_AMOUNT_CHARGING,
    }
}

/// What an operation gives back.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// A change made: the balance after it.
    Changed(Balance),
    /// `reserveAmount`: the reservation, and the balance after it.
    Reserved(u64, Balance),
    /// `getBalance`.
    Balance(Balance),
    /// `getHistory`.
    History(Vec<Entry>),
}

fn invalid(part: &str) -> Exception {
    Exception::service("SVC0002", "Invalid input value for message part %1", &[part])
}

/// An invalid part, and why (the second variable).
fn invalid_because(part: &str, why: &str) -> Exception {
    Exception::service("SVC0002", "Invalid input value for message part %1", &[part, why])
}

fn not_allowed(why: &str) -> Exception {
    Exception::service("POL0001", "A policy error occurred. Error code is %1", &[why])
}

fn service_error(why: &str) -> Exception {
    Exception::service("SVC0001", "A service error occurred. Error code is %1", &[why])
}

/// A refusal of the store: money that is not there is `SVC0270` (the
/// Payment interface's "charge failed"), bad input `SVC0002`.
fn refused(error: BalanceError, amount_part: &str) -> Exception {
    let why = error.to_string();
    match error {
        BalanceError::Insufficient { .. } | BalanceError::BeyondReservation { .. } => Exception::service(
            "SVC0270",
            "Charging operation failed, the charge was not applied: %1",
            &[&why],
        ),
        BalanceError::BadAmount(_) | BalanceError::NotPositive => invalid_because(amount_part, &why),
        BalanceError::BadName(_) => invalid_because("balanceType", &why),
        BalanceError::BadCurrency(_) | BalanceError::OtherCurrency(_) => {
            invalid_because("charge.currency", &why)
        }
        BalanceError::NoReservation => invalid_because("reservationIdentifier", &why),
        BalanceError::UsedReference(_) => invalid_because("referenceCode", &why),
        BalanceError::Store(_) => service_error(&why),
    }
}

fn required(parts: &dyn Parts, name: &str) -> Result<String, Exception> {
    parts.text(name).ok_or_else(|| invalid(name))
}

fn balance_type(parts: &dyn Parts) -> Result<String, Exception> {
    let name = parts.text("balanceType").unwrap_or_default();
    balance::balance_name(&name)
        .map(str::to_string)
        .map_err(|error| refused(error, "balanceType"))
}

/// The account an end user identifier names: `sip:user@domain`,
/// `user@domain`, or a name, alias or number (`tel:201`) of the asker's
/// domain.
fn end_user(runtime: &Runtime, asker: &Account, parts: &dyn Parts) -> Result<Arc<Account>, Exception> {
    let identifier = required(parts, "endUserIdentifier")?;
    let lower = identifier.to_ascii_lowercase();
    let bare = ["sip:", "sips:", "tel:"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme).map(|rest| (*scheme, rest)));
    let address = match bare {
        // A telephone number's visual separators (RFC 3966) are not part of it.
        Some(("tel:", number)) => number.chars().filter(|c| !"-. ()".contains(*c)).collect(),
        Some((_, rest)) => rest.to_string(),
        None => lower.clone(),
    };
    let directory = &runtime.directory;
    let found = match address.split_once('@') {
        Some((user, host)) => directory
            .find(user, host)
            .or_else(|| directory.domain_at(host).and_then(|domain| domain.find(user))),
        None => directory.find(&address, &asker.domain),
    };
    let account = found.ok_or_else(|| invalid("endUserIdentifier"))?;
    may_act(asker, &account)?;
    Ok(account)
}

fn may_act(asker: &Account, owner: &Account) -> Result<(), Exception> {
    if asker.may_act_for(owner) {
        Ok(())
    } else {
        Err(not_allowed(&format!(
            "{} may not act on the balances of {}",
            asker.address(),
            owner.address()
        )))
    }
}

/// Giving money is for the domain's administrators.
fn may_credit(asker: &Account, owner: &Account) -> Result<(), Exception> {
    may_act(asker, owner)?;
    if asker.domain_admin {
        Ok(())
    } else {
        Err(not_allowed(&format!(
            "only an administrator of {} may credit a balance",
            owner.domain
        )))
    }
}

/// The open reservation `reservationIdentifier` names, with its account,
/// when the asker may act on it.
fn reservation(
    runtime: &Runtime,
    asker: &Account,
    parts: &dyn Parts,
) -> Result<(u64, Reservation, Arc<Account>), Exception> {
    let text = required(parts, "reservationIdentifier")?;
    let id: u64 = text.parse().map_err(|_| invalid("reservationIdentifier"))?;
    let found = runtime
        .storage
        .balances()
        .reservation(id)
        .map_err(|error| refused(error, "charge.amount"))?
        .ok_or_else(|| invalid("reservationIdentifier"))?;
    let owner = found
        .account
        .split_once('@')
        .and_then(|(user, domain)| runtime.directory.find(user, domain))
        .ok_or_else(|| invalid("reservationIdentifier"))?;
    may_act(asker, &owner)?;
    Ok((id, found, owner))
}

/// The change a request asks for: its `charge` (description, currency,
/// amount, code), `referenceCode` and balance.
fn change_of(
    runtime: &Runtime,
    asker: &Account,
    parts: &dyn Parts,
    reference: bool,
) -> Result<Change, Exception> {
    let charge = parts.group("charge").ok_or_else(|| invalid("charge"))?;
    let field = |name: &str| {
        charge
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_string())
            .filter(|value| !value.is_empty())
    };
    let amount = field("amount").ok_or_else(|| invalid("charge.amount"))?;
    let amount = Amount::parse(&amount).map_err(|error| refused(error, "charge.amount"))?;
    let currency = field("currency")
        .map(|code| balance::currency_code(&code))
        .transpose()
        .map_err(|error| refused(error, "charge.currency"))?;
    let reference = if reference {
        Some(required(parts, "referenceCode")?)
    } else {
        None
    };
    Ok(Change {
        balance: balance_type(parts)?,
        amount,
        currency,
        description: field("description").unwrap_or_default(),
        code: field("code"),
        reference,
        by: asker.address(),
        now: runtime.clock.now(),
    })
}

/// An xsd:dateTime (UTC unless it says), or a date, in seconds.
fn seconds_of(text: &str) -> Option<i64> {
    if let Ok(time) = text.parse::<jiff::Timestamp>() {
        return Some(time.as_second());
    }
    let civil = text
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| {
            text.parse::<jiff::civil::Date>()
                .map(|date| date.to_datetime(jiff::civil::Time::midnight()))
        })
        .ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|zoned| zoned.timestamp().as_second())
}

/// Carries out `operation` for `asker`.
pub fn perform(
    runtime: &Runtime,
    asker: &Account,
    operation: &str,
    parts: &dyn Parts,
) -> Result<Answer, Exception> {
    let balances = runtime.storage.balances();
    match operation {
        "chargeAmount" | "refundAmount" => {
            let owner = end_user(runtime, asker, parts)?;
            let change = change_of(runtime, asker, parts, true)?;
            let done = if operation == "chargeAmount" {
                balances.charge(&owner.address(), &change)
            } else {
                may_credit(asker, &owner)?;
                balances.credit(&owner.address(), &change)
            };
            let balance = done.map_err(|error| refused(error, "charge.amount"))?;
            tracing::info!(account = %owner.address(), by = %asker.address(), amount = %change.amount, "Parlay X {operation}");
            Ok(Answer::Changed(balance))
        }
        "reserveAmount" => {
            let owner = end_user(runtime, asker, parts)?;
            let change = change_of(runtime, asker, parts, false)?;
            let (id, balance) = balances
                .reserve(&owner.address(), &change, None)
                .map_err(|error| refused(error, "charge.amount"))?;
            Ok(Answer::Reserved(id, balance))
        }
        "reserveAdditionalAmount" | "chargeReservation" => {
            let (id, found, owner) = reservation(runtime, asker, parts)?;
            let charging = operation == "chargeReservation";
            let change = Change {
                balance: found.balance,
                ..change_of(runtime, asker, parts, charging)?
            };
            let done = if charging {
                balances.charge_reservation(&owner.address(), id, &change, false)
            } else {
                balances
                    .reserve(&owner.address(), &change, Some(id))
                    .map(|(_, balance)| balance)
            };
            Ok(Answer::Changed(
                done.map_err(|error| refused(error, "charge.amount"))?,
            ))
        }
        "releaseReservation" => {
            let (id, found, owner) = reservation(runtime, asker, parts)?;
            let change = Change {
                balance: found.balance,
                by: asker.address(),
                now: runtime.clock.now(),
                ..Change::default()
            };
            let balance = balances
                .release(&owner.address(), id, &change)
                .map_err(|error| refused(error, "reservationIdentifier"))?;
            Ok(Answer::Changed(balance))
        }
        "getBalance" => {
            let owner = end_user(runtime, asker, parts)?;
            let balance = balances
                .read(&owner.address(), &balance_type(parts)?)
                .map_err(|error| refused(error, "balanceType"))?;
            Ok(Answer::Balance(balance))
        }
        "balanceUpdate" => {
            let owner = end_user(runtime, asker, parts)?;
            may_credit(asker, &owner)?;
            let amount = required(parts, "amount")?;
            let amount = Amount::parse(&amount).map_err(|error| refused(error, "amount"))?;
            let change = Change {
                balance: balance_type(parts)?,
                amount: Amount(amount.0.abs()),
                description: "balanceUpdate".into(),
                reference: Some(required(parts, "referenceCode")?),
                by: asker.address(),
                now: runtime.clock.now(),
                ..Change::default()
            };
            let done = if amount.0 < 0 {
                balances.charge(&owner.address(), &change)
            } else {
                balances.credit(&owner.address(), &change)
            };
            Ok(Answer::Changed(done.map_err(|error| refused(error, "amount"))?))
        }
        "getHistory" => {
            let owner = end_user(runtime, asker, parts)?;
            let date = |part: &str| {
                parts
                    .text(part)
                    .map(|text| seconds_of(&text).ok_or_else(|| invalid(part)))
                    .transpose()
            };
            let most = match parts.text("maxEntries") {
                Some(text) => text
                    .parse::<usize>()
                    .map_err(|_| invalid("maxEntries"))?
                    .min(balance::MOST_ENTRIES),
                None => DEFAULT_ENTRIES,
            };
            let query = HistoryQuery {
                balance: parts
                    .text("balanceType")
                    .map(|_| balance_type(parts))
                    .transpose()?,
                from: date("date")?,
                until: date("endDate")?,
                most,
            };
            let entries = balances
                .history(&owner.address(), &query)
                .map_err(|error| refused(error, "endUserIdentifier"))?;
            Ok(Answer::History(entries))
        }
        other => Err(service_error(&format!("unknown operation {other}"))),
    }
}

/// Performs the operation where a write may wait for the disk, not on
/// the executor.
pub(super) async fn perform_blocking<P: Parts + Send + 'static>(
    sources: &Sources,
    asker: Arc<Account>,
    operation: String,
    parts: P,
) -> Result<Answer, Exception> {
    let runtime = sources.runtime.clone();
    tokio::task::spawn_blocking(move || perform(&runtime, &asker, &operation, &parts))
        .await
        .unwrap_or_else(|_| Err(service_error("the operation failed")))
}

fn entry_xml(entry: &Entry) -> String {
    let mut xml = format!(
        "<transactionDate>{}</transactionDate><transactionDetails>{}</transactionDetails><transactionType>{}</transactionType><amount>{}</amount><balance>{}</balance><reserved>{}</reserved><balanceType>{}</balanceType>",
        super::date_time(entry.time),
        soap::escape(&entry.description),
        entry.kind.name(),
        entry.amount,
        entry.available,
        entry.reserved,
        soap::escape(&entry.balance),
    );
    let optional = [
        ("currency", entry.currency.clone()),
        ("code", entry.code.clone()),
        ("referenceCode", entry.reference.clone()),
        (
            "reservationIdentifier",
            entry.reservation.map(|id| id.to_string()),
        ),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            xml.push_str(&format!("<{name}>{}</{name}>", soap::escape(&value)));
        }
    }
    xml
}

/// The body of an operation's response.
pub(super) fn response_xml(operation: &str, answer: &Answer) -> String {
    let inner = match answer {
        Answer::Changed(_) => String::new(),
        Answer::Reserved(id, _) => format!("<result>{id}</result>"),
        Answer::Balance(balance) => format!("<result>{}</result>", balance.available),
        Answer::History(entries) => entries
            .iter()
            .map(|entry| format!("<result>{}</result>", entry_xml(entry)))
            .collect(),
    };
    let namespace = namespace(operation);
    format!("<ns:{operation}Response xmlns:ns=\"{namespace}\">{inner}</ns:{operation}Response>")
}

fn balance_json(balance: &Balance) -> serde_json::Value {
    serde_json::json!({
        "balanceType": balance.name,
        "balance": balance.available.to_string(),
        "reserved": balance.reserved.to_string(),
        "currency": balance.currency,
    })
}

pub(super) fn response_json(answer: &Answer) -> serde_json::Value {
    match answer {
        Answer::Changed(balance) | Answer::Balance(balance) => balance_json(balance),
        Answer::Reserved(id, balance) => {
            let mut json = balance_json(balance);
            json["reservationIdentifier"] = id.to_string().into();
            json
        }
        Answer::History(entries) => {
            let history: Vec<serde_json::Value> = entries
                .iter()
                .map(|entry| {
                    serde_json::json!({
                        "transactionDate": super::date_time(entry.time),
                        "transactionType": entry.kind.name(),
                        "transactionDetails": entry.description,
                        "amount": entry.amount.to_string(),
                        "balance": entry.available.to_string(),
                        "reserved": entry.reserved.to_string(),
                        "balanceType": entry.balance,
                        "currency": entry.currency,
                        "code": entry.code,
                        "referenceCode": entry.reference,
                        "reservationIdentifier": entry.reservation.map(|id| id.to_string()),
                        "by": entry.by,
                    })
                })
                .collect();
            serde_json::json!({ "history": history })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balance(available: i64) -> Balance {
        Balance {
            name: "main".into(),
            available: Amount(available),
            reserved: Amount(0),
            currency: Some("RUB".into()),
        }
    }

    #[test]
    fn responses_are_in_each_interface_namespace() {
        let body = response_xml("reserveAmount", &Answer::Reserved(7, balance(1500)));
        assert_eq!(
            body,
            format!("<ns:reserveAmountResponse xmlns:ns=\"{RESERVE_AMOUNT_CHARGING}\"><result>7</result></ns:reserveAmountResponse>")
        );
        let body = response_xml("getBalance", &Answer::Balance(balance(98_500)));
        assert!(
            body.contains(ACCOUNT_MANAGEMENT) && body.contains("<result>98.50</result>"),
            "{body}"
        );
        let body = response_xml("chargeAmount", &Answer::Changed(balance(0)));
        assert_eq!(
            body,
            format!("<ns:chargeAmountResponse xmlns:ns=\"{AMOUNT_CHARGING}\"></ns:chargeAmountResponse>")
        );
        let entry = Entry {
            sequence: 3,
            time: 0,
            balance: "main".into(),
            kind: balance::Kind::Charge,
            amount: Amount(1500),
            available: Amount(8500),
            reserved: Amount(0),
            currency: Some("RUB".into()),
            description: "a <call>".into(),
            code: None,
            reference: Some("r1".into()),
            reservation: None,
            by: "boss@example.com".into(),
        };
        let body = response_xml("getHistory", &Answer::History(vec![entry]));
        assert!(
            body.contains("<result><transactionDate>1970-01-01T00:00:00Z</transactionDate><transactionDetails>a &lt;call&gt;</transactionDetails><transactionType>charge</transactionType><amount>1.50</amount><balance>8.50</balance>"),
            "{body}"
        );
        assert!(
            body.contains("<referenceCode>r1</referenceCode></result>"),
            "{body}"
        );
        assert!(soap::parse(soap::envelope(&body).as_bytes()).is_ok());
        for description in [PAYMENT_WSDL, ACCOUNT_MANAGEMENT_WSDL] {
            assert!(
                soap::parse(description.as_bytes()).is_ok(),
                "the WSDL is well-formed"
            );
        }
    }

    #[test]
    fn dates_are_read_as_utc_unless_they_say() {
        assert_eq!(seconds_of("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(seconds_of("1970-01-02T03:00:00+03:00"), Some(86_400));
        assert_eq!(seconds_of("1970-01-02T00:00:00"), Some(86_400));
        assert_eq!(seconds_of("1970-01-02"), Some(86_400));
        assert_eq!(seconds_of("yesterday"), None);
    }

    #[test]
    fn every_operation_belongs_to_one_service() {
        assert_eq!(Service::of("chargeReservation"), Some(Service::Payment));
        assert_eq!(Service::of("getHistory"), Some(Service::AccountManagement));
        assert_eq!(Service::of("makeCall"), None);
        for service in [Service::Payment, Service::AccountManagement] {
            let wsdl = service.description();
            let mut offered = 0;
            for operation in [
                "chargeAmount",
                "refundAmount",
                "reserveAmount",
                "reserveAdditionalAmount",
                "chargeReservation",
                "releaseReservation",
                "getBalance",
                "balanceUpdate",
                "getHistory",
            ] {
                let described = wsdl.contains(&format!("<wsdl:operation name=\"{operation}\">"));
                assert_eq!(described, Service::of(operation) == Some(service), "{operation}");
                offered += usize::from(described);
                if described {
                    assert!(wsdl.contains(&format!("element name=\"{operation}Response\"")));
                    assert!(wsdl.contains(&format!("targetNamespace=\"{}\"", namespace(operation))));
                }
            }
            assert!(offered >= 3);
        }
    }
}
