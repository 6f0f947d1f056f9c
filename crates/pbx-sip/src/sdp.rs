//! SDP offer/answer for audio calls (RFC 3264, RFC 4566).
//!
//! pbxd speaks G.711 only (PCMU and PCMA) plus RFC 4733 `telephone-event`,
//! so this module reads just what a call needs from a session description:
//! where to send RTP, which codecs the peer listed, the DTMF payload type,
//! the stream direction and the packet time. Everything else in the SDP is
//! skipped, but the layout of the offer's m= lines is kept, because an
//! answer must carry exactly as many m= lines as its offer (RFC 3264 §6),
//! with the streams pbxd does not take (video, a second audio) rejected by
//! port zero.
//!
//! SRTP is negotiated here too, by SDES (RFC 4568): an audio stream over
//! `RTP/SAVP` (or plain `RTP/AVP` carrying `a=crypto` lines, as some phones
//! offer it "best effort") with an `AES_CM_128_HMAC_SHA1_80` key is
//! answered with the same tag and pbxd's own key; other suites, MKIs and
//! session parameters are refused line by line, and an `RTP/SAVP` stream
//! with no line left is not acceptable (488).
//!
//! No I/O happens here: parsing and writing are pure functions of text.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use base64::Engine as _;
use pbx_media::srtp::{MasterKey, SrtpKeys, SUITE};

/// The largest session description accepted. Real audio offers are under
/// 2 KiB; the limit only stops a hostile peer from making us walk megabytes.
pub const MAX_SDP_BYTES: usize = 64 * 1024;

/// The most lines accepted in one session description, for the same reason
/// as [`MAX_SDP_BYTES`]: a 64 KiB body of empty lines is cheap to reject.
pub const MAX_SDP_LINES: usize = 2048;

/// The payload type pbxd offers for RFC 4733 events; 101 is what most phones
/// use, which keeps packet captures familiar.
pub const OFFERED_TELEPHONE_EVENT_PAYLOAD_TYPE: u8 = 101;

/// The packet time pbxd sends at and asks for, in milliseconds.
pub const PACKET_TIME_MILLISECONDS: u32 = 20;

/// The name pbxd writes into o= and s= lines.
const SESSION_NAME: &str = "pbxd";

/// What went wrong with a session description.
///
/// [`SdpError::is_not_acceptable`] tells the cases a SIP caller answers with
/// 488 Not Acceptable Here from those where the body itself is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is larger than [`MAX_SDP_BYTES`].
    #[error("session description of {bytes} bytes is over the {MAX_SDP_BYTES}-byte limit")]
    TooLarge {
        /// The size of the rejected body.
        bytes: usize,
    },
    /// The body has more than [`MAX_SDP_LINES`] lines.
    #[error("session description has more than {MAX_SDP_LINES} lines")]
    TooManyLines,
    /// The body does not start with `v=0`, so it is not SDP at all.
    #[error("not a session description: it must start with v=0")]
    NotSdp,
    /// A line is not of the form `<letter>=<value>`.
    #[error("line {line_number} is not of the form <type>=<value>")]
    MalformedLine {
        /// One-based line number in the body.
        line_number: usize,
    },
    /// An m= line lacks its media, port, protocol or formats, or has a bad port
    /// or payload type.
    #[error("line {line_number}: malformed m= line")]
    InvalidMediaLine {
        /// One-based line number in the body.
        line_number: usize,
    },
    /// A c= line is not `IN IP4|IP6 <literal address>`. Host names are refused
    /// because resolving them here would be I/O, and no phone sends them.
    #[error("line {line_number}: malformed c= line")]
    InvalidConnection {
        /// One-based line number in the body.
        line_number: usize,
    },
    /// The chosen audio stream has no c= line, neither its own nor a
    /// session-level one.
    #[error("the audio stream has no connection address")]
    MissingConnection,
    /// There is no m=audio line with a non-zero port: no audio offered, or
    /// every audio stream rejected or disabled.
    #[error("no active audio stream")]
    NoAudio,
    /// Audio is offered only over a transport pbxd lacks, such as SRTP
    /// (`RTP/SAVP`) or DTLS.
    #[error("audio is offered only over unsupported transport {protocol}")]
    UnsupportedTransport {
        /// The protocol field of the first active m=audio line.
        protocol: String,
    },
    /// Neither PCMU nor PCMA at 8000 Hz is among the audio codecs.
    #[error("no codec in common: pbxd needs PCMU or PCMA")]
    NoCommonCodec,
    /// Audio is offered over SRTP (`RTP/SAVP`) with no `a=crypto` line
    /// pbxd can use: none, or another suite, an MKI, session parameters,
    /// or a key that is not 30 bytes of base64.
    #[error("SRTP offered with no usable a=crypto line: pbxd needs {SUITE} with an inline key")]
    NoUsableCrypto,
    /// SRTP offered where it is turned off (`sip.srtp = "off"`), plain RTP
    /// where it is mandatory, or an answer without the key pbxd asked for.
    #[error("{0}")]
    EncryptionPolicy(&'static str),
}

