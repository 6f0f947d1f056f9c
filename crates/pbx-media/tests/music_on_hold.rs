//! Music on hold, with plain UDP sockets as the phones: a bridge partner
//! of a peer that holds the call, a peer we hold, music when idle between
//! prompts and in a conference, and the worker's clock that every session
//! plays the music from.
//!
//! The music here is "numbered": frame `k` is silence with one loud
//! sample at position `k`, so every frame differs from every other and a
//! packet tells which frame of the music it carries.
// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{send_audio, session_for, Phone, Received};
use pbx_media::prompt::FRAME_SAMPLES;
use pbx_media::{Codec, MediaConfig, MediaEngine, Prompt};
use tokio::time::Instant;

const QUIET: Duration = Duration::from_millis(300);

/// Music of `frames` frames (at most 160), each telling its number.
fn numbered_music(frames: usize) -> Arc<Prompt> {
    let mut samples = vec![0i16; frames * FRAME_SAMPLES];
    for frame in 0..frames {
        samples[frame * FRAME_SAMPLES + frame] = 12_000;
    }
    Arc::new(Prompt::from_samples(samples))
}

/// Which frame of `music` a packet carries, if any.
fn music_frame(music: &Prompt, codec: Codec, packet: &Received) -> Option<usize> {
    (0..music.frames()).find(|&index| music.frame(codec, index) == packet.payload.as_slice())
}

/// The next `count` packets.
async fn receive(phone: &Phone, count: usize) -> Vec<Received> {
    let mut packets = Vec::new();
    for _ in 0..count {
        packets.push(phone.recv(QUIET).await.expect("a packet every 20 ms"));
    }
    packets
}

/// Waits two ticks and takes what was sent meanwhile: what comes next
/// was made after the commands given before.
async fn drain(phone: &Phone) {
    tokio::time::sleep(Duration::from_millis(40)).await;
    // Music comes every 20 ms: wait for a quiet of 1 ms, not `QUIET`.
    let _ = phone.recv_all(Duration::from_millis(1)).await;
}

/// What came in so far, while a stream goes on (music).
async fn queued(phone: &Phone) -> Vec<Received> {
    phone.recv_all(Duration::from_millis(1)).await
}

/// Asserts that every packet is a frame of `music`, one after the other
/// (looping), as one tick after another plays them.
fn assert_music(music: &Prompt, codec: Codec, packets: &[Received]) {
    let frames: Vec<Option<usize>> = packets
        .iter()
        .map(|packet| music_frame(music, codec, packet))
        .collect();
    let Some(Some(first)) = frames.first() else {
        panic!("not music: {frames:?}");
    };
    for (offset, frame) in frames.iter().enumerate() {
        assert_eq!(
            *frame,
            Some((first + offset) % music.frames()),
            "frames {frames:?}"
        );
    }
}

fn level(level: i16) -> Vec<i16> {
    vec![level; FRAME_SAMPLES * 10]
}

/// A phone's bridge partner, while the phone holds the call, hears the
/// engine's music; the phone is sent nothing and heard by no one. When it
/// takes the call back, the two hear each other again.
#[tokio::test(start_paused = true)]
async fn a_bridge_partner_hears_music_while_the_peer_holds() {
    let engine = MediaEngine::start(MediaConfig::default());
    let music = numbered_music(50);
    engine.set_music(Some(music.clone()));
    let (mut phone_a, mut phone_b) = (Phone::new().await, Phone::new().await);
    let session_a = session_for(&engine, &phone_a, Codec::Pcmu).await;
    let session_b = session_for(&engine, &phone_b, Codec::Pcma).await;
    session_a.bridge(Some(&session_b));

    session_b.peer_hold(true);
    // A's peer talks on; B's phone holds and hears nothing of it.
    send_audio(&mut phone_a, session_a.local_addr(), &level(3000)).await;
    let heard_by_a = queued(&phone_a).await;
    assert!(heard_by_a.len() >= 8, "{} packets", heard_by_a.len());
    assert_music(&music, Codec::Pcmu, &heard_by_a);
    assert!(phone_b.recv_all(QUIET).await.is_empty());

    // B's phone sends on hold (its own music, say): no one hears it.
    send_audio(&mut phone_b, session_b.local_addr(), &level(2000)).await;
    assert_music(&music, Codec::Pcmu, &receive(&phone_a, 10).await);

    session_b.peer_hold(false);
    drain(&phone_a).await;
    send_audio(&mut phone_b, session_b.local_addr(), &level(2000)).await;
    let heard_by_a = phone_a.recv_all(QUIET).await;
    assert!(!heard_by_a.is_empty());
    assert!(heard_by_a
        .iter()
        .all(|packet| music_frame(&music, Codec::Pcmu, packet).is_none()));
    send_audio(&mut phone_a, session_a.local_addr(), &level(3000)).await;
    assert!(!phone_b.recv_all(QUIET).await.is_empty());
}

