//! Converting audio of any rate to the 8 kHz that G.711 calls carry.
//!
//! Prompts are converted once, when they are loaded, so quality matters more
//! than speed: a windowed-sinc resampler (rubato) filters out everything above
//! 4 kHz before thinning the samples, which keeps high voices from aliasing.

use rubato::{
    calculate_cutoff, Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

use crate::wav::WavError;

/// The rate calls carry.
const TARGET_RATE: u32 = 8000;
/// Input frames handed to the resampler at a time.
const CHUNK: usize = 1024;
/// Taps of the sinc filter: long enough for a steep cut-off at 4 kHz.
const SINC_LENGTH: usize = 128;

/// Resamples mono `samples` taken at `rate` Hz to 8 kHz.
pub(crate) fn to_8k(samples: &[i16], rate: u32) -> Result<Vec<i16>, WavError> {
    if rate == TARGET_RATE || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let error = |error: &dyn std::fmt::Display| WavError::Resample(error.to_string());
    let window = WindowFunction::BlackmanHarris2;
    let parameters = SincInterpolationParameters {
        sinc_len: SINC_LENGTH,
        f_cutoff: calculate_cutoff(SINC_LENGTH, window),
        oversampling_factor: 128,
        interpolation: SincInterpolationType::Linear,
        window,
    };
    let ratio = f64::from(TARGET_RATE) / f64::from(rate);
    let mut resampler = SincFixedIn::<f32>::new(ratio, 1.0, parameters, CHUNK, 1).map_err(|e| error(&e))?;
    let expected =
        ((samples.len() as u64 * u64::from(TARGET_RATE) + u64::from(rate) / 2) / u64::from(rate)) as usize;
    // The filter delays its output; that many leading samples are dropped.
    let delay = resampler.output_delay();
    let input: Vec<f32> = samples
        .iter()
        .map(|&sample| f32::from(sample) / 32768.0)
        .collect();
    let mut output: Vec<f32> = Vec::with_capacity(expected + delay + CHUNK);
    let mut buffer = resampler.output_buffer_allocate(true);

    let mut position = 0;
    while input.len() - position >= resampler.input_frames_next() {
        let chunk = &input[position..position + resampler.input_frames_next()];
        let (used, produced) = resampler
            .process_into_buffer(&[chunk], &mut buffer, None)
            .map_err(|e| error(&e))?;
        output.extend_from_slice(&buffer[0][..produced]);
        position += used;
    }
    let rest = &input[position..];
    let (_, produced) = resampler
        .process_partial_into_buffer(Some(&[rest]), &mut buffer, None)
        .map_err(|e| error(&e))?;
    output.extend_from_slice(&buffer[0][..produced]);
    // Push the delayed tail out with silence.
    while output.len() < expected + delay {
        let (_, produced) = resampler
            .process_partial_into_buffer(None::<&[&[f32]]>, &mut buffer, None)
            .map_err(|e| error(&e))?;
        if produced == 0 {
            break;
        }
        output.extend_from_slice(&buffer[0][..produced]);
    }
    Ok(output
        .iter()
        .skip(delay)
        .take(expected)
        .map(|&sample| (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(frequency: f32, rate: u32, seconds: f32) -> Vec<i16> {
        let count = (rate as f32 * seconds) as usize;
        (0..count)
            .map(|index| {
                (10000.0 * (2.0 * std::f32::consts::PI * frequency * index as f32 / rate as f32).sin()) as i16
            })
            .collect()
    }

    fn energy(samples: &[i16]) -> f64 {
        samples
            .iter()
            .map(|&sample| f64::from(sample).powi(2))
            .sum::<f64>()
            / samples.len().max(1) as f64
    }

    #[test]
    fn keeps_length_and_speech_band_tones() {
        for rate in [11025, 16000, 44100, 48000, 6000] {
            let resampled = to_8k(&sine(1000.0, rate, 0.5), rate).unwrap();
            assert_eq!(resampled.len(), 4000, "{rate} Hz");
            // A 1 kHz tone keeps its level (mean power of a 10000 sine is 5e7)...
            let middle = &resampled[500..3500];
            let power = energy(middle);
            assert!((4.0e7..6.0e7).contains(&power), "{rate} Hz: power {power}");
            // ...and its frequency: about 2 zero crossings per period.
            let crossings = middle
                .windows(2)
                .filter(|pair| (pair[0] < 0) != (pair[1] < 0))
                .count();
            assert!(
                (740..=760).contains(&crossings),
                "{rate} Hz: {crossings} crossings"
            );
        }
    }

    #[test]
    fn removes_what_8_khz_cannot_carry() {
        // 6 kHz would alias to 2 kHz if the resampler did not filter it.
        let resampled = to_8k(&sine(6000.0, 48000, 0.5), 48000).unwrap();
        assert!(energy(&resampled[500..3500]) < 5.0e7 / 1000.0);
    }
}