impl SdpError {
    /// Whether the session description was understood but cannot be
    /// accepted, which a SIP caller answers with 488 (RFC 3261 §21.4.26);
    /// the other errors mean a broken body (400).
    pub fn is_not_acceptable(&self) -> bool {
        matches!(
            self,
            SdpError::NoAudio
                | SdpError::UnsupportedTransport { .. }
                | SdpError::NoCommonCodec
                | SdpError::NoUsableCrypto
                | SdpError::EncryptionPolicy(_)
        )
    }
}

/// The direction of a media stream as its describer states it (RFC 3264 §5.1):
/// `SendOnly` in a peer's SDP means the peer sends and does not receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Both ways; the default when no direction attribute is given.
    #[default]
    SendRecv,
    /// The describer sends only.
    SendOnly,
    /// The describer receives only.
    RecvOnly,
    /// Neither way.
    Inactive,
}

impl Direction {
    /// The SDP attribute naming this direction, without `a=`.
    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answerer gives in reply to an offer with this one
    /// (RFC 3264 §6.1): what the offerer sends, the answerer receives.
    pub fn answered(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Whether the describer sends media in this direction.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the describer receives media in this direction.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// This direction with receiving taken away, which is what an RFC 2543
    /// hold (c=0.0.0.0) means: RFC 3264 §8.4 says nothing is to be sent to
    /// that peer, while it may still send (music on hold, say).
    fn without_receiving(self) -> Direction {
        match self {
            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
            Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
        }
    }

    fn from_attribute(name: &str) -> Option<Direction> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|direction| direction.attribute().eq_ignore_ascii_case(name))
    }
}

/// One audio codec as an m= line lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioCodec {
    /// The RTP payload type, 0–127.
    pub payload_type: u8,
    /// The encoding name as the SDP spells it ("PCMU", "opus"); compare it
    /// without regard to case, as RFC 4566 §6 says.
    pub name: String,
    /// The RTP clock rate in Hz.
    pub rate: u32,
}

impl AudioCodec {
    /// G.711 µ-law at its static payload type 0.
    pub fn pcmu() -> AudioCodec {
        AudioCodec {
            payload_type: 0,
            name: "PCMU".to_owned(),
            rate: 8000,
        }
    }

    /// G.711 A-law at its static payload type 8.
    pub fn pcma() -> AudioCodec {
        AudioCodec {
            payload_type: 8,
            name: "PCMA".to_owned(),
            rate: 8000,
        }
    }

    /// This codec with its name in canonical spelling, if it is one pbxd can
    /// encode: PCMU or PCMA at 8000 Hz, under whatever payload type the peer
    /// chose for it.
    fn as_g711(&self) -> Option<AudioCodec> {
        let canonical_name = ["PCMU", "PCMA"]
            .into_iter()
            .find(|name| name.eq_ignore_ascii_case(&self.name))?;
        (self.rate == 8000).then(|| AudioCodec {
            payload_type: self.payload_type,
            name: canonical_name.to_owned(),
            rate: 8000,
        })
    }
}

/// One m= line of a session description, kept so that an answer can mirror
/// the offer's layout (RFC 3264 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    /// The media type: "audio", "video", "application"...
    pub media: String,
    /// The transport port; zero for a rejected or disabled stream.
    pub port: u16,
    /// The transport protocol, such as "RTP/AVP".
    pub protocol: String,
    /// The media formats as listed (payload types for RTP).
    pub formats: Vec<String>,
}

