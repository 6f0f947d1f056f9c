//! Third Party Call (Parlay X 2.x, and participants as pbxd adds them):
//! each operation as seed 004 maps it onto `parlayMakeCall.sppr`, the
//! task started for the authenticated user.
//!
//! - `makeCall` starts the program with the calling and called parties
//!   (and the charging information); the call identifier is its task ID;
//! - `getCallInformation` reads the status the program keeps with
//!   `SetApplicationStatus` (it lingers `parlay.linger_seconds` after the
//!   call, then the identifier is unknown);
//! - `endCall`, `cancelCall`: the events `endCall`, `cancelCall`;
//! - `addCallParticipant`, `deleteCallParticipant`: `addCallPeer`,
//!   `delCallPeer` with the participant's URI; `transferCallParticipant`:
//!   `transferTarget` (the call it goes to) then `transferCallPeer` (the
//!   participant), both to the call it leaves.

use std::sync::Arc;

use pbx_lang::value::{Bytes, Portable, TaskId};
use pbx_runtime::address::{self, Destination};
use pbx_runtime::directory::Account;
use pbx_runtime::task::TaskInput;

use crate::Sources;
use pbx_runtime::soap::{Element, Exception};

/// The program behind `makeCall`.
pub const PROGRAM: &str = "parlayMakeCall";

/// The parts of a request, whatever carried it.
pub trait Parts: Sync {
    /// The text of part `name`, trimmed; `None` when missing or empty.
    fn text(&self, name: &str) -> Option<String>;
    /// A part made of named texts (`charging`), in order; a name given
    /// several times (a list) comes once for each.
    fn group(&self, name: &str) -> Option<Vec<(String, String)>>;
    /// A part given any number of times (`addresses`), trimmed, empty
    /// ones left out.
    fn list(&self, name: &str) -> Vec<String>;
}

impl Parts for Element {
    fn text(&self, name: &str) -> Option<String> {
        self.text_of(name)
            .filter(|text| !text.is_empty())
            .map(str::to_string)
    }

    fn group(&self, name: &str) -> Option<Vec<(String, String)>> {
        let group = self.child(name)?;
        Some(
            group
                .children
                .iter()
                .map(|child| (child.name.clone(), child.text.trim().to_string()))
                .collect(),
        )
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.children
            .iter()
            .filter(|child| child.name == name)
            .map(|child| child.text.trim().to_string())
            .filter(|text| !text.is_empty())
            .collect()
    }
}

/// A JSON value as the text of a part.
fn json_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.trim().to_string()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        serde_json::Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

impl Parts for serde_json::Value {
    fn text(&self, name: &str) -> Option<String> {
        let text = match self.get(name)? {
            serde_json::Value::String(text) => text.trim().to_string(),
            serde_json::Value::Number(number) => number.to_string(),
            _ => return None,
        };
        (!text.is_empty()).then_some(text)
    }

    fn group(&self, name: &str) -> Option<Vec<(String, String)>> {
        let group = self.get(name)?.as_object()?;
        let mut pairs = Vec::new();
        for (key, value) in group {
            match value {
                serde_json::Value::Array(items) => {
                    pairs.extend(items.iter().filter_map(json_text).map(|text| (key.clone(), text)))
                }
                other => pairs.extend(json_text(other).map(|text| (key.clone(), text))),
            }
        }
        Some(pairs)
    }

    fn list(&self, name: &str) -> Vec<String> {
        let items = match self.get(name) {
            Some(serde_json::Value::Array(items)) => items.iter().filter_map(json_text).collect(),
            Some(other) => json_text(other).into_iter().collect(),
            None => Vec::new(),
        };
        items
            .into_iter()
            .filter(|text: &String| !text.is_empty())
            .collect()
    }
}

pub(crate) fn missing(part: &str) -> Exception {
    Exception::service("SVC0002", "Invalid input value for message part %1", &[part])
}

pub(crate) fn required(parts: &dyn Parts, name: &str) -> Result<String, Exception> {
    parts.text(name).ok_or_else(|| missing(name))
}

/// What an operation gives back.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// No result (`endCall`…).
    Done,
    /// A call identifier (`makeCall`).
    Identifier(String),
    /// `getCallInformation`.
    Information(CallInformation),
}

/// A call's state as Parlay X tells it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CallInformation {
    /// `CallInitial`, `CallConnected`, `CallTerminated`.
    pub status: String,
    /// Seconds since 1970.
    pub start: Option<i64>,
    /// Seconds connected.
    pub duration: Option<i64>,
    /// `CallingPartyNoAnswer`, `CalledPartyBusy`, `CallHangUp`…
    pub termination_cause: Option<String>,
    /// Everybody the call has connected now (pbxd's own part).
    pub participants: Vec<String>,
}

