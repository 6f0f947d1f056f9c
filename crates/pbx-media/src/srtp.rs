//! SRTP (RFC 3711) for the one suite pbxd offers and accepts,
//! `AES_CM_128_HMAC_SHA1_80`: AES-128 in counter mode, an 80-bit
//! HMAC-SHA1 tag, session keys derived once from a 30-byte master key and
//! salt (key derivation rate 0, no MKI), which SDES (RFC 4568) carries in
//! the SDP.
//!
//! Packets are protected and checked in place, in the media worker, one at
//! a time: [`Protector`] encrypts a packet pbxd sends and appends its tag;
//! [`Unprotector`] checks a received packet's tag, refuses replays, and
//! decrypts it. pbxd sends no RTCP, so there is no SRTCP here.
//!
//! HMAC (RFC 2104) over SHA-1 and the counter mode over AES are a few lines
//! each on the `sha1` and `aes` crates the workspace already has, so no
//! other crate is taken for them.

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes::Aes128;
use sha1::{Digest, Sha1};

/// Bytes of the master key.
pub const MASTER_KEY_LENGTH: usize = 16;
/// Bytes of the master salt.
pub const MASTER_SALT_LENGTH: usize = 14;
/// Bytes of a master key and salt together, as SDES's `inline:` carries them.
pub const MASTER_LENGTH: usize = MASTER_KEY_LENGTH + MASTER_SALT_LENGTH;
/// Bytes of the authentication tag each packet carries (80 bits).
pub const TAG_LENGTH: usize = 10;
/// The suite's name in SDP.
pub const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

/// Received packets within this many of the newest are checked against
/// replays (RFC 3711 §3.3.2 asks for at least 64); older ones are refused.
const REPLAY_WINDOW: u64 = 64;
/// Streams (SSRCs) of one peer whose index and replay window are kept.
const STREAMS_KEPT: usize = 4;

/// RFC 3711 §4.3.1 labels of the SRTP session keys.
const LABEL_ENCRYPTION: u8 = 0x00;
const LABEL_AUTHENTICATION: u8 = 0x01;
const LABEL_SALT: u8 = 0x02;

/// A master key and salt (RFC 3711 §3.2.1), one direction's.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; MASTER_LENGTH]);

impl std::fmt::Debug for MasterKey {
    /// Never the key itself: keys must not reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A fresh key and salt from the operating system's generator.
    pub fn random() -> std::io::Result<MasterKey> {
        let mut bytes = [0u8; MASTER_LENGTH];
        getrandom::fill(&mut bytes)
            .map_err(|error| std::io::Error::other(format!("no randomness for an SRTP key: {error}")))?;
        Ok(MasterKey(bytes))
    }

    /// A key and salt from their 30 bytes (key first); `None` for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<MasterKey> {
        Some(MasterKey(bytes.try_into().ok()?))
    }

    /// The key and salt, key first.
    pub fn as_bytes(&self) -> &[u8; MASTER_LENGTH] {
        &self.0
    }

    fn key(&self) -> &[u8] {
        &self.0[..MASTER_KEY_LENGTH]
    }

    fn salt(&self) -> &[u8] {
        &self.0[MASTER_KEY_LENGTH..]
    }
}

/// A call's SRTP keys, one each way (SDES: each side's SDP gives the key
/// it sends with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// pbxd's key, which its SDP offered or answered.
    pub send: MasterKey,
    /// The peer's key, from the peer's SDP.
    pub receive: MasterKey,
}

/// Why a received packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Shorter than an RTP header and a tag, or its header runs past its end.
    #[error("too short for SRTP")]
    TooShort,
    /// The tag does not match: not from the peer, or altered on the way.
    #[error("authentication failed")]
    Authentication,
    /// Already received, or older than the replay window.
    #[error("replayed or too old")]
    Replayed,
}

/// HMAC-SHA1 (RFC 2104) with its key's inner and outer states computed once.
#[derive(Clone)]
struct HmacSha1 {
    inner: Sha1,
    outer: Sha1,
}