/// The audio part of a session description, as pbxd needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Where the peer receives RTP: the audio stream's c= address, else the
    /// session-level one. An unspecified address (0.0.0.0) is kept as it is;
    /// it also shows in `direction`.
    pub address: IpAddr,
    /// The RTP port of the audio stream, never zero.
    pub port: u16,
    /// The audio codecs in the m= line's order, named by their rtpmap or, for
    /// static payload types, by RFC 3551's table. `telephone-event` is not
    /// listed here but in `telephone_event`; payload types with no known name
    /// are left out, as nobody could use them.
    pub codecs: Vec<AudioCodec>,
    /// The payload type of `telephone-event/8000`, if listed. Events at other
    /// clock rates do not fit G.711 streams and are ignored.
    pub telephone_event: Option<u8>,
    /// The stream's direction as the describer states it (media-level over
    /// session-level, sendrecv by default). A connection address of 0.0.0.0
    /// (RFC 2543 hold) removes receiving: sendrecv becomes sendonly and
    /// recvonly becomes inactive, because RFC 3264 §8.4 says nothing may be
    /// sent to such a peer while it may still send.
    pub direction: Direction,
    /// The a=ptime value in milliseconds, media-level over session-level.
    pub ptime: Option<u32>,
    /// Every m= line of the description, in order.
    pub media_lines: Vec<MediaLine>,
    /// The index in `media_lines` of the audio stream described above.
    pub audio_line_index: usize,
    /// Whether that stream's protocol is SRTP (`RTP/SAVP`, `RTP/SAVPF`).
    pub secure: bool,
    /// Its first usable `a=crypto` line (SDES), if any.
    pub crypto: Option<Crypto>,
}

/// One `a=crypto` line pbxd can use: its tag and the key it carries
/// (RFC 4568 §9.1; the suite is always [`SUITE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// The line's tag, which the answer repeats.
    pub tag: u32,
    /// The key and salt the describer sends with.
    pub key: MasterKey,
}

impl Crypto {
    /// The attribute's value (after `a=`).
    pub fn attribute(&self) -> String {
        let inline = base64::engine::general_purpose::STANDARD.encode(self.key.as_bytes());
        format!("crypto:{} {SUITE} inline:{inline}", self.tag)
    }
}

/// Reads `<tag> <suite> inline:<key||salt>[|lifetime] [session params]`.
/// `Err` says why a line is refused (logged; the call goes on to the
/// next line).
pub fn parse_crypto(argument: &str) -> Result<Crypto, &'static str> {
    let mut fields = argument.split_ascii_whitespace();
    let (Some(tag), Some(suite), Some(key_params)) = (fields.next(), fields.next(), fields.next()) else {
        return Err("fewer than three fields");
    };
    let tag: u32 = tag
        .parse()
        .ok()
        .filter(|_| (1..=9).contains(&tag.len()))
        .ok_or("the tag is not 1-9 digits")?;
    if !suite.eq_ignore_ascii_case(SUITE) {
        return Err("another suite");
    }
    if fields.next().is_some() {
        // KDR, UNENCRYPTED_SRTP, FEC_ORDER...: each changes how packets
        // are made, and pbxd knows none of them.
        return Err("session parameters");
    }
    // Several keys (`;`-separated) mean MKIs, which pbxd does not do.
    if key_params.contains(';') {
        return Err("more than one key");
    }
    let inline = key_params
        .strip_prefix("inline:")
        .or_else(|| key_params.strip_prefix("INLINE:"))
        .ok_or("not an inline key")?;
    let mut parts = inline.split('|');
    let key_text = parts.next().unwrap_or_default();
    for part in parts {
        if part.contains(':') {
            return Err("an MKI");
        }
        let lifetime_ok = match part.strip_prefix("2^") {
            Some(power) => power.parse::<u32>().is_ok_and(|power| power <= 48),
            None => part.parse::<u64>().is_ok(),
        };
        if !lifetime_ok {
            return Err("a lifetime that is not a number");
        }
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key_text)
        .map_err(|_| "the key is not base64")?;
    let key = MasterKey::from_bytes(&bytes).ok_or("the key and salt are not 30 bytes")?;
    Ok(Crypto { tag, key })
}

