//! One engine, one timer, 200 calls at once: every phone gets the whole
//! prompt as one continuous stream. Runs on the real clock; nothing here
//! depends on how fast the machine is, only on what arrives.
// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_continuous, Phone};
use pbx_media::{Codec, MediaConfig, MediaEngine, Played, Prompt};

const CALLS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_engine_paces_200_calls() {
    let engine = MediaEngine::start(MediaConfig::default());
    // One prompt, decoded and encoded once, shared by every call.
    let prompt = Arc::new(Prompt::tone(&[425], None, Duration::from_secs(1)));
    let mut calls = Vec::new();
    for index in 0..CALLS {
        let phone = Phone::new().await;
        let session = engine.open(IpAddr::V4(Ipv4Addr::LOCALHOST)).await.unwrap();
        session.set_active(false);
        let codec = if index % 2 == 0 { Codec::Pcmu } else { Codec::Pcma };
        session.set_remote(phone.addr(), codec, None);
        calls.push((phone, session, codec));
    }
    assert_eq!(engine.open_sessions(), CALLS);

    let playing: Vec<_> = calls
        .iter()
        .map(|(_, session, _)| session.play(prompt.clone(), None))
        .collect();
    for played in playing {
        assert_eq!(
            played.await.unwrap(),
            Played {
                length: Duration::from_secs(1),
                completed: true
            }
        );
    }

    // Every phone drains its socket at once, in its own task.
    let mut receivers = Vec::new();
    let mut sessions = Vec::new();
    for (phone, session, codec) in calls {
        receivers.push((
            tokio::spawn(async move { phone.recv_all(Duration::from_millis(300)).await }),
            codec,
        ));
        sessions.push(session);
    }
    let mut ssrcs = HashSet::new();
    for (receiver, codec) in receivers {
        let packets = receiver.await.unwrap();
        assert_eq!(packets.len(), 50);
        assert_continuous(&packets);
        assert!(packets[0].header.marker);
        for (index, packet) in packets.iter().enumerate() {
            assert_eq!(packet.header.payload_type, codec.payload_type());
            assert_eq!(packet.payload, prompt.frame(codec, index));
        }
        ssrcs.insert(packets[0].header.ssrc);
    }
    // Random SSRCs: 200 of them hardly ever collide.
    assert!(ssrcs.len() >= CALLS - 1);

    drop(sessions);
    assert_eq!(engine.open_sessions(), 0);
}
