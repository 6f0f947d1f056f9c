//! Media for pbxd: audio formats (WAV in and out, resampling), G.711, RTP
//! packets and their pacing, RFC 4733 and in-band DTMF, prompts shared by
//! every call, recording and conference mixing, SRTP.
//!
//! The [`MediaEngine`] paces RTP for every call with one timer: its worker
//! wakes every 20 ms, reads what arrived and sends one packet per session.
//! Tasks never touch packets; they ask a [`MediaSession`] to play, record,
//! bridge or mix, and hear back when that ended or a key was pressed.
//!
//! This crate owns audio and packets only. It must never depend on SIP, the
//! script language or the runtime.

pub mod codec;
pub mod dtmf;
pub mod engine;
pub mod prompt;
mod resample;
pub mod rtp;
pub mod srtp;
pub mod wav;

pub use codec::Codec;
pub use engine::{
    MediaConfig, MediaEngine, MediaEvent, MediaEvents, MediaSession, MuteMode, Played, SessionStats,
};
pub use prompt::{Prompt, PromptCache};
