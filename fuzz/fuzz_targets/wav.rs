//! A WAV file as pbxd reads a prompt or a program's file: its header
//! (`wav::info`), its samples decoded to 8 kHz mono (`wav::decode_to_8k`:
//! every encoding, channel count and rate it takes, and the resampler),
//! and the prompt made of them (`Prompt::from_wav`: both codecs' frames).
//! Any bytes give a prompt or a `WavError`, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbx_media::prompt::Prompt;
use pbx_media::wav;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = wav::info(data) {
        let _ = (info.duration(), info.block_align());
    }
    if let Ok(prompt) = Prompt::from_wav(data) {
        // What a session sends of it: every frame, in both codecs.
        for index in 0..prompt.frames() {
            let _ = prompt.frame(pbx_media::Codec::Pcmu, index);
            let _ = prompt.frame(pbx_media::Codec::Pcma, index);
            let _ = prompt.frame_samples(index);
        }
        let _ = prompt.duration();
    }
});