impl Default for MediaDescription {
    /// An empty description: no codecs, unspecified address, port 0. Useful
    /// as a base for descriptions built in code.
    fn default() -> MediaDescription {
        MediaDescription {
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            codecs: Vec::new(),
            telephone_event: None,
            direction: Direction::SendRecv,
            ptime: None,
            media_lines: Vec::new(),
            audio_line_index: 0,
            secure: false,
            crypto: None,
        }
    }
}

/// The outcome of an offer/answer exchange, for the call's RTP session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// The codec both sides use, PCMU or PCMA, with the peer's payload type.
    pub codec: AudioCodec,
    /// The payload type for RFC 4733 events, if both sides have them.
    pub telephone_event: Option<u8>,
    /// The stream's direction as the peer sees it: `SendOnly` means the peer
    /// sends and will not receive, which is how it puts us on hold.
    pub direction: Direction,
    /// The SRTP keys both ways, when the media is encrypted.
    pub srtp: Option<SrtpKeys>,
}

impl Negotiated {
    /// Whether the peer holds us: it will not receive media (sendonly or
    /// inactive), or it gave the RFC 2543 hold address 0.0.0.0.
    pub fn on_hold(&self) -> bool {
        !self.direction.receives() || self.remote.ip().is_unspecified()
    }
}

/// The RFC 3551 static audio payload types, used when an m= line lists one
/// without an rtpmap.
fn static_payload_type(payload_type: u8) -> Option<(&'static str, u32)> {
    let entry = match payload_type {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        5 => ("DVI4", 8000),
        6 => ("DVI4", 16000),
        7 => ("LPC", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        10 | 11 => ("L16", 44100),
        12 => ("QCELP", 8000),
        13 => ("CN", 8000),
        14 => ("MPA", 90000),
        15 => ("G728", 8000),
        16 => ("DVI4", 11025),
        17 => ("DVI4", 22050),
        18 => ("G729", 8000),
        _ => return None,
    };
    Some(entry)
}

/// What one level (session or a media section) of the SDP says about the
/// things pbxd reads.
#[derive(Default)]
struct LevelAttributes {
    connection: Option<IpAddr>,
    direction: Option<Direction>,
    ptime: Option<u32>,
}

/// An m= line and the lines after it.
struct MediaSection {
    line: MediaLine,
    attributes: LevelAttributes,
    /// rtpmap entries: payload type, encoding name, clock rate.
    rtpmaps: Vec<(u8, String, u32)>,
    /// The first usable `a=crypto` line.
    crypto: Option<Crypto>,
}

/// Reads the first active audio stream of a session description.
///
/// The first m=audio line with a non-zero port and an RTP/AVP or RTP/AVPF
/// transport is taken. Lines may end in CRLF or LF, attributes may come in
/// any order, and lines of unknown types or unknown attributes are skipped;
/// malformed rtpmap or ptime attributes are skipped too, since a codec
/// without a usable rtpmap simply cannot be chosen. What cannot be skipped
/// (no v=0, lines that are not `x=value`, broken m= or c= lines) is an error.
pub fn parse(text: &str) -> Result<MediaDescription, SdpError> {
    if text.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge { bytes: text.len() });
    }
    let mut session = LevelAttributes::default();
    let mut sections: Vec<MediaSection> = Vec::new();
    let mut seen_version = false;
    for (index, raw_line) in text.split('\n').enumerate() {
        if index >= MAX_SDP_LINES {
            return Err(SdpError::TooManyLines);
        }
        let line_number = index + 1;
        let line = raw_line.trim();
        if line.is_empty() {
            continue;
        }
        let (kind, value) = split_line(line).ok_or(SdpError::MalformedLine { line_number })?;
        if !seen_version {
            if kind == b'v' && value == "0" {
                seen_version = true;
                continue;
            }
            return Err(SdpError::NotSdp);
        }
        match kind {
            b'm' => sections.push(parse_media_line(value, line_number)?),
            b'c' => {
                let address = parse_connection(value).ok_or(SdpError::InvalidConnection { line_number })?;
                match sections.last_mut() {
                    Some(section) => section.attributes.connection = Some(address),
                    None => session.connection = Some(address),
                }
            }
            b'a' => match sections.last_mut() {
                // `get`: the line is any text, and byte 7 may be inside a character.
                Some(section)
                    if value.len() > 7
                        && value
                            .get(..7)
                            .is_some_and(|name| name.eq_ignore_ascii_case("crypto:")) =>
                {
                    if section.crypto.is_none() {
                        match parse_crypto(&value[7..]) {
                            Ok(crypto) => section.crypto = Some(crypto),
                            Err(reason) => tracing::debug!(line_number, reason, "a=crypto line refused"),
                        }
                    }
                }
                Some(section) => apply_attribute(value, &mut section.attributes, Some(&mut section.rtpmaps)),
                None => apply_attribute(value, &mut session, None),
            },
            _ => {}
        }
    }
    if !seen_version {
        return Err(SdpError::NotSdp);
    }
    describe_audio(&session, &sections)
}

