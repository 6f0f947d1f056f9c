//! Music on hold for a task's call: `MediaOption("mixMOH")` and what
//! `SetLocalHold` plays (docs/language.md).
//!
//! The music is a prompt of the task's environment, looked up as
//! `PlayFile` looks up its names (the domain's layer first, the task's
//! language folder before the root): `moh`, or the file `mixMOH` names.
//! The leg's media channel is told which (`LegCommand::Music`) and
//! whether to play it whenever it has nothing else to send; the engine
//! plays it from its clock, so nothing is decoded or kept per call.

use std::sync::Arc;

use pbx_lang::value::{Portable, Value};
use pbx_media::prompt::Prompt;

use super::host::TaskHost;
use crate::call::{LegCommand, LegState, Media};
use crate::observe::Event;

/// The environment's music on hold: `moh.wav`.
const MUSIC_ON_HOLD: &str = "moh";

/// The option `MediaOption` keeps `mixMOH` under.
const MIX_MUSIC_OPTION: &str = "MediaOption:mixmoh";

/// What `mixMOH` is set to.
enum MixMusic {
    Off,
    /// The environment's `moh` (`true`).
    OnHold,
    /// A prompt file of the environment, by name.
    File(String),
}

impl MixMusic {
    fn of(value: &Value) -> MixMusic {
        match value {
            Value::Null => MixMusic::Off,
            // `true` is the string "YES"; any other string names a file.
            Value::Str(text) if text.as_slice() != b"YES" && !text.as_slice().is_empty() => {
                MixMusic::File(String::from_utf8_lossy(text.as_slice()).into_owned())
            }
            _ => MixMusic::OnHold,
        }
    }
}

impl TaskHost {
    fn mix_music(&self) -> MixMusic {
        self.options
            .get(MIX_MUSIC_OPTION)
            .map_or(MixMusic::Off, |value| MixMusic::of(&Portable::to_value(value)))
    }

    /// The prompt `name` names in the task's environment; `None` when
    /// there is none, said as an event when the script named it.
    fn music_prompt(&self, name: &str, named_by_script: bool) -> Option<Arc<Prompt>> {
        let problem = match self.prompt(name) {
            Ok(Some(Media::File { prompt, .. })) => return Some(prompt),
            Ok(_) => None,
            Err(Ok(error)) => Some(error.message),
            Err(Err(reason)) => Some(reason),
        };
        if named_by_script || problem.is_some() {
            let name = match problem {
                Some(problem) => format!("{name} ({problem})"),
                None => name.to_string(),
            };
            self.event(Event::PlayMissing { task: self.id, name });
        }
        None
    }

    /// Tells the call which music to play on hold (the file `mixMOH`
    /// names, else the environment's `moh`; the server's when there is
    /// none) and whether to play it when idle (`mixMOH` set).
    pub(super) fn send_music(&self) {
        let Some(leg) = self
            .call
            .as_ref()
            .filter(|leg| leg.state != LegState::Disconnected)
        else {
            return;
        };
        let (prompt, when_idle) = match self.mix_music() {
            MixMusic::Off => (self.music_prompt(MUSIC_ON_HOLD, false), false),
            MixMusic::OnHold => (self.music_prompt(MUSIC_ON_HOLD, false), true),
            MixMusic::File(name) => (
                self.music_prompt(&name, true)
                    .or_else(|| self.music_prompt(MUSIC_ON_HOLD, false)),
                true,
            ),
        };
        leg.send(LegCommand::Music { prompt, when_idle });
    }

    /// `SetLocalHold(on)`: the peer of a connected call is put on hold,
    /// hearing the task's music, or taken off.
    pub(super) fn set_local_hold(&self, on: bool) {
        let Some(leg) = self.call.as_ref().filter(|leg| leg.state == LegState::Connected) else {
            return;
        };
        if on {
            self.send_music();
        }
        leg.send(LegCommand::Hold(on));
    }
}
