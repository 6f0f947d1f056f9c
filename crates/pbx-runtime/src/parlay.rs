//! Parlay X call notification, call direction and call handling (seed 004;
//! FEATURES.md §9): what clients have asked of accounts' calls, kept in
//! the store, and what routing does with it.
//!
//! - A *watch* says: when a call to this account meets this criterion
//!   (the call arrives: `CalledNumber`; its phones are `Busy`; nobody
//!   answers: `NoAnswer`; it has no phone: `NotReachable`), tell this
//!   endpoint (`Notification`: `notifyBusy`…, the call goes on as its rules
//!   say) or ask it (`Direction`: `handleBusy`…, whose answer decides:
//!   `Continue`, `EndCall`, `Route` to the routing addresses, or `Fork`,
//!   which adds them to the phones ringing).
//! - *Handling* rules (`setRules`): callers blocked, the only callers
//!   accepted, and addresses every call is forwarded to.
//!
//! These are signal rules added at run time: routing applies them before
//! the account's own (`Runtime::call_account`, `ring`).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::soap;

/// What a watch waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Criterion {
    Busy,
    NotReachable,
    NoAnswer,
    CalledNumber,
}

impl Criterion {
    /// As Parlay X names it (`Busy`, `NotReachable`, `NoAnswer`,
    /// `CalledNumber`).
    pub fn parse(text: &str) -> Option<Criterion> {
        Some(match text.trim() {
            "Busy" => Criterion::Busy,
            "NotReachable" => Criterion::NotReachable,
            "NoAnswer" => Criterion::NoAnswer,
            "CalledNumber" => Criterion::CalledNumber,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Criterion::Busy => "Busy",
            Criterion::NotReachable => "NotReachable",
            Criterion::NoAnswer => "NoAnswer",
            Criterion::CalledNumber => "CalledNumber",
        }
    }
}

/// Tell, or ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    Notification,
    Direction,
}

/// One registration: an account, a criterion, a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    pub mode: Mode,
    /// `name@domain`.
    pub account: String,
    pub criterion: Criterion,
    /// Where notifications and questions are POSTed.
    pub endpoint: String,
    pub correlator: String,
    /// Who registered it.
    pub by: String,
}

/// An account's call handling rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handling {
    /// When not empty, only callers matching one of these get through.
    pub accept: Vec<String>,
    /// Callers refused.
    pub block: Vec<String>,
    /// Every call goes to these.
    pub forward: Vec<String>,
}

impl Handling {
    pub fn is_empty(&self) -> bool {
        self.accept.is_empty() && self.block.is_empty() && self.forward.is_empty()
    }

    /// What the rules say of a call from `caller` (its URI).
    pub fn verdict(&self, caller: &str) -> Verdict {
        if self.block.iter().any(|pattern| caller_matches(pattern, caller)) {
            return Verdict::Refuse("blocked");
        }
        if !self.accept.is_empty() && !self.accept.iter().any(|pattern| caller_matches(pattern, caller)) {
            return Verdict::Refuse("not on the accept list");
        }
        if !self.forward.is_empty() {
            return Verdict::Forward(self.forward.clone());
        }
        Verdict::Pass
    }
}

/// What call handling does with a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Refuse(&'static str),
    Forward(Vec<String>),
}

/// The user part of an address (`sip:5550000@outside.test` → `5550000`),
/// or the number itself.
fn user_part(address: &str) -> &str {
    let address = address.trim();
    let address = address
        .strip_prefix("sip:")
        .or_else(|| address.strip_prefix("sips:"))
        .or_else(|| address.strip_prefix("tel:"))
        .unwrap_or(address);
    address.split(['@', ';']).next().unwrap_or(address)
}

/// Whether `caller` is `pattern`: the same address, or the same user
/// part; a final `*` matches any rest of the user part.
pub fn caller_matches(pattern: &str, caller: &str) -> bool {
    let pattern = pattern.trim();
    let bare = |text: &str| {
        text.trim()
            .trim_start_matches("sip:")
            .trim_start_matches("tel:")
            .to_ascii_lowercase()
    };
    if bare(pattern) == bare(caller) {
        return true;
    }
    let wanted = user_part(pattern);
    let user = user_part(caller);
    match wanted.strip_suffix('*') {
        Some(stem) => user.starts_with(stem),
        None => wanted.eq_ignore_ascii_case(user),
    }
}

/// What a direction client decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Continue,
    EndCall,
    Route(Vec<String>),
    Fork(Vec<String>),
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::Continue => f.write_str("Continue"),
            Decision::EndCall => f.write_str("EndCall"),
            Decision::Route(to) => write!(f, "Route to {}", to.join(", ")),
            Decision::Fork(to) => write!(f, "Fork to {}", to.join(", ")),
        }
    }
}

/// Everything registered, in memory and (JSON) in the store.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Kept {
    watches: Vec<Watch>,
    handling: BTreeMap<String, Handling>,
}

/// The registrations, shared by every shard.
#[derive(Debug, Default)]
pub struct ParlayRules {
    kept: Mutex<Kept>,
}

