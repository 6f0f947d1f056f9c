//! Media for pbxd: audio formats, and (to come) G.711, RTP pacing, DTMF
//! detection, mixing and recording.
//!
//! This crate owns audio and packets only. It must never depend on SIP, the
//! script language or the runtime.

pub mod wav;
