//! Call Notification, Call Direction and Call Handling (Parlay X 2.x, as
//! seed 004 maps them): a client registers criteria for accounts, which
//! become signal rules with Parlay actions (`pbx_runtime::parlay`, kept in
//! the store and applied by routing); stop requests match the addresses
//! and criteria, their correlator is ignored.
//!
//! A user registers for their own account, a domain administrator for the
//! domain's; a user only while `parlay.rules_allowed` says users may.

use std::sync::Arc;

use pbx_runtime::address::{self, Destination};
use pbx_runtime::directory::Account;
use pbx_runtime::parlay::{Criterion, Handling, Mode, Watch};
use pbx_runtime::soap::Exception;

use super::tpc::{missing, not_allowed, required, Parts};
use crate::Sources;

/// What an operation gives back.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Done,
    Rules(Handling),
}

/// Whether `operation` is one of this service's.
pub fn knows(operation: &str) -> bool {
    matches!(
        operation,
        "startCallNotification"
            | "stopCallNotification"
            | "startCallDirectionNotification"
            | "stopCallDirectionNotification"
            | "setRules"
            | "getRules"
            | "clearRules"
    )
}

/// Carries out `operation` for `asker`.
pub fn perform(
    sources: &Sources,
    asker: &Arc<Account>,
    operation: &str,
    parts: &dyn Parts,
) -> Result<Answer, Exception> {
    let parlay = &sources.runtime.parlay;
    match operation {
        "startCallNotification" | "startCallDirectionNotification" => {
            let mode = mode_of(operation);
            let reference = parts.group("reference").ok_or_else(|| missing("reference"))?;
            let field = |name: &str| {
                reference
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.trim().to_string())
                    .filter(|value| !value.is_empty())
            };
            let endpoint = field("endpoint").ok_or_else(|| missing("reference.endpoint"))?;
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(missing("reference.endpoint"));
            }
            let correlator = field("correlator").ok_or_else(|| missing("reference.correlator"))?;
            let accounts = accounts(sources, asker, parts)?;
            let criteria = criteria(parts, mode)?;
            let watches = accounts
                .iter()
                .flat_map(|account| {
                    criteria.iter().map(|criterion| Watch {
                        mode,
                        account: account.address(),
                        criterion: *criterion,
                        endpoint: endpoint.clone(),
                        correlator: correlator.clone(),
                        by: asker.address(),
                    })
                })
                .collect();
            let kept = parlay
                .watch(watches)
                .map_err(|_| Exception::service("SVC0005", "Duplicate correlator %1", &[&correlator]))?;
            sources.runtime.keep_parlay_rules(&kept);
            tracing::info!(asker = %asker.address(), ?mode, %endpoint, "Parlay X notification started");
            Ok(Answer::Done)
        }
        "stopCallNotification" | "stopCallDirectionNotification" => {
            let mode = mode_of(operation);
            let accounts: Vec<String> = accounts(sources, asker, parts)?
                .iter()
                .map(|account| account.address())
                .collect();
            let criteria = criteria(parts, mode)?;
            let (removed, kept) = parlay.unwatch(mode, &accounts, &criteria);
            if removed == 0 {
                return Err(Exception::service(
                    "SVC0002",
                    "Invalid input value for message part %1",
                    &["addresses"],
                ));
            }
            sources.runtime.keep_parlay_rules(&kept);
            Ok(Answer::Done)
        }
        "setRules" => {
            let account = account(sources, asker, &required(parts, "address")?)?;
            let rules = parts.group("rules").ok_or_else(|| missing("rules"))?;
            let list = |name: &str| -> Vec<String> {
                rules
                    .iter()
                    .filter(|(key, value)| key == name && !value.trim().is_empty())
                    .map(|(_, value)| value.trim().to_string())
                    .collect()
            };
            let handling = Handling {
                accept: list("acceptList"),
                block: list("blockList"),
                forward: list("forwardList"),
            };
            for target in &handling.forward {
                check_forward(sources, &account, target)?;
            }
            let kept = parlay.set_handling(&account.address(), handling);
            sources.runtime.keep_parlay_rules(&kept);
            Ok(Answer::Done)
        }
        "getRules" => {
            let account = account(sources, asker, &required(parts, "address")?)?;
            Ok(Answer::Rules(
                parlay.handling(&account.address()).unwrap_or_default(),
            ))
        }
        "clearRules" => {
            let account = account(sources, asker, &required(parts, "address")?)?;
            let kept = parlay.set_handling(&account.address(), Handling::default());
            sources.runtime.keep_parlay_rules(&kept);
            Ok(Answer::Done)
        }
        other => Err(Exception::service(
            "SVC0001",
            "A service error occurred. Error code is %1",
            &[&format!("unknown operation {other}")],
        )),
    }
}

