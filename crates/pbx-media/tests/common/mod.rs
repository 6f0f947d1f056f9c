//! Helpers shared by the integration tests: sox-made audio, and a "phone"
//! that is a plain UDP socket speaking RTP.
// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pbx_media::rtp::{RtpHeader, RtpPacket};
use pbx_media::{Codec, MediaEngine, MediaSession};
use tokio::net::UdpSocket;

/// Where the engine's sessions and the phones listen.
pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A session sending to `phone`, with no comfort silence so only what is played is sent.
pub async fn session_for(engine: &MediaEngine, phone: &Phone, codec: Codec) -> MediaSession {
    let session = engine.open(LOCALHOST).await.unwrap();
    session.set_active(false);
    session.set_remote(phone.addr(), codec, None);
    session
}

/// Sends `samples` from `phone` to `to` as µ-law packets paced at 20 ms.
pub async fn send_audio(phone: &mut Phone, to: SocketAddr, samples: &[i16]) {
    for frame in samples.chunks(160) {
        let mut payload = Vec::new();
        Codec::Pcmu.encode(frame, &mut payload);
        phone.send_audio(to, 0, &payload).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

static NEXT_FILE: AtomicU32 = AtomicU32::new(0);

/// Runs sox with `arguments`, where `{out}` names a fresh temporary file;
/// returns the file's bytes.
pub fn sox(arguments: &str) -> Vec<u8> {
    let number = NEXT_FILE.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("pbx-media-{}-{number}.wav", std::process::id()));
    let path_text = path.to_str().unwrap().to_string();
    let arguments: Vec<String> = arguments
        .split_whitespace()
        .map(|word| {
            if word == "{out}" {
                path_text.clone()
            } else {
                word.to_string()
            }
        })
        .collect();
    let status = Command::new("sox")
        .args(&arguments)
        .status()
        .expect("sox is installed");
    assert!(status.success(), "sox {arguments:?} failed");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    bytes
}

/// Mean power of samples.
pub fn power(samples: &[i16]) -> f64 {
    samples
        .iter()
        .map(|&sample| f64::from(sample).powi(2))
        .sum::<f64>()
        / samples.len().max(1) as f64
}

/// One received RTP packet, owned.
#[derive(Clone, Debug)]
pub struct Received {
    pub header: RtpHeader,
    pub payload: Vec<u8>,
    pub from: SocketAddr,
}

/// A phone: a UDP socket on 127.0.0.1 that sends and receives RTP.
pub struct Phone {
    pub socket: UdpSocket,
    pub ssrc: u32,
    pub sequence: u16,
    pub timestamp: u32,
}

impl Phone {
    pub async fn new() -> Phone {
        Phone {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            ssrc: 0x1234_5678,
            sequence: 100,
            timestamp: 5000,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// The next packet, or `None` when nothing comes within `wait`.
    pub async fn recv(&self, wait: Duration) -> Option<Received> {
        let mut buffer = [0u8; 2048];
        let (length, from) = tokio::time::timeout(wait, self.socket.recv_from(&mut buffer))
            .await
            .ok()?
            .unwrap();
        let packet = RtpPacket::parse(&buffer[..length]).expect("the engine sends valid RTP");
        Some(Received {
            header: packet.header,
            payload: packet.payload.to_vec(),
            from,
        })
    }

    /// Every packet until none comes for `quiet`.
    pub async fn recv_all(&self, quiet: Duration) -> Vec<Received> {
        let mut packets = Vec::new();
        while let Some(packet) = self.recv(quiet).await {
            packets.push(packet);
        }
        packets
    }

    /// Sends one RTP packet to `to`, then moves sequence on by one.
    pub async fn send(
        &mut self,
        to: SocketAddr,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
    ) {
        let header = RtpHeader {
            marker,
            payload_type,
            sequence: self.sequence,
            timestamp,
            ssrc: self.ssrc,
            csrcs: vec![],
        };
        let mut bytes = Vec::new();
        header.write(&mut bytes);
        bytes.extend_from_slice(payload);
        self.socket.send_to(&bytes, to).await.unwrap();
        self.sequence = self.sequence.wrapping_add(1);
    }

    /// Sends one 20 ms audio packet and moves the timestamp on by 160.
    pub async fn send_audio(&mut self, to: SocketAddr, payload_type: u8, payload: &[u8]) {
        let timestamp = self.timestamp;
        self.send(to, payload_type, false, timestamp, payload).await;
        self.timestamp = self.timestamp.wrapping_add(160);
    }
}

/// Checks that packets form one stream: same SSRC, sequence +1, timestamp +160.
pub fn assert_continuous(packets: &[Received]) {
    for pair in packets.windows(2) {
        assert_eq!(pair[1].header.ssrc, pair[0].header.ssrc);
        assert_eq!(pair[1].header.sequence, pair[0].header.sequence.wrapping_add(1));
        assert_eq!(
            pair[1].header.timestamp,
            pair[0].header.timestamp.wrapping_add(160)
        );
    }
}
