//! Built-ins that need the server: environment and accounts (CGPL.md §6.8),
//! logging and HTTP (§6.9), mail (§6.10), tasks, meetings and queues
//! (§6.11), and the call, media and bridge functions of §7.
//!
//! They are declared here, so the compiler checks every call to them; the
//! runtime carries them out through [`crate::vm::Host`], matching on
//! [`HostFn`]. One line below declares both the variant and the registry
//! entry.

use super::{Binding, Builtin, Kind};

macro_rules! host_builtins {
    ($( $name:ident : $kind:ident $min:literal ..= $max:tt $signature:literal ; )*) => {
        /// The built-ins the runtime carries out.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(clippy::upper_case_acronyms)]
        pub enum HostFn {
            $( $name, )*
        }

        impl HostFn {
            /// The built-in's documented name.
            pub fn name(self) -> &'static str {
                match self {
                    $( HostFn::$name => stringify!($name), )*
                }
            }
        }

        pub(super) const TABLE: &[Builtin] = &[
            $( Builtin {
                name: stringify!($name),
                min_args: $min,
                max_args: host_builtins!(@max $max),
                signature: $signature,
                kind: host_builtins!(@kind $kind),
                binding: Binding::Host(HostFn::$name),
            }, )*
        ];
    };
    (@max $max:literal) => { $max };
    (@kind function) => { Kind::Function };
    (@kind procedure) => { Kind::Procedure };
}

