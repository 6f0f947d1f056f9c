//! RTP and RFC 4733 datagrams as a media worker takes them: a session's
//! receiving side (`pbx_media::engine::fuzzing::Receiver`, the code a
//! worker runs on each datagram: parse, symmetric-RTP latching, the
//! reorder buffer, telephone-events and their de-duplication, G.711
//! decoding, the in-band detector, a recording and the playout queue),
//! with the worker's 20 ms ticks in between. Each datagram is also parsed
//! on its own, written back, and its payload read as a telephone-event.
//!
//! The input: two bytes of session settings, then datagrams, each as a
//! two-byte length (big-endian), the milliseconds since the previous one,
//! the source it came from (one of three), and its bytes.
#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pbx_media::dtmf::TelephoneEvent;
use pbx_media::engine::fuzzing::Receiver;
use pbx_media::rtp::RtpPacket;

/// Where datagrams come from: the peer, another port, another host.
const SOURCES: [&str; 3] = ["192.0.2.1:4000", "192.0.2.1:4002", "198.51.100.7:4000"];

fuzz_target!(|data: &[u8]| {
    let [flags, event_type, rest @ ..] = data else {
        return;
    };
    let telephone_event = (event_type & 0x80 == 0).then_some(event_type & 0x7F);
    let record = (flags & 4 != 0).then(|| Duration::from_millis(u64::from(flags >> 3) * 200));
    let mut receiver = Receiver::new(flags & 1 != 0, telephone_event, flags & 2 != 0, record);
    let sources: Vec<SocketAddr> = SOURCES.iter().filter_map(|text| text.parse().ok()).collect();
    let mut now = Duration::ZERO;
    let mut ticked = Duration::ZERO;
    let mut rest = rest;
    while let [high, low, step, source, after @ ..] = rest {
        let length = usize::from(u16::from_be_bytes([*high, *low])).min(after.len());
        let (datagram, after) = after.split_at(length);
        rest = after;
        now += Duration::from_millis(u64::from(*step));
        // The worker's ticks up to now (at most a second's worth between
        // two datagrams; a longer pause is one jump).
        let mut ticks = 0;
        while ticked + Duration::from_millis(20) <= now && ticks < 50 {
            ticked += Duration::from_millis(20);
            ticks += 1;
            let _ = receiver.tick(ticked);
        }
        ticked = ticked.max(now - now.min(Duration::from_millis(20)));
        if let Ok(packet) = RtpPacket::parse(datagram) {
            let _ = TelephoneEvent::parse(packet.payload);
            let mut out = Vec::new();
            let _ = packet.write(&mut out);
        }
        let source = sources[usize::from(*source) % sources.len()];
        receiver.datagram(datagram, source, now);
        let _ = receiver.events();
    }
    let _ = receiver.tick(now + Duration::from_secs(31));
    let _ = receiver.events();
    let _ = receiver.finish();
});
