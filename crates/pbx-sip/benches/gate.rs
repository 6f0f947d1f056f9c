//! What the gate (`pbx_sip::gate::judge`, run on every datagram and TCP
//! message before the SIP stack parses it) costs next to the parse itself:
//! both on the same INVITE with its session description (a W1 caller's,
//! 640 bytes), and on a 200 OK (which the gate passes at a glance).
//! Prints nanoseconds per message and the gate's share of gate + parse.
//!
//! `cargo bench -p pbx-sip --bench gate`

use std::hint::black_box;
use std::time::Instant;

const INVITE: &str = "INVITE sip:tone%23operator@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4132-1-0\r\n\
From: sipp <sip:sipp@127.0.0.1:5061>;tag=4132SIPpTag001\r\n\
To: <sip:tone%23operator@127.0.0.1:5060>\r\n\
Call-ID: 1-4132@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@127.0.0.1:5061\r\n\
Max-Forwards: 70\r\n\
Subject: Performance Test\r\n\
Content-Type: application/sdp\r\n\
Content-Length:   213\r\n\
\r\n\
v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n";

const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabcdef\r\n\
From: <sip:pbx@127.0.0.1>;tag=abc\r\n\
To: <sip:sipp@127.0.0.1:5061>;tag=def\r\n\
Call-ID: 7f00a1@127.0.0.1\r\n\
CSeq: 2 BYE\r\n\
Content-Length: 0\r\n\r\n";

const ROUNDS: u32 = 200_000;

/// Nanoseconds per call of `work`, the best of five runs.
fn time(work: impl Fn()) -> f64 {
    (0..5)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..ROUNDS {
                work();
            }
            started.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    for (name, message) in [("INVITE with SDP", INVITE), ("200 OK", OK)] {
        let bytes = message.as_bytes();
        assert_eq!(pbx_sip::gate::judge(bytes), pbx_sip::gate::Verdict::Pass);
        let gate = time(|| {
            black_box(pbx_sip::gate::judge(black_box(bytes)));
        });
        let parse = time(|| {
            let _ = black_box(rsipstack::sip::SipMessage::try_from(black_box(bytes)));
        });
        println!(
            "{name:<16} gate {gate:>7.0} ns   parse {parse:>7.0} ns   gate / (gate + parse) {:>5.1}%",
            100.0 * gate / (gate + parse)
        );
    }
}