host_builtins! {
    // §6.7
    SystemInfo: function 1..=1 "what";
    // §6.8 environment, account, routing
    MyDomain: function 0..=0 "";
    MyEmail: function 0..=0 "";
    GetLanguage: function 0..=0 "";
    SetLanguage: procedure 1..=1 "language";
    ReadEnvirFile: function 1..=1 "name";
    GetAccountPreferences: function 1..=1 "key";
    SetAccountPreferences: function 2..=2 "value, key";
    Impersonate: function 1..=1 "address";
    ReadGroupMembers: function 1..=1 "group";
    ReadTelnums: function 0..=1 "[account]";
    UpdateAccountMailRule: function 1..=2 "rule [, account]";
    UpdateAccountSignalRule: function 1..=2 "rule [, account]";
    RouteAddress: function 2..=2 "address, type";
    RouteENUM: function 3..=3 "service, number, domain";
    PhoneNumberToSIPURI: function 1..=1 "number";
    // §6.9 logging, CLI, status, accounting, HTTP
    SysLog: procedure 1..=1 "x";
    SysProfile: procedure 1..=1 "flag";
    ExecuteCLI: function 1..=1 "command";
    SetApplicationStatus: procedure 1..=1 "status";
    StoreCDR: procedure 1..=1 "record";
    DoBalance: function 2..=2 "parameters, account";
    Statistics: function 3..=3 "name, operation, value";
    HTTPCall: function 2..=2 "url, parameters";
    // §6.10 messaging
    SubmitEMail: function 2..=2 "headers, content";
    SendEMail: function 5..=5 "from, subject, to, headers, content";
    SendInstantMessage: function 3..=3 "from, to, content";
    SendXMPPIQ: function 3..=3 "from, to, content";
    RADIUSCall: function 2..=2 "address, parameters";
    // §6.11 tasks, events, meetings, queues
    ThisTask: function 0..=0 "";
    SendEvent: function 2..=3 "task, name [, parameter]";
    ReadInput: function 1..=1 "seconds";
    CreateMeeting: function 2..=3 "set, key [, parameter]";
    ActivateMeeting: function 2..=3 "set, key [, parameter]";
    DeactivateMeeting: function 2..=3 "set, key [, parameter]";
    RemoveMeeting: function 2..=2 "set, key";
    FindMeeting: function 2..=2 "set, key";
    ClearMeeting: function 2..=2 "set, key";
    Enqueue: function 1..=3 "queue [, parameter [, priority]]";
    CheckQueue: function 1..=1 "queue";
    Dequeue: procedure 1..=1 "queue";
    ReadQueue: function 1..=1 "queue";
    // §6.12 file storage (per account, kept in the store)
    ReadStorageFile: function 1..=1 "file";
    WriteStorageFile: function 2..=2 "file, data";
    AppendStorageFile: function 2..=2 "file, data";
    DeleteStorageFile: function 1..=1 "file";
    RenameStorageFile: function 2..=2 "old, new";
    ListStorageFiles: function 0..=1 "[folder]";
    // pbxd: checks the account's PIN without revealing it
    CheckAccountPIN: function 1..=1 "pin";
    SetAccountPIN: function 1..=1 "pin";
    // pbxd: virtual lines on the calling phone (hot desk)
    HotDeskLogin: function 1..=2 "line [, pin]";
    HotDeskLogout: function 1..=1 "line";
    HotDeskLines: function 0..=0 "";
    // pbxd: call queues (queue.sppr, agent.sppr)
    QueueSettings: function 0..=1 "[queue]";
    QueueStatus: function 1..=2 "queue [, agents]";
    // pbxd: numbers routed by a web server (weburl.sppr)
    ReadNumber: function 1..=1 "number";
    RouteCall: function 1..=1 "address";
    CallIDs: function 0..=0 "";
    SetCallURLs: function 3..=3 "answerURL, hangupURL, fields";
    // §7.2 call signalling
    AcceptCall: function 0..=0 "";
    RejectCall: procedure 1..=1 "code";
    RedirectCall: procedure 1..=1 "destination";
    ForkCall: procedure 1..=1 "destination";
    ProvisionCall: function 1..=2 "media [, reliably]";
    SetCallParameters: procedure 1..=1 "parameters";
    StartCall: function 1..=1 "destination";
    CancelCall: procedure 0..=0 "";
    Disconnect: procedure 0..=2 "[reasonCode, reasonText]";
    IsConnected: function 0..=0 "";
    IsHalfConnected: function 0..=0 "";
    RemoteURI: function 0..=0 "";
    LocalURI: function 0..=0 "";
    IncomingRequestURI: function 0..=0 "";
    RouteLocalURI: function 1..=1 "uri";
    RemoteIPAddress: function 0..=0 "";
    RemoteAuthentication: function 0..=0 "";
    PendingRequestData: function 1..=1 "field";
    PendingRequestExData: function 1..=1 "name";
    SetLocalContactParameter: procedure 2..=2 "name, value";
    // §7.3 media
    PlayFile: procedure 1..=2 "name [, milliseconds]";
    Play: procedure 1..=2 "data [, milliseconds]";
    PlayTone: procedure 2..=4 "frequency, milliseconds [, frequency2 [, ratio]]";
    GetPlayPosition: function 0..=0 "";
    SetPlayPosition: procedure 1..=1 "milliseconds";
    IsPlayCompleted: function 0..=0 "";
    SetInterruptOnDTMF: function 1..=1 "flag";
    SendDTMF: function 1..=1 "symbol";
    DTMF: function 0..=0 "";
    ClearDTMF: procedure 0..=0 "";
    Record: function 1..=1 "seconds";
    SetLocalHold: procedure 1..=1 "flag";
    ReleaseMediaChannel: procedure 0..=0 "";
    MediaOption: function 1..=2 "name [, value]";
    // §7.4 bridging, conferencing, transfer
    StartBridge: function 1..=1 "task";
    AcceptBridge: function 1..=1 "event";
    RejectBridge: function 2..=2 "event, error";
    BreakBridge: function 0..=0 "";
    StartBridgedCall: function 2..=2 "destination, event";
    AttachMixer: function 1..=1 "event";
    DetachMixer: function 1..=1 "task";
    MixerAttached: function 0..=0 "";
    MuteMixer: procedure 2..=2 "task, flag";
    TransferSupported: function 0..=0 "";
    TransferCall: function 1..=1 "destination";
    StartTransfer: function 1..=1 "task";
    AcceptTransfer: function 1..=1 "event";
    RejectTransfer: function 2..=2 "event, error";
    SendCallInfo: function 1..=1 "parameters";
    SendCallOptions: function 1..=1 "destination";
    SendCallNotify: function 1..=1 "parameters";
    SignalOption: function 1..=2 "name [, value]";
}
