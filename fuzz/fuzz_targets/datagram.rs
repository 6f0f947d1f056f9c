//! A SIP datagram as pbxd takes it: the gate, the SIP stack's parser, the
//! checks made before a request is dispatched, the session description
//! and the credentials (`pbx_sip::server::datagram_outcome`). Any bytes
//! must give an answer or nothing, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pbx_sip::server::datagram_outcome(data);
});
