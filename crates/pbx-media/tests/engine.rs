//! The media engine end to end, with plain UDP sockets as the phones.
//!
//! Tests run on tokio's paused clock: the engine's 20 ms ticks and the
//! phones' pacing follow virtual time, so nothing depends on how fast the
//! machine is, and no test asserts on elapsed time.
// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_continuous, power, send_audio, session_for, Phone, Received, LOCALHOST};
use pbx_media::dtmf::{EventPackets, InbandDetector, TelephoneEvent};
use pbx_media::{wav, Codec, MediaConfig, MediaEngine, MediaEvent, MediaSession, MuteMode, Played, Prompt};

const QUIET: Duration = Duration::from_millis(300);

fn engine() -> MediaEngine {
    MediaEngine::start(MediaConfig::default())
}

fn tone(milliseconds: u64) -> Arc<Prompt> {
    Arc::new(Prompt::tone(&[440], None, Duration::from_millis(milliseconds)))
}

fn decode(codec: Codec, packet: &Received) -> Vec<i16> {
    let mut samples = Vec::new();
    codec.decode(&packet.payload, &mut samples);
    samples
}

async fn next_event(session: &mut MediaSession) -> Option<MediaEvent> {
    tokio::time::timeout(Duration::from_secs(2), session.next_event())
        .await
        .ok()
        .flatten()
}

#[tokio::test(start_paused = true)]
async fn a_prompt_is_sent_as_paced_rtp() {
    let engine = engine();
    let phone = Phone::new().await;
    let session = session_for(&engine, &phone, Codec::Pcmu).await;
    let prompt = tone(1000);
    let played = session.play(prompt.clone(), None).await.unwrap();
    assert_eq!(
        played,
        Played {
            length: Duration::from_secs(1),
            completed: true
        }
    );

    let packets = phone.recv_all(QUIET).await;
    assert_eq!(packets.len(), 50);
    assert_continuous(&packets);
    assert!(packets[0].header.marker);
    assert!(packets[1..].iter().all(|packet| !packet.header.marker));
    for (index, packet) in packets.iter().enumerate() {
        assert_eq!(packet.header.payload_type, 0);
        assert_eq!(packet.payload, prompt.frame(Codec::Pcmu, index));
        assert_eq!(packet.from, session.local_addr());
    }
    let stats = session.stats();
    assert_eq!(stats.packets_sent, 50);
    assert_eq!(stats.bytes_sent, 50 * 160);
}

#[tokio::test(start_paused = true)]
async fn pcma_peers_get_pcma() {
    let engine = engine();
    let phone = Phone::new().await;
    let session = session_for(&engine, &phone, Codec::Pcma).await;
    let prompt = tone(100);
    assert!(session.play(prompt.clone(), None).await.unwrap().completed);
    let packets = phone.recv_all(QUIET).await;
    assert_eq!(packets.len(), 5);
    assert!(packets.iter().all(|packet| packet.header.payload_type == 8));
    assert_eq!(packets[2].payload, prompt.frame(Codec::Pcma, 2));
}

#[tokio::test(start_paused = true)]
async fn stop_ends_a_prompt_early() {
    let engine = engine();
    let phone = Phone::new().await;
    let session = session_for(&engine, &phone, Codec::Pcmu).await;
    let played = session.play(tone(1000), None);
    for _ in 0..10 {
        phone.recv(QUIET).await.unwrap();
    }
    session.stop();
    let played = played.await.unwrap();
    assert!(!played.completed);
    assert!(played.length >= Duration::from_millis(200) && played.length < Duration::from_secs(1));
    let rest = phone.recv_all(QUIET).await;
    assert!(10 + rest.len() < 50);
}

#[tokio::test(start_paused = true)]
async fn a_newer_prompt_replaces_the_old_and_the_stream_continues() {
    let engine = engine();
    let phone = Phone::new().await;
    let session = session_for(&engine, &phone, Codec::Pcmu).await;
    let first = session.play(tone(1000), None);
    let first_packets = [phone.recv(QUIET).await.unwrap(), phone.recv(QUIET).await.unwrap()];
    let second_prompt = Arc::new(Prompt::tone(&[1000], None, Duration::from_millis(100)));
    let second = session.play(second_prompt.clone(), None);
    assert!(!first.await.unwrap().completed);
    assert!(second.await.unwrap().completed);
    let mut packets = first_packets.to_vec();
    packets.extend(phone.recv_all(QUIET).await);
    // Sequence numbers and timestamps run on across prompts; the new prompt
    // starts a talk spurt.
    assert_continuous(&packets);
    let start = packets
        .iter()
        .position(|packet| packet.payload == second_prompt.frame(Codec::Pcmu, 0))
        .unwrap();
    assert!(packets[start].header.marker);
    assert_eq!(packets.len() - start, 5);
}

