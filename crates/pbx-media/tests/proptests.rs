//! Random input never panics the parsers, and what is written parses back.
// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use pbx_media::dtmf::TelephoneEvent;
use pbx_media::rtp::{RtpExtension, RtpHeader, RtpPacket};
use pbx_media::wav;
use proptest::prelude::*;

proptest! {
    #[test]
    fn rtp_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(packet) = RtpPacket::parse(&bytes) {
            prop_assert!(packet.payload.len() <= bytes.len());
            prop_assert!(packet.header.csrcs.len() <= 15);
        }
    }

    #[test]
    fn rtp_packets_that_look_valid_never_panic(
        first in 0x80u8..=0xBF,
        mut bytes in proptest::collection::vec(any::<u8>(), 11..120),
    ) {
        bytes.insert(0, first);
        let _ = RtpPacket::parse(&bytes);
    }

    #[test]
    fn rtp_round_trips(
        marker in any::<bool>(),
        payload_type in 0u8..128,
        sequence in any::<u16>(),
        timestamp in any::<u32>(),
        ssrc in any::<u32>(),
        csrcs in proptest::collection::vec(any::<u32>(), 0..16),
        extension in proptest::option::of((any::<u16>(), proptest::collection::vec(any::<u32>(), 0..4))),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        padding in any::<u8>(),
    ) {
        let extension_bytes: Option<(u16, Vec<u8>)> = extension
            .map(|(profile, words)| (profile, words.iter().flat_map(|word| word.to_be_bytes()).collect()));
        let packet = RtpPacket {
            header: RtpHeader { marker, payload_type, sequence, timestamp, ssrc, csrcs },
            extension: extension_bytes.as_ref().map(|(profile, data)| RtpExtension { profile: *profile, data }),
            payload: &payload,
            padding,
        };
        let mut bytes = Vec::new();
        packet.write(&mut bytes).unwrap();
        prop_assert_eq!(RtpPacket::parse(&bytes).unwrap(), packet);
    }

    #[test]
    fn telephone_event_parse_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
        match TelephoneEvent::parse(&bytes) {
            Ok(event) => {
                prop_assert!(bytes.len() >= 4);
                prop_assert!(event.volume < 64);
                // Writing clears only the reserved bit.
                let written = event.to_bytes();
                prop_assert_eq!(written[0], bytes[0]);
                prop_assert_eq!(written[1], bytes[1] & 0xBF);
                prop_assert_eq!(&written[2..], &bytes[2..4]);
            }
            Err(_) => prop_assert!(bytes.len() < 4),
        }
    }

    #[test]
    fn wav_decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = wav::info(&bytes);
        let _ = wav::decode_to_8k(&bytes);
        // The same bytes behind a plausible header, so the chunk walk runs.
        let mut file = b"RIFF\xff\xff\xff\xffWAVEfmt \x10\0\0\0".to_vec();
        file.extend_from_slice(&bytes);
        let _ = wav::decode_to_8k(&file);
    }

    #[test]
    fn wav_decoding_damaged_files_never_panics(
        edits in proptest::collection::vec((0usize..100, any::<u8>()), 1..6),
        cut in 0usize..400,
        rate in prop_oneof![Just(8000u32), Just(16000), Just(44100), any::<u32>()],
    ) {
        let mut file = wav::pcm16_mono(&[1000, -1000, 30000, -30000].repeat(50), rate);
        for (at, value) in edits {
            file[at % 44] = value;
        }
        file.truncate(cut.min(file.len()));
        if let Ok(samples) = wav::decode_to_8k(&file) {
            // Never more than the file could hold, resampled up from 4 kHz.
            prop_assert!(samples.len() <= file.len() * 2 + 2);
        }
    }
}