/// A peer we hold hears music, not its bridge partner; a session's own
/// music wins over the engine's; let go, it hears the partner again.
#[tokio::test(start_paused = true)]
async fn a_peer_we_hold_hears_the_sessions_own_music() {
    let engine = MediaEngine::start(MediaConfig::default());
    let engines_music = numbered_music(40);
    let own_music = numbered_music(30);
    engine.set_music(Some(engines_music.clone()));
    let (phone_a, mut phone_b) = (Phone::new().await, Phone::new().await);
    let session_a = session_for(&engine, &phone_a, Codec::Pcma).await;
    let session_b = session_for(&engine, &phone_b, Codec::Pcmu).await;
    session_a.bridge(Some(&session_b));
    session_a.set_music(Some(own_music.clone()));
    session_a.hold(true);
    send_audio(&mut phone_b, session_b.local_addr(), &level(3000)).await;
    let heard = queued(&phone_a).await;
    assert!(heard.len() >= 8, "{} packets", heard.len());
    assert_music(&own_music, Codec::Pcma, &heard);

    // Back to the engine's music.
    session_a.set_music(None);
    drain(&phone_a).await;
    assert_music(&engines_music, Codec::Pcma, &receive(&phone_a, 10).await);

    session_a.hold(false);
    drain(&phone_a).await;
    send_audio(&mut phone_b, session_b.local_addr(), &level(3000)).await;
    let heard = phone_a.recv_all(QUIET).await;
    assert!(heard.len() >= 8, "{} packets", heard.len());
    assert!(heard
        .iter()
        .all(|packet| music_frame(&engines_music, Codec::Pcma, packet).is_none()));
}

/// With music when idle, a session plays music between prompts; a prompt
/// interrupts it, and the music goes on where the clock has got to, not
/// where it stopped: every frame of music is the frame of its tick.
#[tokio::test(start_paused = true)]
async fn music_when_idle_plays_between_prompts_from_the_clock() {
    let engine = MediaEngine::start(MediaConfig::default());
    let music = numbered_music(100);
    engine.set_music(Some(music.clone()));
    let phone = Phone::new().await;
    let session = session_for(&engine, &phone, Codec::Pcmu).await;
    session.music_when_idle(true);
    let before = receive(&phone, 10).await;
    assert_music(&music, Codec::Pcmu, &before);

    let prompt = Arc::new(Prompt::tone(&[440], None, Duration::from_millis(200)));
    let played = session.play(prompt.clone(), None).await.unwrap();
    assert!(played.completed);
    let mut packets = before;
    packets.extend(receive(&phone, 30).await);
    // One packet a tick, so the sequence number counts ticks: music
    // frame and sequence move on together, across the prompt.
    let mut tones = 0;
    let mut offsets = Vec::new();
    for packet in &packets {
        if let Some(frame) = music_frame(&music, Codec::Pcmu, packet) {
            offsets.push(
                (frame + 65_536 * music.frames() - usize::from(packet.header.sequence)) % music.frames(),
            );
        } else {
            assert!((0..10).any(|index| prompt.frame(Codec::Pcmu, index) == packet.payload.as_slice()));
            tones += 1;
        }
    }
    assert_eq!(tones, 10);
    offsets.dedup();
    assert_eq!(offsets.len(), 1, "music frames off the clock: {offsets:?}");

    session.music_when_idle(false);
    drain(&phone).await;
    // Not active: nothing is sent when idle.
    assert!(phone.recv(QUIET).await.is_none());
}

/// With no music anywhere, hold and idle send comfort silence.
#[tokio::test(start_paused = true)]
async fn without_music_hold_sends_silence() {
    let engine = MediaEngine::start(MediaConfig::default());
    let phone = Phone::new().await;
    let session = engine.open(common::LOCALHOST).await.unwrap();
    session.set_remote(phone.addr(), Codec::Pcmu, None);
    session.hold(true);
    let packets = receive(&phone, 10).await;
    assert!(packets.iter().all(|packet| packet.payload == [0xFF; 160]));
    session.hold(false);
    session.music_when_idle(true);
    let packets = receive(&phone, 10).await;
    assert!(packets.iter().all(|packet| packet.payload == [0xFF; 160]));
    // Music the engine gets later is played at once.
    let music = numbered_music(20);
    engine.set_music(Some(music.clone()));
    drain(&phone).await;
    assert_music(&music, Codec::Pcmu, &receive(&phone, 10).await);
}

