//! Conference mixers: every participant hears the sum of the others.
//!
//! The sum is taken once per mixer and tick; each participant's own voice is
//! then subtracted from it, so a conference of n costs O(n), not O(n²).

use std::collections::HashMap;

use super::receive::Frame;
use super::{IdMap, MuteMode};
use crate::prompt::FRAME_SAMPLES;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hearing {
    Everyone,
    SpecialOnly,
    NoOne,
}

#[derive(Debug)]
struct Participant {
    session: u64,
    /// The others do not hear it.
    muted: bool,
    special: bool,
    hears: Hearing,
}

impl Participant {
    fn new(session: u64) -> Participant {
        Participant {
            session,
            muted: false,
            special: false,
            hears: Hearing::Everyone,
        }
    }
}

#[derive(Debug)]
struct Mixer {
    /// The session whose channel the mixer is on (the first participant):
    /// its music, if it plays music when idle, everyone hears.
    host: u64,
    participants: Vec<Participant>,
}

/// Every conference of one engine, keyed by an id of their own.
#[derive(Debug, Default)]
pub(super) struct Mixers {
    mixers: HashMap<u64, Mixer>,
    next_id: u64,
}

impl Mixers {
    /// A new mixer with one participant; returns its id.
    pub fn create(&mut self, first: u64) -> u64 {
        self.next_id += 1;
        self.mixers.insert(
            self.next_id,
            Mixer {
                host: first,
                participants: vec![Participant::new(first)],
            },
        );
        self.next_id
    }

    pub fn add(&mut self, mixer: u64, session: u64) {
        if let Some(mixer) = self.mixers.get_mut(&mixer) {
            if !mixer
                .participants
                .iter()
                .any(|participant| participant.session == session)
            {
                mixer.participants.push(Participant::new(session));
            }
        }
    }

