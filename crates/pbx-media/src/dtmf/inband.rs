//! In-band DTMF: finding key tones in 8 kHz audio with the Goertzel algorithm.
//!
//! The audio is cut into windows of 205 samples (25.6 ms, the classic size
//! whose bins fall well on the eight DTMF frequencies), each starting 102
//! samples after the previous one. A window holds a key when one row and one
//! column frequency are both loud enough, together carry most of the window's
//! energy (speech and noise spread theirs), stand out from the other
//! frequencies of their group, and are within the twist ITU-T Q.24 allows.
//! A key is reported once it holds for two windows in a row (about 40 ms), and
//! another key only after a pause, so a long press gives one key.

/// The low-group (row) frequencies of ITU-T Q.23, in Hz.
pub(crate) const ROW_FREQUENCIES: [u32; 4] = [697, 770, 852, 941];
/// The high-group (column) frequencies of ITU-T Q.23, in Hz.
pub(crate) const COLUMN_FREQUENCIES: [u32; 4] = [1209, 1336, 1477, 1633];

const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

const SAMPLE_RATE: f32 = 8000.0;
const WINDOW: usize = 205;
const HOP: usize = 102;
/// Each tone must be at least this loud (peak amplitude in 16-bit units,
/// about -33 dBm0), or it is line noise.
const MINIMUM_AMPLITUDE: f32 = 400.0;
/// The two tones must carry this share of the window's energy.
const MINIMUM_TONE_SHARE: f32 = 0.7;
/// The strongest frequency of a group must beat the others of its group by this power ratio (6 dB).
const MINIMUM_PEAK_RATIO: f32 = 4.0;
/// The row tone may be louder than the column tone by up to 8 dB ("normal twist")...
const MAXIMUM_NORMAL_TWIST_DB: f32 = 8.0;
/// ...and quieter by up to 4 dB ("reverse twist").
const MAXIMUM_REVERSE_TWIST_DB: f32 = 4.0;
/// Windows in a row that must hold the same key before it is reported.
const CONFIRM_WINDOWS: u32 = 2;
/// Windows in a row without a key that end a press.
const PAUSE_WINDOWS: u32 = 2;

/// Detects DTMF keys in a stream of 8 kHz samples, fed in pieces of any size.
#[derive(Debug)]
pub struct InbandDetector {
    /// Samples not yet analysed; never more than one window.
    pending: Vec<f32>,
    /// Goertzel coefficients (2·cos ω) for the four rows, then the four columns.
    coefficients: [f32; 8],
    /// The key seen in the last windows, and in how many in a row.
    candidate: Option<char>,
    candidate_windows: u32,
    /// Set once a key is reported, until a pause ends the press.
    pressed: bool,
    quiet_windows: u32,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    /// A detector that has heard nothing yet.
    pub fn new() -> InbandDetector {
        let mut coefficients = [0.0; 8];
        for (coefficient, frequency) in coefficients
            .iter_mut()
            .zip(ROW_FREQUENCIES.iter().chain(&COLUMN_FREQUENCIES))
        {
            *coefficient = 2.0 * (2.0 * std::f32::consts::PI * *frequency as f32 / SAMPLE_RATE).cos();
        }
        InbandDetector {
            pending: Vec::with_capacity(WINDOW),
            coefficients,
            candidate: None,
            candidate_windows: 0,
            pressed: false,
            quiet_windows: PAUSE_WINDOWS,
        }
    }