/// Picks the audio stream among the parsed sections and describes it.
fn describe_audio(
    session: &LevelAttributes,
    sections: &[MediaSection],
) -> Result<MediaDescription, SdpError> {
    let is_active_audio =
        |section: &&MediaSection| section.line.media.eq_ignore_ascii_case("audio") && section.line.port != 0;
    let first_active_audio = sections.iter().find(is_active_audio).ok_or(SdpError::NoAudio)?;
    // The first stream pbxd can take: plain RTP, or SRTP with a key.
    let usable = |section: &MediaSection| {
        is_plain_rtp(&section.line.protocol)
            || (is_sdes_srtp(&section.line.protocol) && section.crypto.is_some())
    };
    let (audio_line_index, audio) = sections
        .iter()
        .enumerate()
        .filter(|(_, section)| is_active_audio(section))
        .find(|(_, section)| usable(section))
        .ok_or_else(|| {
            if sections
                .iter()
                .filter(is_active_audio)
                .any(|section| is_sdes_srtp(&section.line.protocol))
            {
                SdpError::NoUsableCrypto
            } else {
                SdpError::UnsupportedTransport {
                    protocol: first_active_audio.line.protocol.clone(),
                }
            }
        })?;

    let address = audio
        .attributes
        .connection
        .or(session.connection)
        .ok_or(SdpError::MissingConnection)?;
    let stated_direction = audio
        .attributes
        .direction
        .or(session.direction)
        .unwrap_or_default();
    let direction = if address.is_unspecified() {
        stated_direction.without_receiving()
    } else {
        stated_direction
    };

    let mut codecs = Vec::new();
    let mut telephone_event = None;
    for format in &audio.line.formats {
        // parse_media_line has checked that RTP formats are payload types.
        let Ok(payload_type) = format.parse::<u8>() else {
            continue;
        };
        let mapped = audio
            .rtpmaps
            .iter()
            .find(|(mapped_type, _, _)| *mapped_type == payload_type)
            .map(|(_, name, rate)| (name.clone(), *rate))
            .or_else(|| static_payload_type(payload_type).map(|(name, rate)| (name.to_owned(), rate)));
        let Some((name, rate)) = mapped else { continue };
        if name.eq_ignore_ascii_case("telephone-event") {
            if rate == 8000 && telephone_event.is_none() {
                telephone_event = Some(payload_type);
            }
        } else {
            codecs.push(AudioCodec {
                payload_type,
                name,
                rate,
            });
        }
    }

    Ok(MediaDescription {
        address,
        port: audio.line.port,
        codecs,
        telephone_event,
        direction,
        ptime: audio.attributes.ptime.or(session.ptime),
        media_lines: sections.iter().map(|section| section.line.clone()).collect(),
        audio_line_index,
        secure: is_sdes_srtp(&audio.line.protocol),
        crypto: audio.crypto.clone(),
    })
}

/// Splits `x=value` into its type letter and value.
fn split_line(line: &str) -> Option<(u8, &str)> {
    let bytes = line.as_bytes();
    let kind = *bytes.first()?;
    if !kind.is_ascii_alphabetic() || bytes.get(1) != Some(&b'=') {
        return None;
    }
    // Both bytes are ASCII, so index 2 is a character boundary.
    Some((kind, line.get(2..)?.trim()))
}

/// Whether an m= line's protocol is plain RTP, which is all pbxd sends.
/// RTP/AVPF is accepted too: it is RTP/AVP plus optional feedback, which
/// RFC 4585 lets an AVP endpoint ignore.
fn is_plain_rtp(protocol: &str) -> bool {
    protocol.eq_ignore_ascii_case("RTP/AVP") || protocol.eq_ignore_ascii_case("RTP/AVPF")
}