    /// Takes `session` out of `mixer`. A mixer left with one participant is
    /// dissolved; the sessions it let go of (besides `session`) are returned.
    pub fn remove(&mut self, mixer_id: u64, session: u64) -> Vec<u64> {
        let Some(mixer) = self.mixers.get_mut(&mixer_id) else {
            return Vec::new();
        };
        mixer
            .participants
            .retain(|participant| participant.session != session);
        if mixer.participants.len() > 1 {
            return Vec::new();
        }
        self.mixers
            .remove(&mixer_id)
            .map(|mixer| {
                mixer
                    .participants
                    .iter()
                    .map(|participant| participant.session)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn set_mode(&mut self, mixer: u64, session: u64, mode: MuteMode) {
        let Some(participant) = self.mixers.get_mut(&mixer).and_then(|mixer| {
            mixer
                .participants
                .iter_mut()
                .find(|participant| participant.session == session)
        }) else {
            return;
        };
        match mode {
            MuteMode::Muted(muted) => participant.muted = muted,
            MuteMode::Special => participant.special = true,
            MuteMode::HearsSpecial => participant.hears = Hearing::SpecialOnly,
            MuteMode::HearsMute => participant.hears = Hearing::NoOne,
            MuteMode::HearsNormal => participant.hears = Hearing::Everyone,
        }
    }

    /// What every participant hears this tick, from what each one's peer
    /// sent, and the music `music` gives for the mixer's host (while the
    /// host is in it).
    pub fn mix<'m>(
        &self,
        heard: &IdMap<Frame>,
        music: impl Fn(u64) -> Option<&'m [i16]>,
        mixed: &mut IdMap<Frame>,
    ) {
        for mixer in self.mixers.values() {
            let mut everyone = [0i32; FRAME_SAMPLES];
            let mut special = [0i32; FRAME_SAMPLES];
            let hosted = mixer
                .participants
                .iter()
                .any(|participant| participant.session == mixer.host);
            if let Some(samples) = music(mixer.host).filter(|_| hosted) {
                // Heard by everyone, the special-only listeners too; no one's own voice.
                add_samples(&mut everyone, samples);
                add_samples(&mut special, samples);
            }
            for participant in mixer.participants.iter().filter(|participant| !participant.muted) {
                let Some(frame) = heard.get(&participant.session) else {
                    continue;
                };
                add(&mut everyone, frame);
                if participant.special {
                    add(&mut special, frame);
                }
            }
            for participant in &mixer.participants {
                let (total, includes_own) = match participant.hears {
                    Hearing::Everyone => (&everyone, true),
                    Hearing::SpecialOnly => (&special, participant.special),
                    Hearing::NoOne => {
                        mixed.insert(participant.session, [0; FRAME_SAMPLES]);
                        continue;
                    }
                };
                let own = heard
                    .get(&participant.session)
                    .filter(|_| includes_own && !participant.muted);
                let mut out = [0i16; FRAME_SAMPLES];
                for (index, sample) in out.iter_mut().enumerate() {
                    let own_sample = own.map_or(0, |frame| i32::from(frame[index]));
                    *sample =
                        (total[index] - own_sample).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
                }
                mixed.insert(participant.session, out);
            }
        }
    }
}

fn add(total: &mut [i32; FRAME_SAMPLES], frame: &Frame) {
    add_samples(total, frame);
}

fn add_samples(total: &mut [i32; FRAME_SAMPLES], samples: &[i16]) {
    for (sum, &sample) in total.iter_mut().zip(samples) {
        *sum += i32::from(sample);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(voices: &[(u64, i16)]) -> IdMap<Frame> {
        voices
            .iter()
            .map(|&(session, level)| (session, [level; FRAME_SAMPLES]))
            .collect()
    }

    fn mix(mixers: &Mixers, voices: &[(u64, i16)]) -> HashMap<u64, i16> {
        mix_with_music(mixers, voices, None)
    }

    fn mix_with_music(
        mixers: &Mixers,
        voices: &[(u64, i16)],
        music: Option<(u64, i16)>,
    ) -> HashMap<u64, i16> {
        let frame = music.map(|(host, level)| (host, [level; FRAME_SAMPLES]));
        let mut mixed = IdMap::default();
        mixers.mix(
            &heard(voices),
            |host| {
                frame
                    .as_ref()
                    .filter(|(music_host, _)| *music_host == host)
                    .map(|(_, samples)| &samples[..])
            },
            &mut mixed,
        );
        mixed
            .into_iter()
            .map(|(session, frame)| (session, frame[0]))
            .collect()
    }

    #[test]
    fn everyone_hears_the_others() {
        let mut mixers = Mixers::default();
        let id = mixers.create(1);
        mixers.add(id, 2);
        mixers.add(id, 3);
        let out = mix(&mixers, &[(1, 100), (2, 20), (3, 3)]);
        assert_eq!(out, HashMap::from([(1, 23), (2, 103), (3, 120)]));
    }

    #[test]
    fn mute_and_hearing_modes() {
        let mut mixers = Mixers::default();
        let id = mixers.create(1);
        mixers.add(id, 2);
        mixers.add(id, 3);
        mixers.set_mode(id, 1, MuteMode::Muted(true));
        let out = mix(&mixers, &[(1, 100), (2, 20), (3, 3)]);
        assert_eq!(out, HashMap::from([(1, 23), (2, 3), (3, 20)]));
        mixers.set_mode(id, 1, MuteMode::Muted(false));
        mixers.set_mode(id, 2, MuteMode::Special);
        mixers.set_mode(id, 3, MuteMode::HearsSpecial);
        mixers.set_mode(id, 1, MuteMode::HearsMute);
        let out = mix(&mixers, &[(1, 100), (2, 20), (3, 3)]);
        assert_eq!(out, HashMap::from([(1, 0), (2, 103), (3, 20)]));
        mixers.set_mode(id, 1, MuteMode::HearsNormal);
        assert_eq!(mix(&mixers, &[(1, 100), (2, 20), (3, 3)])[&1], 23);
    }

    #[test]
    fn loud_sums_clip_instead_of_wrapping() {
        let mut mixers = Mixers::default();
        let id = mixers.create(1);
        mixers.add(id, 2);
        mixers.add(id, 3);
        let out = mix(&mixers, &[(1, 30000), (2, 30000), (3, -30000)]);
        assert_eq!(out[&3], i16::MAX);
    }

    #[test]
    fn the_hosts_music_is_heard_by_everyone_while_it_hosts() {
        let mut mixers = Mixers::default();
        let id = mixers.create(1);
        mixers.add(id, 2);
        mixers.add(id, 3);
        mixers.set_mode(id, 3, MuteMode::HearsSpecial);
        let out = mix_with_music(&mixers, &[(1, 100), (2, 20)], Some((1, 7)));
        assert_eq!(out, HashMap::from([(1, 27), (2, 107), (3, 7)]));
        // Music for a session that is not the host is not mixed in.
        let out = mix_with_music(&mixers, &[(1, 100), (2, 20)], Some((2, 7)));
        assert_eq!(out, HashMap::from([(1, 20), (2, 100), (3, 0)]));
        // The host gone, so is its music.
        mixers.remove(id, 1);
        let out = mix_with_music(&mixers, &[(2, 20), (3, 3)], Some((1, 7)));
        assert_eq!(out, HashMap::from([(2, 3), (3, 0)]));
    }

    #[test]
    fn a_mixer_of_one_dissolves() {
        let mut mixers = Mixers::default();
        let id = mixers.create(1);
        mixers.add(id, 2);
        assert_eq!(mixers.remove(id, 2), vec![1]);
        assert!(mixers.mixers.is_empty());
    }
}
