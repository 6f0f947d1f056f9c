//! RTP packets (RFC 3550 §5.1): parsing what arrives and writing what leaves.
//!
//! Parsing borrows from the datagram and allocates nothing unless the packet
//! carries contributing sources, which phones never send. Anything that is not
//! a well-formed version 2 packet is an [`RtpError`], never a panic.

/// The fixed part of every RTP header, in bytes.
pub const FIXED_HEADER_LENGTH: usize = 12;

/// Why a datagram is not an RTP packet pbxd accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("the packet is shorter than its header says ({0} bytes)")]
    Truncated(usize),
    #[error("RTP version {0}; only version 2 exists")]
    Version(u8),
    #[error("the padding count {0} is zero or larger than the payload")]
    Padding(u8),
    #[error("more than 15 contributing sources")]
    TooManySources,
    #[error("the header extension is longer than 65535 words")]
    ExtensionTooLong,
}

/// The header fields of an RTP packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RtpHeader {
    /// For audio: the first packet of a talk spurt.
    pub marker: bool,
    /// Seven bits: what the payload is (0 = PCMU, 8 = PCMA, dynamic for events).
    pub payload_type: u8,
    /// Increases by one per packet; lets the receiver reorder and spot loss.
    pub sequence: u16,
    /// The sampling instant of the payload's first sample, in 8 kHz units for G.711.
    pub timestamp: u32,
    /// Names the stream; random per sender.
    pub ssrc: u32,
    /// Contributing sources (a mixer's inputs); at most 15, usually none.
    pub csrcs: Vec<u32>,
}

/// A header extension (RFC 3550 §5.3.1): a profile-defined tag and its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    /// Says how to read `data` (e.g. 0xBEDE for RFC 8285 one-byte headers).
    pub profile: u16,
    /// A whole number of 32-bit words.
    pub data: &'a [u8],
}

/// A parsed RTP packet, borrowing its extension and payload from the datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The fixed header and contributing sources.
    pub header: RtpHeader,
    /// The header extension, when the X bit is set.
    pub extension: Option<RtpExtension<'a>>,
    /// The media: for G.711 one byte per sample.
    pub payload: &'a [u8],
    /// Bytes of padding after the payload (0 = no padding bit).
    pub padding: u8,
}

impl RtpHeader {
    /// Appends the header (fixed part and CSRCs, no extension) to `out`.
    /// Fields wider than the wire format (payload type, CSRC count) are cut to fit.
    pub fn write(&self, out: &mut Vec<u8>) {
        self.write_with(out, false, false);
    }

    /// Writes a header without CSRCs, padding or extension into `out`'s
    /// first 12 bytes (what a sender writes for every packet, without
    /// building a header first).
    pub fn write_fixed(
        marker: bool,
        payload_type: u8,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        out: &mut [u8],
    ) {
        if let Some(out) = out.get_mut(..FIXED_HEADER_LENGTH) {
            out[0] = 0x80;
            out[1] = (u8::from(marker) << 7) | (payload_type & 0x7F);
            out[2..4].copy_from_slice(&sequence.to_be_bytes());
            out[4..8].copy_from_slice(&timestamp.to_be_bytes());
            out[8..12].copy_from_slice(&ssrc.to_be_bytes());
        }
    }

    fn write_with(&self, out: &mut Vec<u8>, padding: bool, extension: bool) {
        let csrc_count = self.csrcs.len().min(15);
        let first = 0x80 | (u8::from(padding) << 5) | (u8::from(extension) << 4) | csrc_count as u8;
        out.push(first);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7F));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for csrc in &self.csrcs[..csrc_count] {
            out.extend_from_slice(&csrc.to_be_bytes());
        }
    }
}