impl HmacSha1 {
    /// `key` is at most SHA-1's 64-byte block (SRTP's is 20 bytes).
    fn new(key: &[u8]) -> HmacSha1 {
        let mut padded = [0u8; 64];
        padded[..key.len()].copy_from_slice(key);
        let mut inner = Sha1::new();
        let mut outer = Sha1::new();
        inner.update(padded.map(|byte| byte ^ 0x36));
        outer.update(padded.map(|byte| byte ^ 0x5c));
        HmacSha1 { inner, outer }
    }

    /// The first [`TAG_LENGTH`] bytes of the HMAC of `message` then `roc`.
    fn tag(&self, message: &[u8], roc: u32) -> [u8; TAG_LENGTH] {
        let mut inner = self.inner.clone();
        inner.update(message);
        inner.update(roc.to_be_bytes());
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        let digest = outer.finalize();
        let mut tag = [0u8; TAG_LENGTH];
        tag.copy_from_slice(&digest[..TAG_LENGTH]);
        tag
    }
}

/// XORs `data` with the AES-CM keystream from `iv` (RFC 3711 §4.1.1): block
/// `j` of it is AES of `iv` plus `j` (the low 16 bits of `iv` are zero).
fn apply_keystream(cipher: &Aes128, iv: &[u8; 16], data: &mut [u8]) {
    for (counter, chunk) in data.chunks_mut(16).enumerate() {
        let mut block = aes::Block::default();
        block.copy_from_slice(iv);
        let counter = counter as u16;
        block[14] ^= (counter >> 8) as u8;
        block[15] ^= counter as u8;
        cipher.encrypt_block(&mut block);
        for (byte, key) in chunk.iter_mut().zip(block.iter()) {
            *byte ^= key;
        }
    }
}

/// RFC 3711 §4.3.1 and §4.3.3: session key `label` of a master key, with a
/// key derivation rate of 0 (so the index takes no part).
fn derive(master: &MasterKey, label: u8, out: &mut [u8]) {
    let Ok(cipher) = Aes128::new_from_slice(master.key()) else {
        return;
    };
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LENGTH].copy_from_slice(master.salt());
    // key_id = label || r (48 bits, 0) sits at the right of the 112-bit salt.
    iv[7] ^= label;
    out.fill(0);
    apply_keystream(&cipher, &iv, out);
}

/// One direction's session keys.
#[derive(Clone)]
struct SessionKeys {
    cipher: Aes128,
    salt: [u8; MASTER_SALT_LENGTH],
    authentication: HmacSha1,
}

impl SessionKeys {
    fn new(master: &MasterKey) -> SessionKeys {
        let mut encryption = [0u8; 16];
        let mut authentication = [0u8; 20];
        let mut salt = [0u8; MASTER_SALT_LENGTH];
        derive(master, LABEL_ENCRYPTION, &mut encryption);
        derive(master, LABEL_AUTHENTICATION, &mut authentication);
        derive(master, LABEL_SALT, &mut salt);
        SessionKeys {
            cipher: Aes128::new(&encryption.into()),
            salt,
            authentication: HmacSha1::new(&authentication),
        }
    }

    /// The counter-mode IV of a packet (RFC 3711 §4.1.1):
    /// salt·2^16 ⊕ SSRC·2^64 ⊕ index·2^16.
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..MASTER_SALT_LENGTH].copy_from_slice(&self.salt);
        for (byte, ssrc_byte) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *byte ^= ssrc_byte;
        }
        for (byte, index_byte) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *byte ^= index_byte;
        }
        iv
    }
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

/// Where an RTP packet's payload starts (after CSRCs and an extension), or
/// `None` if the header runs past `length`.
fn payload_offset(packet: &[u8]) -> Option<usize> {
    let first = *packet.first()?;
    if first >> 6 != 2 || packet.len() < 12 {
        return None;
    }
    let mut offset = 12 + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let words = packet.get(offset + 2..offset + 4)?;
        offset += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    (offset <= packet.len()).then_some(offset)
}

