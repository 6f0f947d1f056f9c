//! A session description as pbxd reads one: an offer in an INVITE or a
//! re-INVITE (`sdp::parse`, then `sdp::answer`, which the answer must be
//! readable from), and an answer to pbxd's own offer
//! (`sdp::negotiated_from_answer`). The `datagram` target reaches `parse`
//! and `answer` too, but only through a SIP message the gate and the SIP
//! parser accept; here every byte mutates the description.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use pbx_sip::sdp;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(description) = sdp::parse(&text) else {
        return;
    };
    let _ = sdp::negotiated_from_answer(&description);
    for local in [
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        if let Ok((answer, negotiated)) = sdp::answer(&description, local, 40_000, 1, 2) {
            let _ = negotiated.on_hold();
            // What the other side reads of it.
            if let Ok(read) = sdp::parse(&answer) {
                let _ = sdp::negotiated_from_answer(&read);
            }
        }
    }
});
