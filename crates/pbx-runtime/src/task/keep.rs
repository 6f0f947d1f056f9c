//! The built-ins that keep things for a task: file storage (CGPL §6.12),
//! meetings (§6.11) and the PIN check.

use pbx_lang::builtins::HostFn;
use pbx_lang::value::time::Clock;
use pbx_lang::value::{Bytes, OpError, Portable, TaskId, Value};
use pbx_lang::HostOutcome;

use super::host::{arg, done, error_string, null, text_arg, TaskHost};
use super::ops::Op;
use crate::store::{parse_priority, Listed, Meeting};

/// The bytes of a string or datablock argument.
fn data_arg(value: &Value) -> Option<&[u8]> {
    match value {
        Value::Str(bytes) | Value::Data(bytes) => Some(bytes.as_slice()),
        _ => None,
    }
}

fn portable(parameter: Option<&Value>) -> Result<Option<Portable>, OpError> {
    parameter.map(Value::to_portable).transpose()
}

impl TaskHost {
    /// Whose storage and which file: a name, or `{fileName; accountName}`
    /// for another account the task may act for.
    fn storage_target(&self, value: &Value) -> Result<(String, String), String> {
        let (name, account) = match value {
            Value::Dict(_) => {
                let dict = value.to_portable().map_err(|error| error.message)?;
                let field = |wanted: &str| match &dict {
                    Portable::Dict(entries, _) => entries.iter().find_map(|(key, value)| match value {
                        Portable::Str(text) if key.to_str_lossy().eq_ignore_ascii_case(wanted) => {
                            Some(text.to_str_lossy().into_owned())
                        }
                        _ => None,
                    }),
                    _ => None,
                };
                (field("fileName"), field("accountName"))
            }
            _ => (text_arg(std::slice::from_ref(value), 0), None),
        };
        let name = name.ok_or("the file must be named by a string")?;
        let owner = match account {
            None => self.account.address(),
            Some(other) => self.account_acted_for(&other, "files")?.address(),
        };
        Ok((owner, name))
    }

    pub(super) fn storage(&mut self, function: HostFn, args: &[Value]) -> HostOutcome<Op> {
        let storage = &self.runtime.storage;
        let now = self.runtime.clock.now();
        let target = |index: usize| self.storage_target(arg(args, index));
        let outcome = match function {
            HostFn::ReadStorageFile => {
                return match target(0)
                    .and_then(|(owner, name)| storage.read(&owner, &name).map_err(|error| error.to_string()))
                {
                    Ok(contents) => done(Value::Data(Bytes::from_vec(contents))),
                    Err(_) => null(),
                };
            }
            HostFn::WriteStorageFile | HostFn::AppendStorageFile => {
                let Some(data) = data_arg(arg(args, 1)) else {
                    return error_string("the data must be a string or a datablock");
                };
                let append = function == HostFn::AppendStorageFile;
                target(0).and_then(|(owner, name)| {
                    storage
                        .write(&owner, &name, data, append, now)
                        .map_err(|error| error.to_string())
                })
            }
            HostFn::DeleteStorageFile => target(0)
                .and_then(|(owner, name)| storage.delete(&owner, &name).map_err(|error| error.to_string())),
            HostFn::RenameStorageFile => target(0).and_then(|(owner, old)| {
                let (_, new) = target(1)?;
                storage
                    .rename(&owner, &old, &new)
                    .map_err(|error| error.to_string())
            }),
            HostFn::ListStorageFiles => {
                let listing = match arg(args, 0) {
                    Value::Null => Ok((self.account.address(), None)),
                    other => self
                        .storage_target(other)
                        .map(|(owner, name)| (owner, Some(name))),
                }
                .and_then(|(owner, folder)| {
                    storage
                        .list(&owner, folder.as_deref())
                        .map_err(|error| error.to_string())
                });
                return match listing {
                    Ok(entries) => done(listing_value(entries)),
                    Err(message) => error_string(message),
                };
            }
            _ => Err(format!("{} is not a storage function", function.name())),
        };
        match outcome {
            Ok(()) => null(),
            Err(message) => error_string(message),
        }
    }

    pub(super) fn meeting(&mut self, function: HostFn, args: &[Value]) -> HostOutcome<Op> {
        let (Some(set), Some(key)) = (text_arg(args, 0), text_arg(args, 1)) else {
            return error_string("the meeting set and key must be strings");
        };
        let parameter = match portable(args.get(2)) {
            Ok(parameter) => parameter,
            Err(error) => return HostOutcome::Fail(error),
        };
        let owner = self.account.address();
        let meetings = &self.runtime.meetings;
        let registry = &self.runtime.registry;
        let alive = |task: TaskId| registry.sender(task).is_some();
        let outcome = match function {
            HostFn::CreateMeeting => meetings.create(&owner, &set, &key, parameter.unwrap_or(Portable::Null)),
            HostFn::ActivateMeeting | HostFn::DeactivateMeeting => meetings.activate(
                &owner,
                &set,
                &key,
                parameter,
                self.id,
                function == HostFn::ActivateMeeting,
                alive,
            ),
            HostFn::FindMeeting => {
                return match meetings.find(&owner, &set, &key, alive) {
                    Some(meeting) => done(meeting_value(meeting)),
                    None => null(),
                };
            }
            HostFn::ClearMeeting => meetings.clear(&owner, &set, &key, false),
            _ => meetings.clear(&owner, &set, &key, true),
        };
        match outcome {
            Ok(()) => null(),
            Err(error) => error_string(error.to_string()),
        }
    }