/// Why a registration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("the correlator {0} is in use")]
    DuplicateCorrelator(String),
}

impl ParlayRules {
    /// Reads what the store kept (`text`, JSON); empty when none.
    pub fn from_kept(text: Option<&str>) -> ParlayRules {
        let kept = text
            .and_then(|text| match serde_json::from_str(text) {
                Ok(kept) => Some(kept),
                Err(error) => {
                    tracing::warn!(%error, "the kept Parlay X rules are not readable: none");
                    None
                }
            })
            .unwrap_or_default();
        ParlayRules {
            kept: Mutex::new(kept),
        }
    }

    /// All of it as JSON, to keep.
    fn text(kept: &Kept) -> String {
        serde_json::to_string(kept).unwrap_or_default()
    }

    /// Adds watches (one per account and criterion); the JSON to keep.
    pub fn watch(&self, watches: Vec<Watch>) -> Result<String, RuleError> {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(first) = watches.first() {
            let taken = kept
                .watches
                .iter()
                .any(|watch| watch.correlator == first.correlator && watch.endpoint != first.endpoint);
            if taken {
                return Err(RuleError::DuplicateCorrelator(first.correlator.clone()));
            }
        }
        for watch in watches {
            kept.watches.retain(|old| {
                !(old.mode == watch.mode && old.account == watch.account && old.criterion == watch.criterion)
            });
            kept.watches.push(watch);
        }
        Ok(Self::text(&kept))
    }

    /// Removes the watches of `mode` for these accounts and criteria
    /// (seed 004: stop requests match addresses and criteria, not the
    /// correlator); how many, and the JSON to keep.
    pub fn unwatch(&self, mode: Mode, accounts: &[String], criteria: &[Criterion]) -> (usize, String) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let before = kept.watches.len();
        kept.watches.retain(|watch| {
            !(watch.mode == mode && accounts.contains(&watch.account) && criteria.contains(&watch.criterion))
        });
        (before - kept.watches.len(), Self::text(&kept))
    }

    /// The watches on `account` for `criterion`.
    pub fn watches(&self, account: &str, criterion: Criterion) -> Vec<Watch> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.watches
            .iter()
            .filter(|watch| watch.account == account && watch.criterion == criterion)
            .cloned()
            .collect()
    }

    /// Every watch, and every account's handling rules (the console).
    pub fn all(&self) -> (Vec<Watch>, Vec<(String, Handling)>) {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        (
            kept.watches.clone(),
            kept.handling
                .iter()
                .map(|(account, handling)| (account.clone(), handling.clone()))
                .collect(),
        )
    }

    /// Sets (or, empty, clears) `account`'s handling rules; the JSON to keep.
    pub fn set_handling(&self, account: &str, handling: Handling) -> String {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if handling.is_empty() {
            kept.handling.remove(account);
        } else {
            kept.handling.insert(account.to_string(), handling);
        }
        Self::text(&kept)
    }

    pub fn handling(&self, account: &str) -> Option<Handling> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.handling.get(account).cloned()
    }

    /// Whether anything watches `account` (a quick test on every call).
    pub fn watches_any(&self, account: &str) -> bool {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.watches.iter().any(|watch| watch.account == account)
    }
}

/// The namespaces of the messages pbxd sends a client.
const NOTIFICATION_NAMESPACE: &str =
    "http://www.csapi.org/schema/parlayx/call_notification/notification/v2_3/local";
const DIRECTION_NAMESPACE: &str = "http://www.csapi.org/schema/parlayx/call_direction/v2_3/local";

/// The SOAP request telling or asking `watch`'s client of a call from
/// `calling` to `called`.
pub fn message(watch: &Watch, calling: &str, called: &str) -> String {
    let (operation, namespace) = match watch.mode {
        Mode::Notification => (
            format!("notify{}", watch.criterion.name()),
            NOTIFICATION_NAMESPACE,
        ),
        Mode::Direction => (format!("handle{}", watch.criterion.name()), DIRECTION_NAMESPACE),
    };
    soap::envelope(&format!(
        "<ns:{operation} xmlns:ns=\"{namespace}\"><correlator>{}</correlator><callingParty>{}</callingParty><calledParty>{}</calledParty></ns:{operation}>",
        soap::escape(&watch.correlator),
        soap::escape(calling),
        soap::escape(called),
    ))
}

/// A direction client's answer: `<handleXResponse><result>
/// <actionToPerform>Route</actionToPerform><routingAddress>…`;
/// `Continue` for anything else (the call goes on as its rules say).
pub fn decision(body: &[u8]) -> Result<Decision, String> {
    let operation = soap::operation(body).map_err(|error| error.to_string())?;
    if operation.name == "Fault" {
        return Err(format!(
            "a fault: {}",
            operation.text_of("faultstring").unwrap_or_default()
        ));
    }
    let result = operation.child("result").unwrap_or(&operation);
    let action = result.text_of("actionToPerform").unwrap_or_default();
    let addresses: Vec<String> = result
        .children
        .iter()
        .filter(|child| child.name == "routingAddress")
        .flat_map(|child| child.text.split(','))
        .map(|address| address.trim().to_string())
        .filter(|address| !address.is_empty())
        .collect();
    Ok(match action {
        "EndCall" => Decision::EndCall,
        "Route" | "Fork" if addresses.is_empty() => return Err(format!("{action} without a routingAddress")),
        "Route" => Decision::Route(addresses),
        "Fork" => Decision::Fork(addresses),
        _ => Decision::Continue,
    })
}