/// Whether an m= line's protocol is SRTP keyed in the SDP (SDES):
/// `RTP/SAVP`, or `RTP/SAVPF` (feedback ignored as for AVPF). DTLS-SRTP
/// (`UDP/TLS/RTP/SAVP`) is not.
fn is_sdes_srtp(protocol: &str) -> bool {
    protocol.eq_ignore_ascii_case("RTP/SAVP") || protocol.eq_ignore_ascii_case("RTP/SAVPF")
}

/// Parses `<media> <port>[/<count>] <proto> <fmt> ...`.
fn parse_media_line(value: &str, line_number: usize) -> Result<MediaSection, SdpError> {
    let invalid = SdpError::InvalidMediaLine { line_number };
    let mut fields = value.split_ascii_whitespace();
    let (Some(media), Some(port_field), Some(protocol)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(invalid);
    };
    let port_text = port_field
        .split_once('/')
        .map_or(port_field, |(port, _count)| port);
    let port: u16 = port_text.parse().map_err(|_| invalid.clone())?;
    let formats: Vec<String> = fields.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err(invalid);
    }
    let is_rtp = protocol.to_ascii_uppercase().starts_with("RTP/");
    if is_rtp
        && !formats
            .iter()
            .all(|format| format.parse::<u8>().is_ok_and(|payload| payload <= 127))
    {
        return Err(invalid);
    }
    Ok(MediaSection {
        line: MediaLine {
            media: media.to_owned(),
            port,
            protocol: protocol.to_owned(),
            formats,
        },
        attributes: LevelAttributes::default(),
        rtpmaps: Vec::new(),
        crypto: None,
    })
}

/// Parses `IN IP4 <address>[/ttl[/count]]` or `IN IP6 <address>`.
fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut fields = value.split_ascii_whitespace();
    let network_type = fields.next()?;
    let address_type = fields.next()?;
    let address_field = fields.next()?;
    if !network_type.eq_ignore_ascii_case("IN") {
        return None;
    }
    // Multicast addresses may carry /ttl and /count; pbxd only reads the address.
    let address_text = address_field
        .split_once('/')
        .map_or(address_field, |(address, _)| address);
    let address: IpAddr = address_text.parse().ok()?;
    let family_matches = match address {
        IpAddr::V4(_) => address_type.eq_ignore_ascii_case("IP4"),
        IpAddr::V6(_) => address_type.eq_ignore_ascii_case("IP6"),
    };
    family_matches.then_some(address)
}

/// Applies one `a=` line to the level it belongs to. `rtpmaps` is `None` at
/// session level, where rtpmap has no meaning.
fn apply_attribute(value: &str, level: &mut LevelAttributes, rtpmaps: Option<&mut Vec<(u8, String, u32)>>) {
    let (name, argument) = match value.split_once(':') {
        Some((name, argument)) => (name.trim(), Some(argument.trim())),
        None => (value.trim(), None),
    };
    if let Some(direction) = Direction::from_attribute(name).filter(|_| argument.is_none()) {
        level.direction = Some(direction);
    } else if name.eq_ignore_ascii_case("ptime") {
        level.ptime = argument.and_then(parse_ptime);
    } else if name.eq_ignore_ascii_case("rtpmap") {
        if let (Some(rtpmaps), Some(entry)) = (rtpmaps, argument.and_then(parse_rtpmap)) {
            rtpmaps.push(entry);
        }
    }
}

/// Parses a ptime value; some phones write "20.0", so a fraction is dropped.
fn parse_ptime(argument: &str) -> Option<u32> {
    let whole = argument.split_once('.').map_or(argument, |(whole, _)| whole);
    whole.parse::<u32>().ok().filter(|ptime| *ptime > 0)
}

/// Parses `<payload type> <encoding name>/<clock rate>[/<parameters>]`.
fn parse_rtpmap(argument: &str) -> Option<(u8, String, u32)> {
    let (payload_text, encoding) = argument.split_once(char::is_whitespace)?;
    let payload_type: u8 = payload_text.parse().ok().filter(|payload| *payload <= 127)?;
    let mut parts = encoding.trim().split('/');
    let name = parts.next().filter(|name| !name.is_empty())?;
    let rate: u32 = parts.next()?.parse().ok()?;
    Some((payload_type, name.to_owned(), rate))
}