/// Carries out `operation` for `asker`.
pub async fn perform(
    sources: &Sources,
    asker: &Arc<Account>,
    operation: &str,
    parts: &dyn Parts,
) -> Result<Answer, Exception> {
    match operation {
        "makeCall" => make_call(sources, asker, parts).await,
        "getCallInformation" => {
            let (_, summary) = owned_call(sources, asker, parts, "callIdentifier")?;
            Ok(Answer::Information(information(&summary.status)))
        }
        "endCall" | "cancelCall" => {
            let (id, _) = owned_call(sources, asker, parts, "callIdentifier")?;
            send(sources, id, operation, Portable::Null)
        }
        "addCallParticipant" | "deleteCallParticipant" => {
            let (id, _) = owned_call(sources, asker, parts, "callIdentifier")?;
            let participant = required(parts, "participant")?;
            check_address(asker, sources, &participant, "participant")?;
            let event = if operation == "addCallParticipant" {
                "addCallPeer"
            } else {
                "delCallPeer"
            };
            send(sources, id, event, Portable::str(&participant))
        }
        "transferCallParticipant" => {
            // From the call `sourceCallIdentifier` to `callIdentifier`.
            let (target, _) = owned_call(sources, asker, parts, "callIdentifier")?;
            let (from, _) = owned_call(sources, asker, parts, "sourceCallIdentifier")?;
            let participant = required(parts, "participant")?;
            send(sources, from, "transferTarget", Portable::Task(target))?;
            send(sources, from, "transferCallPeer", Portable::str(&participant))
        }
        other => Err(Exception::service(
            "SVC0001",
            "A service error occurred. Error code is %1",
            &[&format!("unknown operation {other}")],
        )),
    }
}

fn send(sources: &Sources, id: TaskId, event: &str, parameter: Portable) -> Result<Answer, Exception> {
    let input = TaskInput::Event {
        name: event.to_string(),
        sender: None,
        parameter,
    };
    if sources.runtime.registry.send(id, input) {
        Ok(Answer::Done)
    } else {
        Err(missing("callIdentifier"))
    }
}

/// The call `part` names, when it is a `parlayMakeCall` the asker may
/// act on (their own, or their domain's for its administrator).
fn owned_call(
    sources: &Sources,
    asker: &Account,
    parts: &dyn Parts,
    part: &str,
) -> Result<(TaskId, pbx_runtime::task::TaskSummary), Exception> {
    let text = required(parts, part)?;
    let id = text.parse::<u64>().map(TaskId).map_err(|_| missing(part))?;
    let summary = sources
        .runtime
        .registry
        .summary(id)
        .filter(|summary| summary.program.trim_end_matches(".sppr") == PROGRAM)
        .ok_or_else(|| missing(part))?;
    let (user, domain) = summary.account.split_once('@').unwrap_or((&summary.account, ""));
    let owner = sources.runtime.directory.find(user, domain);
    match owner {
        Some(owner) if asker.may_act_for(&owner) => Ok((id, summary)),
        _ => Err(not_allowed(&format!(
            "{} may not act on call {text}",
            asker.address()
        ))),
    }
}

pub(crate) fn not_allowed(why: &str) -> Exception {
    Exception::service("POL0001", "A policy error occurred. Error code is %1", &[why])
}

/// `address` as a party of a call made for `asker`: somewhere pbxd can
/// call (a number the asker's class of service allows).
fn check_address(
    asker: &Arc<Account>,
    sources: &Sources,
    address: &str,
    part: &str,
) -> Result<(), Exception> {
    let dialled = address.strip_prefix("tel:").unwrap_or(address);
    match address::resolve(
        &sources.runtime.directory,
        dialled,
        Some(&asker.domain),
        Some(asker),
    ) {
        Ok(Destination::Outside(number)) if !asker.class_of_service.allows(&number) => {
            Err(not_allowed(&format!(
                "{number} is not allowed by the class of service of {}",
                asker.address()
            )))
        }
        Ok(Destination::App { .. }) => Err(missing(part)),
        Ok(_) => Ok(()),
        Err(_) => Err(missing(part)),
    }
}