#[tokio::test(start_paused = true)]
async fn a_limit_loops_a_short_prompt_and_cuts_a_long_one() {
    let engine = engine();
    let phone = Phone::new().await;
    let session = session_for(&engine, &phone, Codec::Pcmu).await;
    let played = session
        .play(tone(100), Some(Duration::from_millis(300)))
        .await
        .unwrap();
    assert_eq!(
        played,
        Played {
            length: Duration::from_millis(300),
            completed: true
        }
    );
    assert_eq!(phone.recv_all(QUIET).await.len(), 15);

    let played = session
        .play(tone(1000), Some(Duration::from_millis(100)))
        .await
        .unwrap();
    assert_eq!(
        played,
        Played {
            length: Duration::from_millis(100),
            completed: true
        }
    );
    assert_eq!(phone.recv_all(QUIET).await.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn idle_sessions_send_silence_except_while_the_peer_holds() {
    let engine = engine();
    let phone = Phone::new().await;
    let session = engine.open(LOCALHOST).await.unwrap();
    // Nothing goes out before the remote is known.
    assert!(phone.recv(QUIET).await.is_none());
    session.set_remote(phone.addr(), Codec::Pcmu, None);
    let mut packets = Vec::new();
    for _ in 0..10 {
        packets.push(phone.recv(QUIET).await.unwrap());
    }
    assert_continuous(&packets);
    assert!(packets[0].header.marker);
    assert!(packets.iter().all(|packet| packet.payload == [0xFF; 160]));

    session.peer_hold(true);
    phone.recv_all(QUIET).await;
    assert!(phone.recv(QUIET).await.is_none());
    session.peer_hold(false);
    let resumed = phone.recv(QUIET).await.unwrap();
    assert!(resumed.header.marker);
    assert_eq!(resumed.header.ssrc, packets[0].header.ssrc);
    // The timestamp kept counting during the hold.
    let last = packets.last().unwrap();
    assert!(resumed.header.timestamp.wrapping_sub(last.header.timestamp) > 160 * 10);
}

/// Sends one key press as RFC 4733 packets, each end packet three times.
async fn press(phone: &mut Phone, to: std::net::SocketAddr, event: u8, timestamp: u32) {
    for packet in EventPackets::new(event, 10, 5) {
        phone
            .send(to, 101, packet.marker, timestamp, &packet.event.to_bytes())
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn rfc4733_key_presses_are_reported_once_each() {
    let engine = engine();
    let mut phone = Phone::new().await;
    let mut session = engine.open(LOCALHOST).await.unwrap();
    session.set_remote(phone.addr(), Codec::Pcmu, Some(101));
    let to = session.local_addr();
    press(&mut phone, to, 5, 1000).await;
    // A stray duplicate of the end packet, as a resending phone might.
    let end = TelephoneEvent {
        event: 5,
        end: true,
        volume: 10,
        duration: 800,
    };
    phone.send(to, 101, false, 1000, &end.to_bytes()).await;
    assert_eq!(next_event(&mut session).await, Some(MediaEvent::Dtmf('5')));

    press(&mut phone, to, 1, 3000).await;
    press(&mut phone, to, 1, 5000).await;
    assert_eq!(next_event(&mut session).await, Some(MediaEvent::Dtmf('1')));
    assert_eq!(next_event(&mut session).await, Some(MediaEvent::Dtmf('1')));
    // Nothing else: the next event would be the peer going quiet, 30 s later.
    assert!(tokio::time::timeout(Duration::from_secs(5), session.next_event())
        .await
        .is_err());
}

/// sip-tester's DTMF pcaps, as sipp replays them: each press is the same
/// recorded packets (sequence numbers and timestamps included), so "5" three
/// times is three identical bursts, and "1" after "5" goes back in sequence.
#[tokio::test(start_paused = true)]
async fn replayed_recordings_of_presses_count_as_new_presses() {
    let engine = engine();
    let mut phone = Phone::new().await;
    let mut session = engine.open(LOCALHOST).await.unwrap();
    session.set_remote(phone.addr(), Codec::Pcma, Some(101));
    let to = session.local_addr();
    let recorded = [
        (5u8, 8155u16, 43200u32),
        (5, 8155, 43200),
        (5, 8155, 43200),
        (1, 7984, 13280),
    ];
    for (event, sequence, timestamp) in recorded {
        phone.sequence = sequence;
        press(&mut phone, to, event, timestamp).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    for expected in ['5', '5', '5', '1'] {
        assert_eq!(next_event(&mut session).await, Some(MediaEvent::Dtmf(expected)));
    }
}

#[tokio::test(start_paused = true)]
async fn inband_keys_are_detected_unless_telephone_events_were_negotiated() {
    let engine = engine();
    let mut phone = Phone::new().await;
    let mut session = engine.open(LOCALHOST).await.unwrap();
    session.set_remote(phone.addr(), Codec::Pcmu, None);
    let to = session.local_addr();
    let key = Prompt::tone(&[852, 1209], None, Duration::from_millis(100));
    let mut audio = vec![0; 800];
    audio.extend_from_slice(key.samples());
    audio.extend(vec![0; 800]);
    send_audio(&mut phone, to, &audio).await;
    assert_eq!(next_event(&mut session).await, Some(MediaEvent::Dtmf('7')));

    session.set_remote(phone.addr(), Codec::Pcmu, Some(101));
    send_audio(&mut phone, to, &audio).await;
    assert!(tokio::time::timeout(Duration::from_secs(2), session.next_event())
        .await
        .is_err());
}

#[tokio::test(start_paused = true)]
async fn keys_are_sent_as_rfc4733_events_when_negotiated() {
    let engine = engine();
    let phone = Phone::new().await;
    let session = engine.open(LOCALHOST).await.unwrap();
    session.set_active(false);
    session.set_remote(phone.addr(), Codec::Pcmu, Some(101));
    session.send_dtmf('9');
    session.send_dtmf('x');
    let packets = phone.recv_all(QUIET).await;
    assert_eq!(packets.len(), 7);
    assert!(packets.iter().all(|packet| packet.header.payload_type == 101));
    assert!(packets
        .iter()
        .all(|packet| packet.header.timestamp == packets[0].header.timestamp));
    assert!(packets[0].header.marker && packets[1..].iter().all(|packet| !packet.header.marker));
    let events: Vec<TelephoneEvent> = packets
        .iter()
        .map(|packet| TelephoneEvent::parse(&packet.payload).unwrap())
        .collect();
    assert!(events.iter().all(|event| event.event == 9));
    assert_eq!(events.iter().filter(|event| event.end).count(), 3);
    assert_eq!(events.last().unwrap().duration, 800);
    for pair in packets.windows(2) {
        assert_eq!(pair[1].header.sequence, pair[0].header.sequence.wrapping_add(1));
    }
}

#[tokio::test(start_paused = true)]
async fn keys_are_sent_as_tones_otherwise() {
    let engine = engine();
    let phone = Phone::new().await;
    let session = engine.open(LOCALHOST).await.unwrap();
    session.set_active(false);
    session.set_remote(phone.addr(), Codec::Pcma, None);
    session.send_dtmf('#');
    session.send_dtmf('3');
    let packets = phone.recv_all(QUIET).await;
    assert_eq!(packets.len(), 10);
    assert!(packets.iter().all(|packet| packet.header.payload_type == 8));
    let mut detector = InbandDetector::new();
    let mut keys = Vec::new();
    for packet in &packets {
        // A marker starts a talk spurt: the pause before it, as the timestamps say.
        if packet.header.marker {
            keys.extend(detector.feed(&[0; 480]));
        }
        keys.extend(detector.feed(&decode(Codec::Pcma, packet)));
    }
    assert_eq!(keys, vec!['#', '3']);
}

async fn wait_for_received(session: &MediaSession, packets: u64) {
    while session.stats().packets_received < packets {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_recording_holds_what_the_phone_sent() {
    let engine = engine();
    let mut phone = Phone::new().await;
    let session = engine.open(LOCALHOST).await.unwrap();
    session.set_remote(phone.addr(), Codec::Pcmu, None);
    let recording = session.record(Duration::from_secs(5));
    let sent = Prompt::tone(&[500], None, Duration::from_secs(1));
    send_audio(&mut phone, session.local_addr(), sent.samples()).await;
    wait_for_received(&session, 50).await;
    session.stop();
    let samples = wav::decode_to_8k(&recording.await.unwrap()).unwrap();
    assert_eq!(samples.len(), 8000);
    let level = power(&samples);
    assert!((0.8 * power(sent.samples())..1.2 * power(sent.samples())).contains(&level));
}

#[tokio::test(start_paused = true)]
async fn a_recording_stops_at_its_limit_and_fills_gaps() {
    let engine = engine();
    let mut phone = Phone::new().await;
    let session = engine.open(LOCALHOST).await.unwrap();
    session.set_remote(phone.addr(), Codec::Pcmu, None);
    let recording = session.record(Duration::from_secs(1));
    let to = session.local_addr();
    let frame = Prompt::tone(&[500], None, Duration::from_millis(20));
    for index in 0..60 {
        // The phone suppresses silence: packets 10 to 19 are not sent, but
        // the timestamps run on.
        if (10..20).contains(&index) {
            phone.timestamp = phone.timestamp.wrapping_add(160);
        } else {
            phone.send_audio(to, 0, frame.frame(Codec::Pcmu, 0)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let samples = wav::decode_to_8k(&recording.await.unwrap()).unwrap();
    assert_eq!(samples.len(), 8000);
    assert!(samples[1600..3200].iter().all(|&sample| sample == 0));
    assert!(power(&samples[3200..]) > 1.0e7);
}

#[tokio::test(start_paused = true)]
async fn symmetric_rtp_follows_the_phone_behind_nat() {
    let engine = engine();
    let mut phone = Phone::new().await;
    let signalled = Phone::new().await;
    let session = engine.open(LOCALHOST).await.unwrap();
    session.set_remote(signalled.addr(), Codec::Pcmu, None);
    // Before the phone speaks, packets go where SDP said.
    let first = signalled.recv(QUIET).await.unwrap();
    phone.send_audio(session.local_addr(), 0, &[0xFF; 160]).await;
    // From the next tick on, they go where the phone sends from.
    let packet = phone.recv(QUIET).await.unwrap();
    assert_eq!(packet.from, session.local_addr());
    assert_eq!(packet.header.ssrc, first.header.ssrc);
    signalled.recv_all(Duration::from_millis(1)).await;
    assert!(signalled.recv(QUIET).await.is_none());
    // A third party cannot take the stream over while the phone talks.
    phone.recv_all(Duration::from_millis(1)).await;
    let mut intruder = Phone::new().await;
    intruder.send_audio(session.local_addr(), 0, &[0xFF; 160]).await;
    phone.send_audio(session.local_addr(), 0, &[0xFF; 160]).await;
    for _ in 0..10 {
        phone.recv(QUIET).await.unwrap();
    }
    assert!(intruder.recv(Duration::from_millis(1)).await.is_none());
    assert_eq!(session.stats().packets_received, 2);
}

#[tokio::test(start_paused = true)]
async fn a_bridge_carries_audio_both_ways_and_transcodes() {
    bridge_both_ways(&engine()).await;
}

/// With two workers, two sessions opened one after the other land on
/// different ones; bridged, one moves to the other's worker first, and the
/// bridge works as on one.
#[tokio::test(start_paused = true)]
async fn sessions_of_two_workers_are_gathered_to_be_bridged() {
    let engine = MediaEngine::start(MediaConfig {
        workers: 2,
        ..MediaConfig::default()
    });
    bridge_both_ways(&engine).await;
    assert_eq!(engine.open_sessions(), 0);
}

/// Opens two sessions, bridges them, checks the audio both ways and that
/// they share a worker, then unbridges.
async fn bridge_both_ways(engine: &MediaEngine) {
    let mut phone_a = Phone::new().await;
    let mut phone_b = Phone::new().await;
    let session_a = session_for(engine, &phone_a, Codec::Pcmu).await;
    let session_b = session_for(engine, &phone_b, Codec::Pcma).await;
    if engine.workers() > 1 {
        assert_eq!(engine.sessions_per_worker(), vec![1, 1]);
    }
    session_a.bridge(Some(&session_b));
    // Prompts are refused while bridged.
    assert!(!session_a.play(tone(100), None).await.unwrap().completed);

    let sent = Prompt::tone(&[700], None, Duration::from_secs(1));
    send_audio(&mut phone_a, session_a.local_addr(), sent.samples()).await;
    let packets = phone_b.recv_all(QUIET).await;
    assert_eq!(packets.len(), 50);
    assert_continuous(&packets);
    assert!(packets
        .iter()
        .all(|packet| packet.header.payload_type == 8 && packet.from == session_b.local_addr()));
    let heard: Vec<i16> = packets
        .iter()
        .flat_map(|packet| decode(Codec::Pcma, packet))
        .collect();
    let ratio = power(&heard) / power(sent.samples());
    assert!((0.9..1.1).contains(&ratio), "power ratio {ratio}");

    send_audio(&mut phone_b, session_b.local_addr(), &sent.samples()[..1600]).await;
    let packets = phone_a.recv_all(QUIET).await;
    assert_eq!(packets.len(), 10);
    assert!(packets.iter().all(|packet| packet.header.payload_type == 0));

    session_b.bridge(None);
    send_audio(&mut phone_a, session_a.local_addr(), &sent.samples()[..1600]).await;
    assert!(phone_b.recv_all(QUIET).await.is_empty());
    // Unbridged, prompts play again.
    assert!(session_a.play(tone(100), None).await.unwrap().completed);
    let mut together = engine.sessions_per_worker();
    together.sort_unstable();
    assert_eq!(together.last(), Some(&2), "{:?}", engine.sessions_per_worker());
}

/// The most common first sample of the packets: the steady level heard.
fn steady_level(codec: Codec, packets: &[Received]) -> i16 {
    let mut counts = std::collections::HashMap::new();
    for packet in packets {
        *counts.entry(decode(codec, packet)[80]).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(_, count)| count)
        .map(|(level, _)| level)
        .unwrap()
}

fn near(level: i16, expected: i16) -> bool {
    (i32::from(level) - i32::from(expected)).abs() <= i32::from(expected).abs() / 16 + 16
}

/// Each phone sends its constant level for 25 packets, paced at 20 ms.
async fn talk(phones: &mut [Phone], sessions: &[MediaSession], levels: &[i16]) {
    for _ in 0..25 {
        for ((phone, session), &level) in phones.iter_mut().zip(sessions).zip(levels) {
            let mut payload = Vec::new();
            Codec::Pcmu.encode(&[level; 160], &mut payload);
            phone.send_audio(session.local_addr(), 0, &payload).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What each phone mostly heard among the packets waiting for it.
async fn levels_heard(phones: &[Phone]) -> Vec<i16> {
    let mut heard = Vec::new();
    for phone in phones {
        // Conference members get a continuous stream: take what is queued.
        heard.push(steady_level(
            Codec::Pcmu,
            &phone.recv_all(Duration::from_millis(1)).await,
        ));
    }
    heard
}

#[tokio::test(start_paused = true)]
async fn a_conference_lets_everyone_hear_the_others() {
    conference(&engine()).await;
}

/// Three participants on three workers: each joins the mixer's worker.
#[tokio::test(start_paused = true)]
async fn participants_of_three_workers_meet_at_the_mixer() {
    let engine = MediaEngine::start(MediaConfig {
        workers: 3,
        ..MediaConfig::default()
    });
    conference(&engine).await;
}

async fn conference(engine: &MediaEngine) {
    let mut phones = vec![Phone::new().await, Phone::new().await, Phone::new().await];
    let mut sessions = Vec::new();
    for phone in &phones {
        sessions.push(session_for(engine, phone, Codec::Pcmu).await);
    }
    sessions[0].mixer_attach(&sessions[1]);
    sessions[0].mixer_attach(&sessions[2]);
    let levels = [1000, 2000, 4000];

    talk(&mut phones, &sessions, &levels).await;
    if engine.workers() > 1 {
        let per_worker = engine.sessions_per_worker();
        assert_eq!(per_worker[0], 3, "{per_worker:?}");
    }
    let heard = levels_heard(&phones).await;
    assert!(
        near(heard[0], 6000) && near(heard[1], 5000) && near(heard[2], 3000),
        "{heard:?}"
    );

    // Participant 1 muted: the others no longer hear it. Participant 2 hears no one.
    sessions[0].mixer_mute(sessions[1].id(), MuteMode::Muted(true));
    sessions[0].mixer_mute(sessions[2].id(), MuteMode::HearsMute);
    talk(&mut phones, &sessions, &levels).await;
    let heard = levels_heard(&phones).await;
    assert!(
        near(heard[0], 4000) && near(heard[1], 5000) && heard[2] == 0,
        "{heard:?}"
    );

    // Detached, participant 2 gets nothing from the conference any more
    // (and sends nothing of its own: it is not active).
    sessions[0].mixer_detach(sessions[2].id());
    // A packet made before the detach may still leave in its slot of the tick.
    tokio::time::sleep(Duration::from_millis(40)).await;
    let _ = phones[2].recv_all(Duration::from_millis(1)).await;
    talk(&mut phones, &sessions, &levels).await;
    assert!(phones[2].recv_all(Duration::from_millis(1)).await.is_empty());
    let heard = levels_heard(&phones[..2]).await;
    assert!(heard[0] == 0 && near(heard[1], 1000), "{heard:?}");
}

#[tokio::test(start_paused = true)]
async fn a_vanished_peer_is_reported_inactive() {
    let engine = MediaEngine::start(MediaConfig {
        inactivity_timeout: Duration::from_secs(3),
        ..MediaConfig::default()
    });
    let mut phone = Phone::new().await;
    let mut session = engine.open(LOCALHOST).await.unwrap();
    session.set_remote(phone.addr(), Codec::Pcmu, None);
    // Five seconds of audio: longer than the timeout, but no gap in it.
    send_audio(&mut phone, session.local_addr(), &vec![0; 8000 * 5]).await;
    assert!(tokio::time::timeout(Duration::from_secs(1), session.next_event())
        .await
        .is_err());
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), session.next_event())
            .await
            .unwrap(),
        Some(MediaEvent::Inactive)
    );
    // Once only.
    assert!(
        tokio::time::timeout(Duration::from_secs(10), session.next_event())
            .await
            .is_err()
    );

    // On hold, either way, the peer may be silent.
    let mut holding = engine.open(LOCALHOST).await.unwrap();
    holding.set_remote(phone.addr(), Codec::Pcmu, None);
    holding.hold(true);
    let mut held = engine.open(LOCALHOST).await.unwrap();
    held.set_remote(phone.addr(), Codec::Pcmu, None);
    held.peer_hold(true);
    assert!(
        tokio::time::timeout(Duration::from_secs(10), holding.next_event())
            .await
            .is_err()
    );
    assert!(tokio::time::timeout(Duration::from_secs(1), held.next_event())
        .await
        .is_err());
}

#[tokio::test(start_paused = true)]
async fn garbage_datagrams_are_ignored() {
    let engine = engine();
    let mut phone = Phone::new().await;
    let mut session = engine.open(LOCALHOST).await.unwrap();
    session.set_remote(phone.addr(), Codec::Pcmu, Some(101));
    let to = session.local_addr();
    for garbage in [
        &b""[..],
        b"hello",
        &[0x80; 11],
        &[0xFF; 200],
        &[0x80, 101, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 5],
    ] {
        phone.socket.send_to(garbage, to).await.unwrap();
    }
    press(&mut phone, to, 3, 7000).await;
    assert_eq!(next_event(&mut session).await, Some(MediaEvent::Dtmf('3')));
}

#[tokio::test(start_paused = true)]
async fn closing_sessions_ends_what_they_did() {
    let engine = engine();
    let phone = Phone::new().await;
    let first = session_for(&engine, &phone, Codec::Pcmu).await;
    let second = session_for(&engine, &phone, Codec::Pcmu).await;
    let third = session_for(&engine, &phone, Codec::Pcmu).await;
    assert_eq!(engine.open_sessions(), 3);
    let played = first.play(tone(5000), None);
    let recording = first.record(Duration::from_secs(5));
    drop(first);
    assert_eq!(engine.open_sessions(), 2);
    assert!(!played.await.unwrap().completed);
    assert_eq!(wav::decode_to_8k(&recording.await.unwrap()).unwrap().len(), 0);

    second.bridge(Some(&third));
    assert!(!second.play(tone(40), None).await.unwrap().completed);
    drop(third);
    // The partner is no longer bridged: it plays again.
    assert!(second.play(tone(40), None).await.unwrap().completed);
    drop(second);
    assert_eq!(engine.open_sessions(), 0);
}

#[tokio::test(start_paused = true)]
async fn events_can_be_taken_from_a_shared_session() {
    let engine = engine();
    let mut phone = Phone::new().await;
    let session = Arc::new(engine.open(LOCALHOST).await.unwrap());
    session.set_remote(phone.addr(), Codec::Pcmu, Some(101));
    let mut events = session.take_events().unwrap();
    assert!(session.take_events().is_none());
    press(&mut phone, session.local_addr(), 11, 9000).await;
    assert_eq!(events.recv().await, Some(MediaEvent::Dtmf('#')));
}

#[test]
fn handles_can_move_between_tasks_and_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<MediaEngine>();
    shareable::<MediaSession>();
    shareable::<pbx_media::PromptCache>();
    shareable::<Arc<Prompt>>();
}