/// The `IN IP4 <address>` part shared by o= and c= lines.
fn address_field(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => format!("IN IP4 {v4}"),
        IpAddr::V6(v6) => format!("IN IP6 {v6}"),
    }
}

/// Writes v=, o=, s=, c= and t=, the lines every description of pbxd's starts with.
fn write_session_header(sdp: &mut String, local: IpAddr, session_id: u64, version: u64) {
    let address = address_field(local);
    let _ = write!(
        sdp,
        "v=0\r\no={SESSION_NAME} {session_id} {version} {address}\r\ns={SESSION_NAME}\r\nc={address}\r\nt=0 0\r\n"
    );
}

/// Writes pbxd's audio m= line and its attributes for one codec list.
fn write_audio_section(
    sdp: &mut String,
    port: u16,
    protocol: &str,
    codecs: &[AudioCodec],
    telephone_event: Option<u8>,
    direction: Direction,
    crypto: Option<&Crypto>,
) {
    let _ = write!(sdp, "m=audio {port} {protocol}");
    for codec in codecs {
        let _ = write!(sdp, " {}", codec.payload_type);
    }
    if let Some(payload_type) = telephone_event {
        let _ = write!(sdp, " {payload_type}");
    }
    sdp.push_str("\r\n");
    for codec in codecs {
        let _ = write!(
            sdp,
            "a=rtpmap:{} {}/{}\r\n",
            codec.payload_type, codec.name, codec.rate
        );
    }
    if let Some(payload_type) = telephone_event {
        // pbxd sends and understands the sixteen DTMF events (RFC 4733 §3.2).
        let _ = write!(
            sdp,
            "a=rtpmap:{payload_type} telephone-event/8000\r\na=fmtp:{payload_type} 0-15\r\n"
        );
    }
    let _ = write!(
        sdp,
        "a=ptime:{PACKET_TIME_MILLISECONDS}\r\na={}\r\n",
        direction.attribute()
    );
    if let Some(crypto) = crypto {
        let _ = write!(sdp, "a={}\r\n", crypto.attribute());
    }
}

/// Builds pbxd's offer: PCMU (0), PCMA (8), telephone-event/8000 (101,
/// events 0-15), a=ptime:20 and the given direction, with the given o=
/// session id and version (RFC 3264 §8: bump the version for each new offer
/// in a session). Lines end in CRLF.
pub fn offer(local: IpAddr, port: u16, session_id: u64, version: u64, direction: Direction) -> String {
    secure_offer(local, port, session_id, version, direction, None)
}

/// [`offer`], over SRTP (`RTP/SAVP` with `a=crypto:1` and `key`, pbxd's
/// sending key) when a key is given.
pub fn secure_offer(
    local: IpAddr,
    port: u16,
    session_id: u64,
    version: u64,
    direction: Direction,
    key: Option<&MasterKey>,
) -> String {
    let crypto = key.map(|key| Crypto {
        tag: 1,
        key: key.clone(),
    });
    let mut sdp = String::with_capacity(400);
    write_session_header(&mut sdp, local, session_id, version);
    write_audio_section(
        &mut sdp,
        port,
        if crypto.is_some() { "RTP/SAVP" } else { "RTP/AVP" },
        &[AudioCodec::pcmu(), AudioCodec::pcma()],
        Some(OFFERED_TELEPHONE_EVENT_PAYLOAD_TYPE),
        direction,
        crypto.as_ref(),
    );
    sdp
}

/// Answers a peer's offer (RFC 3264 §6).
///
/// The codec is the first of the offer's codecs that is PCMU or PCMA: the
/// offerer's order wins. telephone-event is answered with the offer's payload
/// type when offered. The direction is the mirror of the offer's (sendonly is
/// answered recvonly, inactive inactive...). Every other m= line of the offer
/// is answered with port 0, so the answer has as many m= lines as the offer.
/// `Err(SdpError::NoCommonCodec)` when neither PCMU nor PCMA is offered: the
/// caller answers 488.
pub fn answer(
    offer: &MediaDescription,
    local: IpAddr,
    port: u16,
    session_id: u64,
    version: u64,
) -> Result<(String, Negotiated), SdpError> {
    secure_answer(offer, local, port, session_id, version, None)
}