/// Two sessions of one worker that play music hear the same frame of it
/// in the same tick, though the second started later.
#[tokio::test(start_paused = true)]
async fn sessions_of_one_worker_hear_the_same_point_of_the_music() {
    let engine = MediaEngine::start(MediaConfig::default());
    let music = numbered_music(150);
    engine.set_music(Some(music.clone()));
    let (phone_a, phone_b) = (Phone::new().await, Phone::new().await);
    let session_a = session_for(&engine, &phone_a, Codec::Pcmu).await;
    let session_b = session_for(&engine, &phone_b, Codec::Pcmu).await;
    // Sessions 1 and 2 of the engine: slots 2 ms apart in each tick.
    assert_eq!((session_a.id(), session_b.id()), (1, 2));
    session_a.music_when_idle(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // From now on each packet is read as it arrives.
    let _ = queued(&phone_a).await;
    session_b.music_when_idle(true);
    let start = Instant::now();
    // (frame, when it arrived) for each phone, a second of each.
    let mut heard: [Vec<(usize, Duration)>; 2] = Default::default();
    for _ in 0..50 {
        for (phone, heard) in [&phone_a, &phone_b].into_iter().zip(heard.iter_mut()) {
            let packet = phone.recv(QUIET).await.unwrap();
            let frame = music_frame(&music, Codec::Pcmu, &packet).expect("music");
            heard.push((frame, start.elapsed()));
        }
    }
    let [heard_a, heard_b] = heard;
    // B came in where the clock was, not at the start of the music.
    assert!(heard_b[0].0 >= 14, "B's first frame: {}", heard_b[0].0);
    for (frame, when) in &heard_b {
        let (_, when_a) = heard_a
            .iter()
            .find(|(frame_a, _)| frame_a == frame)
            .unwrap_or_else(|| panic!("A never heard frame {frame}: {heard_a:?}"));
        let apart = when.abs_diff(*when_a);
        assert!(
            apart < Duration::from_millis(10),
            "frame {frame}: {apart:?} apart"
        );
    }
}

/// A conference whose host plays music when idle: every participant hears
/// the music with the others; a participant whose phone holds the call
/// adds nothing to it.
#[tokio::test(start_paused = true)]
async fn a_conference_host_mixes_its_music_for_everyone() {
    let engine = MediaEngine::start(MediaConfig::default());
    let music = numbered_music(100);
    engine.set_music(Some(music.clone()));
    let mut phones = vec![Phone::new().await, Phone::new().await, Phone::new().await];
    let mut sessions = Vec::new();
    for phone in &phones {
        sessions.push(session_for(&engine, phone, Codec::Pcmu).await);
    }
    sessions[0].mixer_attach(&sessions[1]);
    sessions[0].mixer_attach(&sessions[2]);
    sessions[0].music_when_idle(true);
    for phone in &phones {
        drain(phone).await;
    }
    // No one talks: everyone hears exactly the music.
    for phone in &phones {
        assert_music(&music, Codec::Pcmu, &receive(phone, 10).await);
    }

    // Participant 2 talks while its phone holds the call: no one hears it.
    sessions[2].peer_hold(true);
    for phone in &phones {
        drain(phone).await;
    }
    let to = sessions[2].local_addr();
    send_audio(&mut phones[2], to, &level(3000)).await;
    for phone in &phones[..2] {
        assert_music(&music, Codec::Pcmu, &queued(phone).await);
    }
    assert!(queued(&phones[2]).await.is_empty());

    // Back from hold, it is heard over the music.
    sessions[2].peer_hold(false);
    for phone in &phones {
        drain(phone).await;
    }
    send_audio(&mut phones[2], to, &level(3000)).await;
    let heard = queued(&phones[1]).await;
    let mixed = heard
        .iter()
        .filter(|packet| music_frame(&music, Codec::Pcmu, packet).is_none())
        .count();
    assert!(
        mixed >= 8,
        "{mixed} of {} frames were more than the music",
        heard.len()
    );
}
