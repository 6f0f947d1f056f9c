//! The registry of built-in procedures and functions.
//!
//! Every built-in the language knows is one line in a family's table: its
//! name, argument counts, whether it is a function or a procedure, and how
//! it is carried out. The compiler checks every call against this registry,
//! including the built-ins that need a server (calls, media, mail, tasks):
//! those are `Binding::Host` and the runtime carries them out through
//! [`crate::vm::Host`]. A new built-in is one function and one line.

mod containers;
mod convert;
mod crypto;
pub mod events;
mod generic;
mod host;
mod numbers;
mod strings;
mod time;

use std::collections::HashMap;
use std::sync::LazyLock;

pub use host::HostFn;

use crate::value::time::Clock;
use crate::value::{Dict, OpError, Value};

/// Whether a built-in returns a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Returns a value; used in expressions.
    Function,
    /// Returns nothing; used as a statement.
    Procedure,
}

/// `max_args` of a built-in that takes any number of arguments.
pub const VARIADIC: u8 = u8::MAX;

/// A built-in that computes its result at once, without the server.
pub type PureFn = fn(&mut Ctx<'_>, &[Value]) -> Result<Value, OpError>;

/// Built-ins the VM carries out itself, because they call script code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmFn {
    /// `FuncCall(name, args…)`
    FuncCall,
    /// `ProcCall(name, args…)`
    ProcCall,
}

/// How a built-in is carried out.
#[derive(Clone, Copy, Debug)]
pub enum Binding {
    Pure(PureFn),
    Host(HostFn),
    Vm(VmFn),
}

/// One built-in.
#[derive(Debug)]
pub struct Builtin {
    /// The documented spelling.
    pub name: &'static str,
    pub min_args: u8,
    /// [`VARIADIC`] for no upper bound.
    pub max_args: u8,
    /// The parameters, for help lines: `str, from, len`.
    pub signature: &'static str,
    pub kind: Kind,
    pub binding: Binding,
}

impl Builtin {
    /// The most arguments it takes.
    pub fn max_args(&self) -> usize {
        if self.max_args == VARIADIC {
            usize::MAX
        } else {
            usize::from(self.max_args)
        }
    }
}

/// A function built-in computed at once.
const fn function(name: &'static str, min: u8, max: u8, signature: &'static str, run: PureFn) -> Builtin {
    Builtin {
        name,
        min_args: min,
        max_args: max,
        signature,
        kind: Kind::Function,
        binding: Binding::Pure(run),
    }
}

/// A procedure built-in computed at once.
const fn procedure(name: &'static str, min: u8, max: u8, signature: &'static str, run: PureFn) -> Builtin {
    Builtin {
        name,
        min_args: min,
        max_args: max,
        signature,
        kind: Kind::Procedure,
        binding: Binding::Pure(run),
    }
}

/// What pure built-ins may see of their task.
pub struct Ctx<'a> {
    pub clock: &'a dyn Clock,
    pub zone: &'a mut TaskZone,
    /// The task's `Vars()` dictionary.
    pub vars: &'a Dict,
}

/// The time zone a task selected with `SetTimeZone`, or the server's.
#[derive(Clone, Debug)]
pub struct TaskZone {
    /// The name given to `SetTimeZone`, if one was accepted.
    pub name: Option<String>,
    /// The zone in force.
    pub zone: jiff::tz::TimeZone,
    /// The server's zone, in force when no name was selected.
    pub server: jiff::tz::TimeZone,
}

impl TaskZone {
    /// The server's zone, unnamed.
    pub fn server(zone: jiff::tz::TimeZone) -> TaskZone {
        TaskZone {
            name: None,
            zone: zone.clone(),
            server: zone,
        }
    }
}

