//! SIP for pbxd (FEATURES.md §3): listeners, the registrar and its digest
//! challenge, SDP offer/answer, and call legs that put SIP dialogs and RTP
//! media behind the runtime's call abstraction.
//!
//! rsipstack carries the messages, transports, transactions and dialogs;
//! what a PBX decides (who may register, where a call goes, which codecs)
//! is ours.

pub mod digest;
pub mod sdp;