    /// The queue built-ins (CGPL §6.11): `Enqueue(queue [, parameter [,
    /// priority]])` and `CheckQueue(queue)` give `{length; position}` (no
    /// position when the task is not in it), `Dequeue(queue)` leaves it,
    /// `ReadQueue(queue)` takes the head: `{id; parameter}`, or null when
    /// the queue is empty. Queues are the task's account's.
    pub(super) fn queue(&mut self, function: HostFn, args: &[Value]) -> HostOutcome<Op> {
        let Some(queue) = text_arg(args, 0) else {
            return error_string("the queue name must be a string");
        };
        let owner = self.account.address();
        let queues = &self.runtime.queues;
        let registry = &self.runtime.registry;
        let alive = |task: TaskId| registry.sender(task).is_some();
        let place = |length: usize, position: Option<usize>| {
            let mut entries = vec![(Bytes::from("length"), Portable::Num(length as i64))];
            if let Some(position) = position {
                entries.push((Bytes::from("position"), Portable::Num(position as i64)));
            }
            done(Portable::Dict(entries, false).to_value())
        };
        match function {
            HostFn::Enqueue => {
                let parameter = match portable(args.get(1)) {
                    Ok(parameter) => parameter.unwrap_or(Portable::Null),
                    Err(error) => return HostOutcome::Fail(error),
                };
                let priority = match arg(args, 2) {
                    Value::Null => Some(1000),
                    Value::Num(number) => number.checked_mul(1000),
                    other => text_arg(std::slice::from_ref(other), 0).and_then(|text| parse_priority(&text)),
                };
                let Some(priority) = priority else {
                    return error_string("the priority must be a number like \"1.0\"");
                };
                let (length, position) = queues.enqueue(&owner, &queue, self.id, parameter, priority, alive);
                place(length, Some(position))
            }
            HostFn::CheckQueue => {
                let (length, position) = queues.check(&owner, &queue, self.id, alive);
                place(length, position)
            }
            HostFn::Dequeue => {
                queues.dequeue(&owner, &queue, self.id, alive);
                null()
            }
            _ => match queues.read(&owner, &queue, alive) {
                Some(head) => done(
                    Portable::Dict(
                        vec![
                            (Bytes::from("id"), Portable::Task(head.task)),
                            (Bytes::from("parameter"), head.parameter),
                        ],
                        false,
                    )
                    .to_value(),
                ),
                None => null(),
            },
        }
    }

    /// `SetAccountPIN(pin)`: the account's PIN from now on (4 to 16
    /// digits), kept in the store; null, or why not. Never logged.
    pub(super) fn set_pin(&self, args: &[Value]) -> HostOutcome<Op> {
        let Some(pin) = text_arg(args, 0) else {
            return error_string("the PIN must be a string of digits");
        };
        if !(4..=16).contains(&pin.len()) || !pin.chars().all(|c| c.is_ascii_digit()) {
            return error_string("a PIN is 4 to 16 digits");
        }
        if let Err(error) = self.runtime.storage.keep_pin(&self.account.address(), &pin) {
            return error_string(error.to_string());
        }
        self.account.set_pin(&pin);
        tracing::info!(account = %self.account.address(), "the PIN was changed");
        null()
    }

    /// `CheckAccountPIN(pin)`: whether `pin` is the account's PIN. The PIN
    /// itself never reaches the script (nor the log). Wrong ones lock the
    /// account's checks for a while (`pins`), except on a call from the
    /// account's own phone.
    pub(super) fn check_pin(&self, args: &[Value]) -> HostOutcome<Op> {
        let given = text_arg(args, 0).unwrap_or_default();
        let address = self.account.address();
        let own_phone = self
            .call
            .as_ref()
            .and_then(|leg| leg.info.settings())
            .is_some_and(|caller| caller.address() == address);
        let now = self.runtime.clock.now();
        let pins = &self.runtime.pins;
        if !own_phone && pins.locked(&address, now) {
            tracing::info!(account = %address, "PIN refused: too many wrong PINs lately");
            return done(Value::from_bool(false));
        }
        let matches = self
            .account
            .pin()
            .is_some_and(|pin| !pin.is_empty() && crate::hotdesk::same_pin(&given, &pin));
        if !own_phone && pins.checked(&address, matches, now) {
            tracing::warn!(account = %address, "PIN checks locked: too many wrong PINs in a row");
        }
        done(Value::from_bool(matches))
    }
}

fn listing_value(entries: Vec<(String, Listed)>) -> Value {
    let entries = entries
        .into_iter()
        .map(|(name, listed)| {
            let attributes = match listed {
                Listed::File { size, modified } => vec![
                    (Bytes::from("STSize"), Portable::Num(size as i64)),
                    (Bytes::from("STModified"), Portable::Date(modified)),
                ],
                Listed::Folder { files } => vec![(Bytes::from("STFiles"), Portable::Num(files as i64))],
            };
            (Bytes::from(name), Portable::Dict(attributes, false))
        })
        .collect();
    Portable::Dict(entries, false).to_value()
}

fn meeting_value(meeting: Meeting) -> Value {
    let mut entries = vec![(Bytes::from("parameter"), meeting.parameter)];
    if let Some(task) = meeting.task {
        entries.push((Bytes::from("id"), Portable::Task(task)));
    }
    Portable::Dict(entries, false).to_value()
}