async fn make_call(sources: &Sources, asker: &Arc<Account>, parts: &dyn Parts) -> Result<Answer, Exception> {
    let calling = required(parts, "callingParty")?;
    let called = required(parts, "calledParty")?;
    check_address(asker, sources, &calling, "callingParty")?;
    check_address(asker, sources, &called, "calledParty")?;
    let charging = match parts.group("charging") {
        Some(group) => Portable::Dict(
            group
                .into_iter()
                .map(|(key, value)| (Bytes::from(key.as_str()), Portable::str(&value)))
                .collect(),
            false,
        ),
        None => Portable::Null,
    };
    let linger = i64::try_from(sources.runtime.config.parlay.linger_seconds).unwrap_or(30);
    let parameters = vec![
        Portable::str(calling.strip_prefix("tel:").unwrap_or(&calling)),
        Portable::str(called.strip_prefix("tel:").unwrap_or(&called)),
        charging,
        Portable::Num(linger),
    ];
    let (sender, started) = tokio::sync::oneshot::channel();
    let runtime = sources.runtime.clone();
    let account = asker.clone();
    sources.spawner.run_on(sources.next_shard(), move || {
        let _ = sender.send(runtime.start_app(PROGRAM, account, None, parameters));
    });
    match started.await {
        Ok(Ok(task)) => {
            tracing::info!(account = %asker.address(), %calling, %called, task = task.0, "Parlay X makeCall");
            Ok(Answer::Identifier(task.0.to_string()))
        }
        Ok(Err(error)) => Err(Exception::service(
            "SVC0001",
            "A service error occurred. Error code is %1",
            &[&error.to_string()],
        )),
        Err(_) => Err(Exception::service(
            "SVC0001",
            "A service error occurred. Error code is %1",
            &["pbxd is stopping"],
        )),
    }
}

/// The status dictionary of a `parlayMakeCall` task, as Parlay X's
/// `CallInformation`.
pub fn information(status: &Portable) -> CallInformation {
    let Portable::Dict(entries, _) = status else {
        return CallInformation {
            status: "CallInitial".into(),
            ..CallInformation::default()
        };
    };
    let get = |key: &str| {
        entries
            .iter()
            .find(|(name, _)| name.as_slice() == key.as_bytes())
            .map(|(_, value)| value)
    };
    let text = |key: &str| match get(key) {
        Some(Portable::Str(text)) => Some(text.to_str_lossy().into_owned()),
        _ => None,
    };
    let seconds = |key: &str| match get(key) {
        Some(Portable::Num(number)) => Some(*number),
        Some(Portable::Date(seconds)) => Some(*seconds),
        _ => None,
    };
    let participants = match get("participants") {
        Some(Portable::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Portable::Str(text) => Some(text.to_str_lossy().into_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let status = text("callStatus").unwrap_or_else(|| "CallInitial".into());
    // Connected: the time since the answer, so far.
    let duration = seconds("duration").or_else(|| {
        let answered = seconds("answerTime")?;
        let now = jiff::Timestamp::now().as_second();
        (status == "CallConnected").then(|| (now - answered).max(0))
    });
    CallInformation {
        status,
        start: seconds("startTime"),
        duration,
        termination_cause: text("terminationCause"),
        participants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_dictionary_reads_as_call_information() {
        let status = Portable::Dict(
            vec![
                (Bytes::from("callStatus"), Portable::str("CallTerminated")),
                (Bytes::from("startTime"), Portable::Num(1_765_000_000)),
                (Bytes::from("duration"), Portable::Num(12)),
                (Bytes::from("terminationCause"), Portable::str("CallHangUp")),
                (
                    Bytes::from("participants"),
                    Portable::Array(vec![Portable::str("ivanov@example.com")]),
                ),
            ],
            false,
        );
        assert_eq!(
            information(&status),
            CallInformation {
                status: "CallTerminated".into(),
                start: Some(1_765_000_000),
                duration: Some(12),
                termination_cause: Some("CallHangUp".into()),
                participants: vec!["ivanov@example.com".into()],
            }
        );
        assert_eq!(information(&Portable::Null).status, "CallInitial");
    }

    #[test]
    fn parts_read_alike_from_xml_and_json() {
        let xml = pbx_runtime::soap::operation(
            b"<Envelope><Body><makeCall><callingParty> 201 </callingParty><calledParty/><charging><amount>1.5</amount></charging></makeCall></Body></Envelope>",
        )
        .unwrap();
        let json =
            serde_json::json!({"callingParty": " 201 ", "calledParty": "", "charging": {"amount": 1.5}});
        for parts in [&xml as &dyn Parts, &json as &dyn Parts] {
            assert_eq!(parts.text("callingParty").as_deref(), Some("201"));
            assert_eq!(parts.text("calledParty"), None);
            assert_eq!(required(parts, "calledParty"), Err(missing("calledParty")));
            assert_eq!(
                parts.group("charging"),
                Some(vec![("amount".to_string(), "1.5".to_string())])
            );
        }
    }
}