fn ssrc_and_sequence(packet: &[u8]) -> (u32, u16) {
    let sequence = u16::from_be_bytes([packet[2], packet[3]]);
    let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
    (ssrc, sequence)
}

/// The sending side of one SRTP stream: encrypts and tags what pbxd sends.
#[derive(Debug)]
pub struct Protector {
    keys: SessionKeys,
    /// The rollover counter and the last sequence number sent, once one was.
    roc: u32,
    last_sequence: Option<u16>,
}

impl Protector {
    /// The sending side for a master key (pbxd's own, as its SDP gave it).
    pub fn new(master: &MasterKey) -> Protector {
        Protector {
            keys: SessionKeys::new(master),
            roc: 0,
            last_sequence: None,
        }
    }

    /// Protects the RTP packet in `buffer[..length]` in place: the payload
    /// is encrypted and the tag written after it. Returns the SRTP length,
    /// or `None` when the packet is not RTP or `buffer` has no room for the
    /// tag.
    pub fn protect(&mut self, buffer: &mut [u8], length: usize) -> Option<usize> {
        if buffer.len() < length + TAG_LENGTH {
            return None;
        }
        let offset = payload_offset(&buffer[..length])?;
        let (ssrc, sequence) = ssrc_and_sequence(buffer);
        // Our own sequence numbers go up by one: a wrap means a new roll.
        if self
            .last_sequence
            .is_some_and(|last| sequence < last && last - sequence > 0x8000)
        {
            self.roc = self.roc.wrapping_add(1);
        }
        self.last_sequence = Some(sequence);
        let index = (u64::from(self.roc) << 16) | u64::from(sequence);
        let iv = self.keys.iv(ssrc, index);
        apply_keystream(&self.keys.cipher, &iv, &mut buffer[offset..length]);
        let tag = self.keys.authentication.tag(&buffer[..length], self.roc);
        buffer[length..length + TAG_LENGTH].copy_from_slice(&tag);
        Some(length + TAG_LENGTH)
    }
}

/// What is kept of one received stream (SSRC): RFC 3711's s_l and ROC as
/// the highest index received, and the replay window below it.
#[derive(Debug, Clone, Copy)]
struct ReceivedStream {
    ssrc: u32,
    highest: u64,
    /// Bit `n`: index `highest - n` was received.
    window: u64,
    /// Order of last use, to forget the stream unused longest.
    used: u64,
}

impl ReceivedStream {
    /// RFC 3711 §3.3.1: the index a sequence number most likely has, from
    /// the highest one received (`None` if it would come before index 0).
    fn estimate(&self, sequence: u16) -> Option<u64> {
        let roc = self.highest >> 16;
        let last = (self.highest & 0xffff) as u16;
        let roc = if last < 0x8000 {
            if sequence > last && sequence - last > 0x8000 {
                roc.checked_sub(1)?
            } else {
                roc
            }
        } else if last - 0x8000 > sequence {
            roc + 1
        } else {
            roc
        };
        Some((roc << 16) | u64::from(sequence))
    }

    fn check_replay(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        let behind = self.highest - index;
        if behind >= REPLAY_WINDOW || self.window & (1 << behind) != 0 {
            return Err(SrtpError::Replayed);
        }
        Ok(())
    }

    fn note(&mut self, index: u64) {
        if index > self.highest {
            let ahead = index - self.highest;
            self.window = if ahead >= REPLAY_WINDOW {
                1
            } else {
                (self.window << ahead) | 1
            };
            self.highest = index;
        } else {
            self.window |= 1 << (self.highest - index);
        }
    }
}

/// The receiving side of one peer's SRTP: checks, refuses replays, decrypts.
#[derive(Debug)]
pub struct Unprotector {
    keys: SessionKeys,
    streams: Vec<ReceivedStream>,
    uses: u64,
}