struct Registry {
    builtins: Vec<&'static Builtin>,
    by_name: HashMap<String, u16>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let families: [&'static [Builtin]; 9] = [
        generic::TABLE,
        strings::TABLE,
        numbers::TABLE,
        time::TABLE,
        containers::TABLE,
        convert::TABLE,
        crypto::TABLE,
        events::TABLE,
        host::TABLE,
    ];
    let builtins: Vec<&'static Builtin> = families.iter().flat_map(|family| family.iter()).collect();
    let mut by_name = HashMap::new();
    for (index, builtin) in builtins.iter().enumerate() {
        let previous = by_name.insert(builtin.name.to_ascii_lowercase(), index as u16);
        debug_assert!(previous.is_none(), "built-in {} registered twice", builtin.name);
    }
    // Documented aliases.
    if let Some(&index) = by_name.get("toobject") {
        by_name.insert("textToObject".to_ascii_lowercase(), index);
    }
    Registry { builtins, by_name }
});

/// Finds a built-in by its folded (lower-case) name.
pub fn lookup(folded: &str) -> Option<(u16, &'static Builtin)> {
    let registry = &*REGISTRY;
    registry
        .by_name
        .get(folded)
        .map(|&index| (index, registry.builtins[usize::from(index)]))
}

/// The built-in with registry index `index`.
pub fn get(index: u16) -> &'static Builtin {
    REGISTRY.builtins[usize::from(index)]
}

/// All built-ins, for documentation and tests.
pub fn all() -> impl Iterator<Item = &'static Builtin> {
    REGISTRY.builtins.iter().copied()
}

/// Names of the original language that pbxd deliberately does not provide
/// (CGPL.md §6.6, §6.12 and the web-application functions): calling one is
/// a compile error that says so.
const UNSUPPORTED: &[&str] = &[
    "newxml",
    "setnamespace",
    "getnamespace",
    "getprefix",
    "setattribute",
    "getattribute",
    "xmlbody",
    "xmltype",
    "xmlprefix",
    "apptoxml",
    "xmltoapp",
    "objecttoxml",
    "listmailboxes",
    "createmailbox",
    "renamemailbox",
    "deletemailbox",
    "getmailboxacls",
    "setmailboxacls",
    "getmailboxaliases",
    "setmailboxaliases",
    "getmailboxsubscription",
    "setmailboxsubscription",
    "openmailbox",
    "openmailboxview",
    "mailboxuids",
    "subscribeevents",
    "ismailboxnotifyevent",
    "sync",
    "mailboxinternaltimebyuid",
    "mailboxflagsbyuid",
    "mailboxoriguidbyuid",
    "mailboxuidbyoriguid",
    "mailboxsetflags",
    "mailboxexpunge",
    "mailboxaudiobyuid",
    "mailboxredirectbyuid",
    "mailboxforwardbyuid",
    "mailboxappend",
    "mailboxcopy",
    "getmessageattr",
    "updatemessageattr",
    "openmessage",
    "messagepart",
    "messageheader",
    "messagebody",
    "opencalendar",
    "processcalendar",
    "createstoragedirectory",
    "renamestoragedirectory",
    "deletestoragedirectory",
    "readstoragefileattr",
    "writestoragefileattr",
    "lockstoragefile",
    "readroster",
    "setroster",
    "datasetlist",
    "datasetcreate",
    "datasetremove",
    "datasetset",
    "datasetdelete",
    "directorysearch",
    "gethttpparameter",
    "gethttpbinaryparameter",
    "gethttpfield",
    "gethttpquery",
    "gethttpresource",
    "gethttpmethod",
    "gethttptype",
    "gethttpsubtype",
    "gethttpdata",
    "sethttpresponsedata",
    "sethttpresponsetype",
    "sethttpresponsecode",
    "proxiedipaddress",
    "sendhttpcontinue",
    "addhttpresponsefield",
    "processwssp",
    "sessiondata",
    "bannerread",
];

/// Whether `folded` names a built-in of the original that pbxd lacks.
pub fn is_unsupported(folded: &str) -> bool {
    UNSUPPORTED.contains(&folded)
}

/// The built-in whose name is closest to `folded`, if one is close.
pub fn suggest(folded: &str) -> Option<&'static str> {
    closest(folded, all().map(|builtin| builtin.name))
}