    /// Forgets the audio heard so far.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Analyses more audio; returns the keys whose press was recognised in it.
    pub fn feed(&mut self, samples: &[i16]) -> Vec<char> {
        let mut keys = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let wanted = WINDOW - self.pending.len();
            let (now, later) = rest.split_at(wanted.min(rest.len()));
            self.pending.extend(now.iter().map(|&sample| f32::from(sample)));
            rest = later;
            if self.pending.len() == WINDOW {
                let key = self.classify();
                if let Some(key) = self.advance(key) {
                    keys.push(key);
                }
                self.pending.drain(..HOP);
            }
        }
        keys
    }

    /// Moves the press state on by one window's verdict; returns a newly pressed key.
    fn advance(&mut self, key: Option<char>) -> Option<char> {
        match key {
            Some(key) => {
                self.quiet_windows = 0;
                if self.candidate == Some(key) {
                    self.candidate_windows += 1;
                } else {
                    self.candidate = Some(key);
                    self.candidate_windows = 1;
                }
                if !self.pressed && self.candidate_windows >= CONFIRM_WINDOWS {
                    self.pressed = true;
                    return Some(key);
                }
                None
            }
            None => {
                self.candidate = None;
                self.candidate_windows = 0;
                self.quiet_windows += 1;
                if self.quiet_windows >= PAUSE_WINDOWS {
                    self.pressed = false;
                }
                None
            }
        }
    }

    /// The key the current window holds, if any.
    fn classify(&self) -> Option<char> {
        let window = &self.pending[..WINDOW];
        let energy: f32 = window.iter().map(|sample| sample * sample).sum::<f32>() / WINDOW as f32;
        if energy <= 0.0 {
            return None;
        }
        // Squared amplitude of each frequency: for a sine of amplitude A at
        // exactly that frequency the Goertzel power is (A·N/2)².
        let mut powers = [0.0f32; 8];
        for (power, &coefficient) in powers.iter_mut().zip(&self.coefficients) {
            let (mut previous, mut before_previous) = (0.0f32, 0.0f32);
            for &sample in window {
                let current = sample + coefficient * previous - before_previous;
                before_previous = previous;
                previous = current;
            }
            let goertzel = previous * previous + before_previous * before_previous
                - coefficient * previous * before_previous;
            *power = 4.0 * goertzel / (WINDOW * WINDOW) as f32;
        }
        let (row, row_power) = strongest(&powers[..4])?;
        let (column, column_power) = strongest(&powers[4..])?;
        let minimum_power = MINIMUM_AMPLITUDE * MINIMUM_AMPLITUDE;
        if row_power < minimum_power || column_power < minimum_power {
            return None;
        }
        // A sine of amplitude A has mean power A²/2.
        if (row_power + column_power) / 2.0 < MINIMUM_TONE_SHARE * energy {
            return None;
        }
        let twist_db = 10.0 * (row_power / column_power).log10();
        if !(-MAXIMUM_REVERSE_TWIST_DB..=MAXIMUM_NORMAL_TWIST_DB).contains(&twist_db) {
            return None;
        }
        Some(KEYS[row][column])
    }
}

/// The index and power of the strongest frequency of a group, if it clearly
/// beats every other one of the group.
fn strongest(powers: &[f32]) -> Option<(usize, f32)> {
    let (best, &best_power) = powers.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let clear = powers
        .iter()
        .enumerate()
        .all(|(index, &power)| index == best || power * MINIMUM_PEAK_RATIO <= best_power);
    clear.then_some((best, best_power))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frequencies: &[(f32, f32)], milliseconds: usize) -> Vec<i16> {
        (0..milliseconds * 8)
            .map(|index| {
                let time = index as f32 / SAMPLE_RATE;
                let value: f32 = frequencies
                    .iter()
                    .map(|(frequency, amplitude)| {
                        amplitude * (2.0 * std::f32::consts::PI * frequency * time).sin()
                    })
                    .sum();
                value as i16
            })
            .collect()
    }

    #[test]
    fn finds_every_key_of_a_clean_tone() {
        for key in "0123456789*#ABCD".chars() {
            let (row, column) = crate::dtmf::frequencies_for_symbol(key).unwrap();
            let mut detector = InbandDetector::new();
            let audio = tone(&[(row as f32, 8000.0), (column as f32, 8000.0)], 100);
            assert_eq!(detector.feed(&audio), vec![key]);
        }
    }

    #[test]
    fn audio_fed_in_small_pieces_gives_the_same_keys() {
        let mut audio = tone(&[(852.0, 6000.0), (1477.0, 6000.0)], 80);
        audio.extend(vec![0; 400]);
        audio.extend(tone(&[(852.0, 6000.0), (1477.0, 6000.0)], 80));
        let mut detector = InbandDetector::new();
        let keys: Vec<char> = audio.chunks(37).flat_map(|piece| detector.feed(piece)).collect();
        assert_eq!(keys, vec!['9', '9']);
    }

    #[test]
    fn a_long_press_is_one_key_and_a_blip_is_none() {
        let mut detector = InbandDetector::new();
        assert_eq!(
            detector.feed(&tone(&[(697.0, 8000.0), (1209.0, 8000.0)], 2000)),
            vec!['1']
        );
        let mut detector = InbandDetector::new();
        assert!(detector
            .feed(&tone(&[(697.0, 8000.0), (1209.0, 8000.0)], 15))
            .is_empty());
    }

    #[test]
    fn refuses_quiet_tones_and_bad_twist() {
        let detect =
            |row: f32, column: f32| InbandDetector::new().feed(&tone(&[(770.0, row), (1336.0, column)], 200));
        assert!(detect(200.0, 200.0).is_empty());
        // Column 12 dB below the row: more than the 8 dB allowed.
        assert!(detect(8000.0, 2000.0).is_empty());
        // Column 6 dB above the row: more than the 4 dB allowed.
        assert!(detect(4000.0, 8000.0).is_empty());
        // Within the limits both ways.
        assert_eq!(detect(8000.0, 3500.0), vec!['5']);
        assert_eq!(detect(5000.0, 7500.0), vec!['5']);
    }
}