/// How long a direction client has to answer before the call goes on.
pub const DIRECTION_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(mode: Mode, criterion: Criterion, correlator: &str) -> Watch {
        Watch {
            mode,
            account: "petrov@example.com".into(),
            criterion,
            endpoint: "http://127.0.0.1:1/".into(),
            correlator: correlator.into(),
            by: "petrov@example.com".into(),
        }
    }

    #[test]
    fn watches_are_added_replaced_found_and_stopped_by_address_and_criterion() {
        let rules = ParlayRules::default();
        let kept = rules
            .watch(vec![
                watch(Mode::Notification, Criterion::Busy, "a"),
                watch(Mode::Notification, Criterion::NoAnswer, "a"),
            ])
            .unwrap();
        assert_eq!(rules.watches("petrov@example.com", Criterion::Busy).len(), 1);
        assert!(rules.watches_any("petrov@example.com") && !rules.watches_any("ivanov@example.com"));
        let mut other = watch(Mode::Direction, Criterion::Busy, "a");
        other.endpoint = "http://elsewhere/".into();
        assert_eq!(
            rules.watch(vec![other]),
            Err(RuleError::DuplicateCorrelator("a".into()))
        );
        // Kept and read back alike.
        let again = ParlayRules::from_kept(Some(&kept));
        assert_eq!(again.all().0, rules.all().0);
        let (removed, _) = rules.unwatch(
            Mode::Notification,
            &["petrov@example.com".to_string()],
            &[Criterion::Busy],
        );
        assert_eq!(removed, 1);
        assert!(rules.watches("petrov@example.com", Criterion::Busy).is_empty());
        assert_eq!(rules.watches("petrov@example.com", Criterion::NoAnswer).len(), 1);
        assert!(ParlayRules::from_kept(Some("not json")).all().0.is_empty());
    }

    #[test]
    fn handling_blocks_accepts_and_forwards() {
        let handling = Handling {
            accept: Vec::new(),
            block: vec!["5550000".into(), "sip:spam@bad.test".into(), "8800*".into()],
            forward: Vec::new(),
        };
        assert_eq!(
            handling.verdict("sip:5550000@outside.test"),
            Verdict::Refuse("blocked")
        );
        assert_eq!(handling.verdict("sip:spam@bad.test"), Verdict::Refuse("blocked"));
        assert_eq!(
            handling.verdict("sip:88001234567@trunk"),
            Verdict::Refuse("blocked")
        );
        assert_eq!(handling.verdict("sip:ivanov@example.com"), Verdict::Pass);
        let handling = Handling {
            accept: vec!["ivanov".into()],
            block: Vec::new(),
            forward: vec!["200".into()],
        };
        assert_eq!(
            handling.verdict("sip:petrov@example.com"),
            Verdict::Refuse("not on the accept list")
        );
        assert_eq!(
            handling.verdict("sip:ivanov@example.com"),
            Verdict::Forward(vec!["200".into()])
        );
    }

    #[test]
    fn messages_and_answers() {
        let text = message(
            &watch(Mode::Direction, Criterion::Busy, "c<1>"),
            "sip:5550000@outside.test",
            "sip:petrov@example.com",
        );
        let operation = soap::operation(text.as_bytes()).unwrap();
        assert_eq!(operation.name, "handleBusy");
        assert_eq!(operation.text_of("correlator"), Some("c<1>"));
        let answer = |action: &str, addresses: &str| {
            soap::envelope(&format!(
                "<ns:handleBusyResponse xmlns:ns=\"urn:x\"><result><actionToPerform>{action}</actionToPerform>{addresses}</result></ns:handleBusyResponse>"
            ))
        };
        assert_eq!(
            decision(answer("Continue", "").as_bytes()),
            Ok(Decision::Continue)
        );
        assert_eq!(decision(answer("EndCall", "").as_bytes()), Ok(Decision::EndCall));
        assert_eq!(
            decision(
                answer(
                    "Route",
                    "<routingAddress>sip:operator@example.com</routingAddress>"
                )
                .as_bytes()
            ),
            Ok(Decision::Route(vec!["sip:operator@example.com".into()]))
        );
        assert_eq!(
            decision(
                answer(
                    "Fork",
                    "<routingAddress>100</routingAddress><routingAddress>201</routingAddress>"
                )
                .as_bytes()
            ),
            Ok(Decision::Fork(vec!["100".into(), "201".into()]))
        );
        assert!(decision(answer("Route", "").as_bytes()).is_err());
        assert!(decision(b"<html/>").is_err());
    }
}