/// The candidate closest to `folded` (ignoring case), if one is close
/// enough to be a typo of it: a few letters wrong, missing, extra or swapped.
pub fn closest<'a>(folded: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|candidate| (edit_distance(folded, &candidate.to_ascii_lowercase()), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Advice for names people expect that CG/PL does not have (CGPL.md §11a).
pub fn advice_for(folded: &str) -> Option<&'static str> {
    Some(match folded {
        "arraylength" => "there is no ArrayLength: `Length(array)` counts elements",
        "pendinginput" => "there is no PendingInput: `ReadInput(0)` polls, `DTMF()` peeks at the digits",
        "stopplay" | "stoprecording" => {
            "playing and recording stop by themselves on DTMF, an event or a hang-up"
        }
        "playsound" => "play a prompt with `PlayFile(name)` or a datablock with `Play(data)`",
        "getrecordedsound" => "`Record(seconds)` returns the recording",
        "getcallinfo" => "use `SignalOption(\"callInfo\")`, `PendingRequestData(field)` or `RemoteURI()`",
        "iscallprovisioned" => "use `IsCallProvisionEvent(event)` on events after StartCall",
        "iscallcompleted" => {
            "use `IsCallCompletedEvent(event)` on events after StartCall, or `IsConnected()`"
        }
        "spawntask" => "start a task with the `spawn` keyword: `spawn Entry(arguments)`",
        "break" | "continue" => "leave a loop with `exitif condition;`",
        _ => return None,
    })
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions
/// and swaps of neighbours each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in table.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in table[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[i - 1][j] + 1)
                .min(table[i][j - 1] + 1)
                .min(table[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[i - 2][j - 2] + 1);
            }
            table[i][j] = best;
        }
    }
    table[a.len()][b.len()]
}

// ---------------------------------------------------------------- helpers

/// Argument `index`, or null when it was not given.
pub(crate) fn arg(args: &[Value], index: usize) -> &Value {
    const NULL: &Value = &Value::Null;
    args.get(index).unwrap_or(NULL)
}

/// Argument `index` as a number, or a call error naming the built-in.
pub(crate) fn number_arg(args: &[Value], index: usize, builtin: &str) -> Result<i64, OpError> {
    match arg(args, index) {
        Value::Num(number) => Ok(*number),
        other => Err(OpError::call(format!(
            "{builtin}: argument {} must be a number, not {}",
            index + 1,
            other.type_name()
        ))),
    }
}

/// Argument `index` as string bytes, or a call error naming the built-in.
pub(crate) fn string_arg<'a>(args: &'a [Value], index: usize, builtin: &str) -> Result<&'a [u8], OpError> {
    match arg(args, index) {
        Value::Str(bytes) => Ok(bytes.as_slice()),
        other => Err(OpError::call(format!(
            "{builtin}: argument {} must be a string, not {}",
            index + 1,
            other.type_name()
        ))),
    }
}

/// Argument `index` as the bytes of a string or a datablock.
pub(crate) fn bytes_arg<'a>(args: &'a [Value], index: usize, builtin: &str) -> Result<&'a [u8], OpError> {
    match arg(args, index) {
        Value::Str(bytes) | Value::Data(bytes) => Ok(bytes.as_slice()),
        other => Err(OpError::call(format!(
            "{builtin}: argument {} must be a string or a datablock, not {}",
            index + 1,
            other.type_name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_registered_once() {
        let mut seen = std::collections::HashSet::new();
        for builtin in all() {
            assert!(
                seen.insert(builtin.name.to_ascii_lowercase()),
                "{} twice",
                builtin.name
            );
            assert!(
                builtin.min_args as usize <= builtin.max_args(),
                "{}",
                builtin.name
            );
            assert!(
                !is_unsupported(&builtin.name.to_ascii_lowercase()),
                "{}",
                builtin.name
            );
        }
    }

    #[test]
    fn suggestions_find_close_names() {
        assert_eq!(suggest("sendemial"), Some("SendEMail"));
        assert_eq!(suggest("substrng"), Some("Substring"));
        assert_eq!(suggest("qqqqqqqq"), None);
        assert_eq!(suggest("lenght"), Some("Length"));
    }
}