/// [`answer`], with pbxd's sending key for an offer that carries one
/// (`a=crypto`): the answer repeats the offer's tag with `key`, and the
/// media is encrypted both ways. Without a key, an SRTP offer is
/// `Err(SdpError::EncryptionPolicy)` (488) and a plain offer's crypto
/// lines are ignored.
pub fn secure_answer(
    offer: &MediaDescription,
    local: IpAddr,
    port: u16,
    session_id: u64,
    version: u64,
    key: Option<&MasterKey>,
) -> Result<(String, Negotiated), SdpError> {
    let crypto = match (&offer.crypto, key) {
        (Some(theirs), Some(ours)) => Some((
            Crypto {
                tag: theirs.tag,
                key: ours.clone(),
            },
            SrtpKeys {
                send: ours.clone(),
                receive: theirs.key.clone(),
            },
        )),
        _ if offer.secure => return Err(SdpError::EncryptionPolicy("SRTP is turned off")),
        _ => None,
    };
    let codec = offer
        .codecs
        .iter()
        .find_map(AudioCodec::as_g711)
        .ok_or(SdpError::NoCommonCodec)?;
    let mut sdp = String::with_capacity(320);
    write_session_header(&mut sdp, local, session_id, version);
    let write_audio = |sdp: &mut String, protocol: &str| {
        write_audio_section(
            sdp,
            port,
            protocol,
            std::slice::from_ref(&codec),
            offer.telephone_event,
            offer.direction.answered(),
            crypto.as_ref().map(|(crypto, _)| crypto),
        );
    };
    if offer.audio_line_index < offer.media_lines.len() {
        for (index, line) in offer.media_lines.iter().enumerate() {
            if index == offer.audio_line_index {
                write_audio(&mut sdp, &line.protocol);
            } else {
                // RFC 3264 §6: a rejected stream keeps its media and protocol,
                // gets port 0, and still lists at least one format.
                let format = line.formats.first().map_or("0", String::as_str);
                let _ = write!(sdp, "m={} 0 {} {format}\r\n", line.media, line.protocol);
            }
        }
    } else {
        // A description built in code, with no layout to mirror.
        write_audio(&mut sdp, "RTP/AVP");
    }
    let negotiated = Negotiated {
        remote: SocketAddr::new(offer.address, offer.port),
        codec,
        telephone_event: offer.telephone_event,
        direction: offer.direction,
        srtp: crypto.map(|(_, keys)| keys),
    };
    Ok((sdp, negotiated))
}

/// Reads the answer to pbxd's own offer: the first PCMU or PCMA codec of the
/// answer, its telephone-event, address and direction.
/// `Err(SdpError::NoCommonCodec)` when the answer has neither codec.
pub fn negotiated_from_answer(answer: &MediaDescription) -> Result<Negotiated, SdpError> {
    negotiated_from_secure_answer(answer, None)
}

/// [`negotiated_from_answer`] for an offer that carried pbxd's key `key`
/// (tag 1): the answer must carry the peer's key under that tag, and the
/// media is encrypted both ways.
pub fn negotiated_from_secure_answer(
    answer: &MediaDescription,
    key: Option<&MasterKey>,
) -> Result<Negotiated, SdpError> {
    let codec = answer
        .codecs
        .iter()
        .find_map(AudioCodec::as_g711)
        .ok_or(SdpError::NoCommonCodec)?;
    let srtp = match (key, &answer.crypto) {
        (Some(ours), Some(theirs)) if theirs.tag == 1 => Some(SrtpKeys {
            send: ours.clone(),
            receive: theirs.key.clone(),
        }),
        (Some(_), _) => {
            return Err(SdpError::EncryptionPolicy(
                "the answer has no key for pbxd's SRTP offer",
            ))
        }
        (None, _) if answer.secure => {
            return Err(SdpError::EncryptionPolicy("an SRTP answer to a plain offer"))
        }
        (None, _) => None,
    };
    Ok(Negotiated {
        remote: SocketAddr::new(answer.address, answer.port),
        codec,
        telephone_event: answer.telephone_event,
        direction: answer.direction,
        srtp,
    })
}