fn mode_of(operation: &str) -> Mode {
    if operation.contains("Direction") {
        Mode::Direction
    } else {
        Mode::Notification
    }
}

/// The criteria asked for (all four when none is given).
fn criteria(parts: &dyn Parts, mode: Mode) -> Result<Vec<Criterion>, Exception> {
    let given = parts.list("criteria");
    if given.is_empty() {
        return Ok(vec![
            Criterion::Busy,
            Criterion::NotReachable,
            Criterion::NoAnswer,
            Criterion::CalledNumber,
        ]);
    }
    let _ = mode;
    given
        .iter()
        .map(|text| Criterion::parse(text).ok_or_else(|| missing("criteria")))
        .collect()
}

/// The accounts of `addresses`, each one the asker may set rules for.
fn accounts(
    sources: &Sources,
    asker: &Arc<Account>,
    parts: &dyn Parts,
) -> Result<Vec<Arc<Account>>, Exception> {
    let addresses = parts.list("addresses");
    if addresses.is_empty() {
        return Err(Exception::service(
            "SVC0004",
            "No valid addresses provided in message part %1",
            &["addresses"],
        ));
    }
    addresses
        .iter()
        .map(|address| account(sources, asker, address))
        .collect()
}

/// The account `address` names (`sip:petrov@example.com`, `petrov`,
/// `202`), if the asker may set its rules.
fn account(sources: &Sources, asker: &Arc<Account>, address: &str) -> Result<Arc<Account>, Exception> {
    let bare = address
        .trim()
        .trim_start_matches("sip:")
        .trim_start_matches("tel:");
    let found = match address::resolve(&sources.runtime.directory, bare, Some(&asker.domain), None) {
        Ok(Destination::Account { account, .. }) => account,
        _ => {
            return Err(Exception::service(
                "SVC0004",
                "No valid addresses provided in message part %1",
                &[address],
            ))
        }
    };
    if !asker.may_act_for(&found) {
        return Err(not_allowed(&format!(
            "{} may not set the rules of {}",
            asker.address(),
            found.address()
        )));
    }
    let administrator = asker.address() != found.address();
    if !administrator && !sources.runtime.config.parlay.rules_allowed {
        return Err(not_allowed(&format!(
            "{} may not change its own rules (parlay.rules_allowed)",
            asker.address()
        )));
    }
    Ok(found)
}

/// A forward target: an address pbxd can route, a number within the
/// account's class of service.
fn check_forward(sources: &Sources, account: &Arc<Account>, target: &str) -> Result<(), Exception> {
    let bare = target.trim().trim_start_matches("tel:");
    match address::resolve(
        &sources.runtime.directory,
        bare,
        Some(&account.domain),
        Some(account),
    ) {
        Ok(Destination::Outside(number)) if !account.class_of_service.allows(&number) => {
            Err(not_allowed(&format!(
                "{number} is not allowed by the class of service of {}",
                account.address()
            )))
        }
        Ok(_) => Ok(()),
        Err(_) => Err(missing("forwardList")),
    }
}