impl<'a> RtpPacket<'a> {
    /// Parses one datagram.
    pub fn parse(bytes: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        if bytes.len() < FIXED_HEADER_LENGTH {
            return Err(RtpError::Truncated(bytes.len()));
        }
        let version = bytes[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let has_padding = bytes[0] & 0x20 != 0;
        let has_extension = bytes[0] & 0x10 != 0;
        let csrc_count = usize::from(bytes[0] & 0x0F);
        let mut header = RtpHeader {
            marker: bytes[1] & 0x80 != 0,
            payload_type: bytes[1] & 0x7F,
            sequence: u16::from_be_bytes([bytes[2], bytes[3]]),
            timestamp: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            ssrc: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
            csrcs: Vec::new(),
        };
        let mut at = FIXED_HEADER_LENGTH;
        let csrc_end = at + 4 * csrc_count;
        let csrc_bytes = bytes.get(at..csrc_end).ok_or(RtpError::Truncated(bytes.len()))?;
        header.csrcs = csrc_bytes
            .chunks_exact(4)
            .map(|word| u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
            .collect();
        at = csrc_end;
        let mut extension = None;
        if has_extension {
            let head = bytes.get(at..at + 4).ok_or(RtpError::Truncated(bytes.len()))?;
            let profile = u16::from_be_bytes([head[0], head[1]]);
            let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let data_end = at + 4 + 4 * words;
            let data = bytes
                .get(at + 4..data_end)
                .ok_or(RtpError::Truncated(bytes.len()))?;
            extension = Some(RtpExtension { profile, data });
            at = data_end;
        }
        let mut end = bytes.len();
        let mut padding = 0;
        if has_padding {
            // The last byte counts the padding, itself included.
            padding = bytes[end - 1];
            if padding == 0 || usize::from(padding) > end - at {
                return Err(RtpError::Padding(padding));
            }
            end -= usize::from(padding);
        }
        Ok(RtpPacket {
            header,
            extension,
            payload: &bytes[at..end],
            padding,
        })
    }

    /// Appends the whole packet to `out`. The padding bytes are zeros except
    /// the last, which counts them.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), RtpError> {
        if self.header.csrcs.len() > 15 {
            return Err(RtpError::TooManySources);
        }
        let extension_words = match &self.extension {
            Some(extension) => {
                let words = extension.data.len().div_ceil(4);
                Some(u16::try_from(words).map_err(|_| RtpError::ExtensionTooLong)?)
            }
            None => None,
        };
        self.header
            .write_with(out, self.padding > 0, self.extension.is_some());
        if let (Some(extension), Some(words)) = (&self.extension, extension_words) {
            out.extend_from_slice(&extension.profile.to_be_bytes());
            out.extend_from_slice(&words.to_be_bytes());
            out.extend_from_slice(extension.data);
            // Extension data is whole words; pad a short one with zeros.
            out.resize(out.len() + usize::from(words) * 4 - extension.data.len(), 0);
        }
        out.extend_from_slice(self.payload);
        if self.padding > 0 {
            out.resize(out.len() + usize::from(self.padding) - 1, 0);
            out.push(self.padding);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_plain_pcmu_packet() {
        let mut datagram = vec![0x80, 0x80, 0x12, 0x34, 0, 0, 0x01, 0x40, 0xDE, 0xAD, 0xBE, 0xEF];
        datagram.extend_from_slice(&[0xFF; 160]);
        let packet = RtpPacket::parse(&datagram).unwrap();
        assert!(packet.header.marker);
        assert_eq!(packet.header.payload_type, 0);
        assert_eq!(packet.header.sequence, 0x1234);
        assert_eq!(packet.header.timestamp, 320);
        assert_eq!(packet.header.ssrc, 0xDEADBEEF);
        assert_eq!(packet.payload.len(), 160);
        assert_eq!(packet.extension, None);
    }

    #[test]
    fn round_trips_csrcs_extension_and_padding() {
        let packet = RtpPacket {
            header: RtpHeader {
                marker: false,
                payload_type: 101,
                sequence: 65535,
                timestamp: u32::MAX,
                ssrc: 7,
                csrcs: vec![1, 2, 3],
            },
            extension: Some(RtpExtension {
                profile: 0xBEDE,
                data: &[1, 2, 3, 4, 5, 6, 7, 8],
            }),
            payload: &[9, 8, 7],
            padding: 5,
        };
        let mut bytes = Vec::new();
        packet.write(&mut bytes).unwrap();
        assert_eq!(bytes.len(), 12 + 12 + 4 + 8 + 3 + 5);
        assert_eq!(RtpPacket::parse(&bytes).unwrap(), packet);
    }

    #[test]
    fn header_write_matches_parse() {
        let header = RtpHeader {
            marker: true,
            payload_type: 8,
            sequence: 9,
            timestamp: 160,
            ssrc: 42,
            csrcs: vec![],
        };
        let mut bytes = Vec::new();
        header.write(&mut bytes);
        bytes.extend_from_slice(&[0xD5; 160]);
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(packet.header, header);
        assert_eq!(packet.payload, &[0xD5; 160][..]);
    }

    #[test]
    fn a_fixed_header_is_the_header_written_without_extras() {
        let header = RtpHeader {
            marker: true,
            payload_type: 8,
            sequence: 0xfffe,
            timestamp: 0x0102_0304,
            ssrc: 0xdead_beef,
            csrcs: Vec::new(),
        };
        let mut written = Vec::new();
        header.write(&mut written);
        let mut fixed = [0u8; 12];
        RtpHeader::write_fixed(true, 8, 0xfffe, 0x0102_0304, 0xdead_beef, &mut fixed);
        assert_eq!(written, fixed);
    }

    #[test]
    fn refuses_malformed_packets() {
        assert_eq!(RtpPacket::parse(&[]), Err(RtpError::Truncated(0)));
        assert_eq!(RtpPacket::parse(&[0x80; 11]), Err(RtpError::Truncated(11)));
        // Version 1.
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::Version(1)));
        // Says 15 CSRCs, has none.
        let mut bytes = vec![0x8F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::Truncated(12)));
        // Extension header missing.
        bytes[0] = 0x90;
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::Truncated(12)));
        // Extension claims 2 words, has 1.
        bytes.extend_from_slice(&[0, 0, 0, 2, 1, 2, 3, 4]);
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::Truncated(20)));
        // Padding larger than the payload, and padding of zero.
        let mut bytes = vec![0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 9];
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::Padding(9)));
        bytes[14] = 0;
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::Padding(0)));
        bytes[14] = 3;
        assert_eq!(RtpPacket::parse(&bytes).unwrap().payload, &[] as &[u8]);
    }
}