impl Unprotector {
    /// The receiving side for a master key (the peer's, from its SDP).
    pub fn new(master: &MasterKey) -> Unprotector {
        Unprotector {
            keys: SessionKeys::new(master),
            streams: Vec::with_capacity(STREAMS_KEPT),
            uses: 0,
        }
    }

    /// Checks and decrypts the SRTP packet `packet` in place; returns the
    /// length of the RTP packet it held (the tag cut off). Nothing is
    /// decrypted, and nothing remembered, unless the tag matches.
    pub fn unprotect(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let Some(length) = packet.len().checked_sub(TAG_LENGTH) else {
            return Err(SrtpError::TooShort);
        };
        let offset = payload_offset(&packet[..length]).ok_or(SrtpError::TooShort)?;
        let (ssrc, sequence) = ssrc_and_sequence(packet);
        let known = self.streams.iter().position(|stream| stream.ssrc == ssrc);
        // RFC 3711 §3.3.1: a new stream's first sequence number is s_l, with ROC 0.
        let (index, stream) = match known {
            Some(position) => {
                let stream = self.streams[position];
                let index = stream.estimate(sequence).ok_or(SrtpError::Replayed)?;
                stream.check_replay(index)?;
                (index, stream)
            }
            None => (
                u64::from(sequence),
                ReceivedStream {
                    ssrc,
                    highest: u64::from(sequence),
                    window: 0,
                    used: 0,
                },
            ),
        };
        let roc = (index >> 16) as u32;
        let expected = self.keys.authentication.tag(&packet[..length], roc);
        if !constant_time_equal(&expected, &packet[length..]) {
            return Err(SrtpError::Authentication);
        }
        let iv = self.keys.iv(ssrc, index);
        apply_keystream(&self.keys.cipher, &iv, &mut packet[offset..length]);
        self.remember(known, stream, index);
        Ok(length)
    }

    fn remember(&mut self, position: Option<usize>, mut stream: ReceivedStream, index: u64) {
        self.uses += 1;
        stream.note(index);
        stream.used = self.uses;
        match position {
            Some(position) => self.streams[position] = stream,
            None if self.streams.len() < STREAMS_KEPT => self.streams.push(stream),
            None => {
                if let Some(oldest) = self.streams.iter_mut().min_by_key(|stream| stream.used) {
                    *oldest = stream;
                }
            }
        }
    }
}

fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let text: String = text.split_whitespace().collect();
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap_or_default())
            .collect()
    }

    fn master(key: &str, salt: &str) -> MasterKey {
        let mut bytes = hex(key);
        bytes.extend(hex(salt));
        MasterKey::from_bytes(&bytes).unwrap_or_else(|| panic!("a 30-byte key"))
    }

    #[test]
    fn keystream_matches_rfc_3711_b_2() {
        let key = hex("2B7E151628AED2A6ABF7158809CF4F3C");
        let cipher = Aes128::new_from_slice(&key).unwrap_or_else(|_| panic!("a 16-byte key"));
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
        let mut keystream = [0u8; 48];
        apply_keystream(&cipher, &iv, &mut keystream);
        assert_eq!(
            keystream.to_vec(),
            hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0")
        );
    }

    #[test]
    fn session_keys_match_rfc_3711_b_3() {
        let master = master("E1F97A0D3E018BE0D64FA32C06DE4139", "0EC675AD498AFEEBB6960B3AABE6");
        let mut encryption = [0u8; 16];
        let mut authentication = [0u8; 20];
        let mut salt = [0u8; 14];
        derive(&master, LABEL_ENCRYPTION, &mut encryption);
        derive(&master, LABEL_AUTHENTICATION, &mut authentication);
        derive(&master, LABEL_SALT, &mut salt);
        assert_eq!(encryption.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(
            authentication.to_vec(),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
        assert_eq!(salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        // RFC 2202 test case 2: key "Jefe", "what do ya want for nothing?".
        // `tag` appends the ROC, so the message's last four bytes stand in
        // for it.
        let hmac = HmacSha1::new(b"Jefe");
        let message = b"what do ya want for nothing?";
        let (body, roc) = message.split_at(message.len() - 4);
        let roc = u32::from_be_bytes([roc[0], roc[1], roc[2], roc[3]]);
        assert_eq!(
            hmac.tag(body, roc).to_vec(),
            hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")[..10].to_vec()
        );
    }

    fn rtp(sequence: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        packet[2..4].copy_from_slice(&sequence.to_be_bytes());
        packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
        packet.extend_from_slice(payload);
        packet
    }

    fn protected(protector: &mut Protector, sequence: u16) -> Vec<u8> {
        let mut packet = rtp(sequence, 0x1234_5678, &[0x55; 160]);
        let length = packet.len();
        packet.resize(length + TAG_LENGTH, 0);
        let sent = protector.protect(&mut packet, length);
        assert_eq!(sent, Some(length + TAG_LENGTH));
        packet
    }

    #[test]
    fn a_protected_packet_is_unprotected_by_the_same_key_only() {
        let key = MasterKey::random().unwrap_or_else(|_| panic!("randomness"));
        let mut protector = Protector::new(&key);
        let mut packet = protected(&mut protector, 7);
        assert_ne!(&packet[12..172], &[0x55; 160][..], "the payload is encrypted");
        let mut wrong = Unprotector::new(&MasterKey::random().unwrap_or_else(|_| panic!("randomness")));
        assert_eq!(
            wrong.unprotect(&mut packet.clone()),
            Err(SrtpError::Authentication)
        );
        let mut receiver = Unprotector::new(&key);
        let mut altered = packet.clone();
        altered[20] ^= 1;
        assert_eq!(receiver.unprotect(&mut altered), Err(SrtpError::Authentication));
        let sent = packet.clone();
        assert_eq!(receiver.unprotect(&mut packet), Ok(172));
        assert_eq!(&packet[12..172], &[0x55; 160][..]);
        assert_eq!(receiver.unprotect(&mut sent.clone()), Err(SrtpError::Replayed));
        assert_eq!(receiver.unprotect(&mut [0x80; 12]), Err(SrtpError::TooShort));
    }

    #[test]
    fn the_rollover_counter_follows_a_wrap_and_late_packets_within_the_window() {
        let key = MasterKey::random().unwrap_or_else(|_| panic!("randomness"));
        let mut protector = Protector::new(&key);
        let mut receiver = Unprotector::new(&key);
        let sequences: Vec<u16> = (0xfff0..=0xffff).chain(0..0x10).collect();
        let packets: Vec<Vec<u8>> = sequences
            .iter()
            .map(|&sequence| protected(&mut protector, sequence))
            .collect();
        // Every other packet first, then the late ones (reordered by the network).
        for packet in packets.iter().step_by(2).chain(packets.iter().skip(1).step_by(2)) {
            assert!(receiver.unprotect(&mut packet.clone()).is_ok());
        }
        assert_eq!(receiver.streams[0].highest, (1 << 16) | 0x0f);
        // After the wrap, packets keep authenticating (ROC 1).
        for sequence in 0x10..0x20 {
            let mut packet = protected(&mut protector, sequence);
            assert!(receiver.unprotect(&mut packet).is_ok());
        }
        // A packet from before the window is refused.
        assert_eq!(
            receiver.unprotect(&mut packets[0].clone()),
            Err(SrtpError::Replayed)
        );
    }

    proptest::proptest! {
        /// Whatever arrives, a receiver refuses it without panicking (and
        /// a packet made from nothing never authenticates).
        #[test]
        fn anything_received_is_refused_without_panicking(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let key = MasterKey::from_bytes(&[7; MASTER_LENGTH]).unwrap_or_else(|| panic!("30 bytes"));
            let mut receiver = Unprotector::new(&key);
            let mut packet = bytes;
            proptest::prop_assert!(receiver.unprotect(&mut packet).is_err());
        }
    }
}
