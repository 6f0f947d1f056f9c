//! SDP offer/answer (RFC 3264, RFC 4566) on descriptions shaped like those
//! real phones and gateways send.

// Helpers outside #[test] functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use pbx_sip::sdp::{self, AudioCodec, Direction, MediaDescription, SdpError};
use proptest::prelude::*;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// Joins lines with CRLF, as SIP bodies are written.
fn crlf(lines: &[&str]) -> String {
    lines.iter().map(|line| format!("{line}\r\n")).collect()
}

fn codec(payload_type: u8, name: &str, rate: u32) -> AudioCodec {
    AudioCodec {
        payload_type,
        name: name.to_owned(),
        rate,
    }
}

/// A Linphone-style offer: opus first, two telephone-events, RTCP extras.
fn linphone_offer() -> String {
    crlf(&[
        "v=0",
        "o=ivanov 3245 1287 IN IP4 192.168.1.20",
        "s=Talk",
        "c=IN IP4 192.168.1.20",
        "t=0 0",
        "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics",
        "m=audio 7078 RTP/AVP 96 0 8 101 97",
        "a=rtpmap:96 opus/48000/2",
        "a=fmtp:96 useinbandfec=1",
        "a=rtpmap:101 telephone-event/48000",
        "a=rtpmap:97 telephone-event/8000",
        "a=rtcp-fb:* trr-int 1000",
        "a=rtcp-fb:* ccm tmmbr",
    ])
}

/// A Baresip-style offer, LF line endings, direction and extras after rtpmaps.
fn baresip_offer() -> String {
    [
        "v=0",
        "o=- 1924541342 3806215473 IN IP4 10.0.0.5",
        "s=-",
        "c=IN IP4 10.0.0.5",
        "t=0 0",
        "m=audio 10062 RTP/AVP 111 0 8 101",
        "b=AS:64",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 stereo=1;sprop-stereo=1",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=sendrecv",
        "a=label:1",
        "a=ssrc:1597402410 cname:d2a4f0e8-cf6a-4b1b-9e43-6c1a2fbc1c3e",
        "a=rtcp-rsize",
        "",
    ]
    .join("\n")
}

/// A Cisco-gateway-style offer: session-level c=, PCMA listed first, G.729,
/// comfort noise, ptime.
fn cisco_offer() -> String {
    crlf(&[
        "v=0",
        "o=CiscoSystemsSIP-GW-UserAgent 4536 1733 IN IP4 203.0.113.10",
        "s=SIP Call",
        "c=IN IP4 203.0.113.10",
        "t=0 0",
        "m=audio 17314 RTP/AVP 8 0 18 101 19",
        "c=IN IP4 203.0.113.11",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:18 G729/8000",
        "a=fmtp:18 annexb=no",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=rtpmap:19 CN/8000",
        "a=ptime:20",
    ])
}

/// A desk phone putting pbxd on hold the RFC 3264 way.
fn sendonly_offer() -> String {
    crlf(&[
        "v=0",
        "o=- 20033 20035 IN IP4 172.16.4.33",
        "s=SDP data",
        "c=IN IP4 172.16.4.33",
        "t=0 0",
        "m=audio 11800 RTP/AVP 0 8 18 9 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:18 G729/8000",
        "a=fmtp:18 annexb=no",
        "a=rtpmap:9 G722/8000",
        "a=fmtp:101 0-15",
        "a=rtpmap:101 telephone-event/8000",
        "a=ptime:20",
        "a=sendonly",
    ])
}

fn ipv6_offer() -> String {
    crlf(&[
        "v=0",
        "o=- 20518 0 IN IP6 2001:db8::10",
        "s=-",
        "c=IN IP6 2001:db8::10",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0 101",
        "a=rtpmap:101 telephone-event/8000",
    ])
}

/// An offer of `formats` with the given extra lines after the m= line.
fn simple_offer(m_line: &str, extra: &[&str]) -> String {
    let mut lines = vec![
        "v=0",
        "o=- 1 1 IN IP4 198.51.100.7",
        "s=-",
        "c=IN IP4 198.51.100.7",
        "t=0 0",
        m_line,
    ];
    lines.extend_from_slice(extra);
    crlf(&lines)
}

fn check_parse_error(text: &str, expected: SdpError) {
    assert_eq!(sdp::parse(text), Err(expected), "for {text:?}");
}

#[test]
fn linphone_offer_names_codecs_and_takes_the_8000_hz_telephone_event() {
    let offer = sdp::parse(&linphone_offer()).unwrap();
    assert_eq!(offer.address, IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)));
    assert_eq!(offer.port, 7078);
    assert_eq!(
        offer.codecs,
        vec![
            codec(96, "opus", 48000),
            codec(0, "PCMU", 8000),
            codec(8, "PCMA", 8000)
        ]
    );
    assert_eq!(offer.telephone_event, Some(97));
    assert_eq!(offer.direction, Direction::SendRecv);
    assert_eq!(offer.ptime, None);

    let (_, negotiated) = sdp::answer(&offer, LOCAL, 30000, 7, 1).unwrap();
    assert_eq!(negotiated.codec, AudioCodec::pcmu());
    assert_eq!(negotiated.telephone_event, Some(97));
    assert_eq!(
        negotiated.remote,
        "192.168.1.20:7078".parse::<SocketAddr>().unwrap()
    );
    assert!(!negotiated.on_hold());
}

#[test]
fn baresip_offer_with_lf_endings() {
    let offer = sdp::parse(&baresip_offer()).unwrap();
    assert_eq!(offer.port, 10062);
    assert_eq!(
        offer
            .codecs
            .iter()
            .map(|codec| codec.payload_type)
            .collect::<Vec<_>>(),
        vec![111, 0, 8]
    );
    assert_eq!(offer.telephone_event, Some(101));
    assert_eq!(offer.direction, Direction::SendRecv);
}

#[test]
fn cisco_offer_media_level_connection_wins_and_offerer_order_picks_pcma() {
    let offer = sdp::parse(&cisco_offer()).unwrap();
    assert_eq!(offer.address, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 11)));
    assert_eq!(offer.ptime, Some(20));
    assert_eq!(
        offer.codecs,
        vec![
            codec(8, "PCMA", 8000),
            codec(0, "PCMU", 8000),
            codec(18, "G729", 8000),
            codec(19, "CN", 8000)
        ]
    );
    let (_, negotiated) = sdp::answer(&offer, LOCAL, 30000, 7, 1).unwrap();
    assert_eq!(negotiated.codec, AudioCodec::pcma());
    assert_eq!(negotiated.telephone_event, Some(101));
}

#[test]
fn session_level_connection_and_static_payload_names_without_rtpmap() {
    let text = crlf(&[
        "v=0",
        "o=CiscoSystemsCCM-SIP 2000 1 IN IP4 198.51.100.20",
        "s=SIP Call",
        "c=IN IP4 198.51.100.20",
        "b=TIAS:64000",
        "t=0 0",
        "m=audio 16384 RTP/AVP 18 0 8 9 3 13 120",
    ]);
    let offer = sdp::parse(&text).unwrap();
    assert_eq!(offer.address, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20)));
    let names: Vec<_> = offer.codecs.iter().map(|codec| codec.name.as_str()).collect();
    // 120 is dynamic with no rtpmap: nobody can use it, so it is left out.
    assert_eq!(names, vec!["G729", "PCMU", "PCMA", "G722", "GSM", "CN"]);
    assert_eq!(offer.telephone_event, None);
    let (answer, negotiated) = sdp::answer(&offer, LOCAL, 30000, 7, 1).unwrap();
    assert_eq!(negotiated.codec, AudioCodec::pcmu());
    assert_eq!(negotiated.telephone_event, None);
    assert!(!answer.contains("telephone-event"), "{answer}");
}

#[test]
fn sendonly_offer_is_answered_recvonly_and_means_hold() {
    let offer = sdp::parse(&sendonly_offer()).unwrap();
    assert_eq!(offer.direction, Direction::SendOnly);
    let (answer, negotiated) = sdp::answer(&offer, LOCAL, 30000, 7, 2).unwrap();
    assert!(answer.contains("a=recvonly\r\n"), "{answer}");
    assert_eq!(negotiated.direction, Direction::SendOnly);
    assert!(negotiated.on_hold());
}

#[test]
fn old_style_hold_address_removes_the_peers_receiving() {
    for (attribute, expected) in [
        (None, Direction::SendOnly),
        (Some("a=sendrecv"), Direction::SendOnly),
        (Some("a=sendonly"), Direction::SendOnly),
        (Some("a=recvonly"), Direction::Inactive),
        (Some("a=inactive"), Direction::Inactive),
    ] {
        let mut lines = vec![
            "v=0",
            "o=- 1 2 IN IP4 0.0.0.0",
            "s=-",
            "c=IN IP4 0.0.0.0",
            "t=0 0",
        ];
        lines.push("m=audio 5004 RTP/AVP 0");
        lines.extend(attribute);
        let offer = sdp::parse(&crlf(&lines)).unwrap();
        assert_eq!(offer.address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(offer.direction, expected, "{attribute:?}");
        let (answer, negotiated) = sdp::answer(&offer, LOCAL, 30000, 7, 2).unwrap();
        assert!(negotiated.on_hold());
        assert!(
            answer.contains(&format!("a={}\r\n", expected.answered().attribute())),
            "{answer}"
        );
    }
}

#[test]
fn answer_direction_mirrors_the_offer() {
    for (offered, answered, hold) in [
        ("sendrecv", "sendrecv", false),
        ("sendonly", "recvonly", true),
        ("recvonly", "sendonly", false),
        ("inactive", "inactive", true),
    ] {
        let text = simple_offer("m=audio 5004 RTP/AVP 0", &[&format!("a={offered}")]);
        let (answer, negotiated) = sdp::answer(&sdp::parse(&text).unwrap(), LOCAL, 30000, 7, 1).unwrap();
        assert!(
            answer.contains(&format!("a={answered}\r\n")),
            "{offered}: {answer}"
        );
        assert_eq!(negotiated.on_hold(), hold, "{offered}");
    }
}

#[test]
fn session_level_direction_applies_unless_the_media_says_otherwise() {
    let session_only = crlf(&[
        "v=0",
        "o=- 1 1 IN IP4 10.1.1.1",
        "s=-",
        "c=IN IP4 10.1.1.1",
        "t=0 0",
        "a=inactive",
    ]);
    let offer = sdp::parse(&(session_only.clone() + "m=audio 5004 RTP/AVP 0\r\n")).unwrap();
    assert_eq!(offer.direction, Direction::Inactive);
    let offer = sdp::parse(&(session_only + "m=audio 5004 RTP/AVP 0\r\na=sendrecv\r\n")).unwrap();
    assert_eq!(offer.direction, Direction::SendRecv);
}

#[test]
fn ipv6_offer_is_answered_over_ipv6() {
    let offer = sdp::parse(&ipv6_offer()).unwrap();
    let address = IpAddr::V6("2001:db8::10".parse::<Ipv6Addr>().unwrap());
    assert_eq!(offer.address, address);
    let local = IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap());
    let (answer, negotiated) = sdp::answer(&offer, local, 30000, 7, 1).unwrap();
    assert_eq!(negotiated.remote, SocketAddr::new(address, 4000));
    assert!(answer.contains("c=IN IP6 2001:db8::1\r\n"), "{answer}");
    assert!(answer.contains("o=pbxd 7 1 IN IP6 2001:db8::1\r\n"), "{answer}");
}

#[test]
fn answer_text_for_a_typical_offer() {
    let offer = sdp::parse(&baresip_offer()).unwrap();
    let (answer, _) = sdp::answer(&offer, LOCAL, 30000, 4242, 1).unwrap();
    let expected = crlf(&[
        "v=0",
        "o=pbxd 4242 1 IN IP4 192.0.2.1",
        "s=pbxd",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 30000 RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    ]);
    assert_eq!(answer, expected);
}

#[test]
fn offer_text_and_its_round_trip() {
    let offer = sdp::offer(LOCAL, 40000, 99, 3, Direction::SendRecv);
    let expected = crlf(&[
        "v=0",
        "o=pbxd 99 3 IN IP4 192.0.2.1",
        "s=pbxd",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 40000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    ]);
    assert_eq!(offer, expected);

    let parsed = sdp::parse(&offer).unwrap();
    assert_eq!(parsed.codecs, vec![AudioCodec::pcmu(), AudioCodec::pcma()]);
    assert_eq!((parsed.telephone_event, parsed.ptime), (Some(101), Some(20)));

    // pbxd talking to itself: the answer is read back into the same outcome.
    let remote = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
    let (answer, answerer_view) = sdp::answer(&parsed, remote, 50000, 5, 1).unwrap();
    let offerer_view = sdp::negotiated_from_answer(&sdp::parse(&answer).unwrap()).unwrap();
    assert_eq!(offerer_view.remote, SocketAddr::new(remote, 50000));
    assert_eq!(offerer_view.codec, answerer_view.codec);
    assert_eq!(offerer_view.telephone_event, Some(101));

    let hold = sdp::parse(&sdp::offer(LOCAL, 40000, 99, 4, Direction::SendOnly)).unwrap();
    assert_eq!(hold.direction, Direction::SendOnly);
}

#[test]
fn only_codecs_pbxd_lacks_is_not_acceptable() {
    for m_line in ["m=audio 5004 RTP/AVP 96 18", "m=audio 5004 RTP/AVP 96 101"] {
        let text = simple_offer(
            m_line,
            &["a=rtpmap:96 opus/48000/2", "a=rtpmap:101 telephone-event/8000"],
        );
        let offer = sdp::parse(&text).unwrap();
        let error = sdp::answer(&offer, LOCAL, 30000, 7, 1).unwrap_err();
        assert_eq!(error, SdpError::NoCommonCodec);
        assert!(error.is_not_acceptable());
    }
    // PCMU at the wrong clock rate is not PCMU pbxd can send.
    let text = simple_offer("m=audio 5004 RTP/AVP 97", &["a=rtpmap:97 PCMU/16000"]);
    assert_eq!(
        sdp::answer(&sdp::parse(&text).unwrap(), LOCAL, 1, 1, 1),
        Err(SdpError::NoCommonCodec)
    );
}

#[test]
fn g711_under_a_dynamic_payload_type_is_answered_with_that_type() {
    let text = simple_offer("m=audio 5004 RTP/AVP 112", &["a=rtpmap:112 pcma/8000"]);
    let (answer, negotiated) = sdp::answer(&sdp::parse(&text).unwrap(), LOCAL, 30000, 7, 1).unwrap();
    assert_eq!(negotiated.codec, codec(112, "PCMA", 8000));
    assert!(
        answer.contains("m=audio 30000 RTP/AVP 112\r\na=rtpmap:112 PCMA/8000\r\n"),
        "{answer}"
    );
}

#[test]
fn answer_keeps_the_offers_m_lines_and_rejects_the_others() {
    let text = crlf(&[
        "v=0",
        "o=ivanov 1 1 IN IP4 192.168.1.20",
        "s=Talk",
        "c=IN IP4 192.168.1.20",
        "t=0 0",
        "m=audio 0 RTP/AVP 0",
        "m=video 9078 RTP/AVPF 96 97",
        "a=rtpmap:96 VP8/90000",
        "a=sendrecv",
        "m=audio 7078 RTP/AVPF 8 0",
        "a=recvonly",
    ]);
    let offer = sdp::parse(&text).unwrap();
    assert_eq!(offer.audio_line_index, 2);
    assert_eq!(offer.direction, Direction::RecvOnly);
    let (answer, _) = sdp::answer(&offer, LOCAL, 30000, 7, 1).unwrap();
    let m_lines: Vec<_> = answer.lines().filter(|line| line.starts_with("m=")).collect();
    assert_eq!(
        m_lines,
        vec![
            "m=audio 0 RTP/AVP 0",
            "m=video 0 RTP/AVPF 96",
            "m=audio 30000 RTP/AVPF 8"
        ]
    );
    assert!(answer.contains("a=sendonly\r\n"), "{answer}");
}

#[test]
fn dtls_srtp_audio_is_an_unsupported_transport() {
    let text = simple_offer(
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
        &["a=rtpmap:111 opus/48000/2"],
    );
    let error = sdp::parse(&text).unwrap_err();
    assert_eq!(
        error,
        SdpError::UnsupportedTransport {
            protocol: "UDP/TLS/RTP/SAVPF".to_owned()
        }
    );
    assert!(error.is_not_acceptable());

    // An SRTP stream (SDES) offered alongside a plain one: the first, which
    // pbxd can take now.
    let text = crlf(&[
        "v=0",
        "o=- 1 1 IN IP4 198.51.100.7",
        "s=-",
        "c=IN IP4 198.51.100.7",
        "t=0 0",
        "m=audio 5006 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        "m=audio 5004 RTP/AVP 0",
    ]);
    let offer = sdp::parse(&text).unwrap();
    assert_eq!(
        (offer.port, offer.audio_line_index, offer.secure),
        (5006, 0, true)
    );
}

// RFC 4568 §9.1: `a=crypto:<tag> <suite> inline:<key||salt>[|lifetime]`.
const KEY_30: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

#[test]
fn sdes_offers_are_answered_with_their_tag_and_our_own_key() {
    let text = simple_offer(
        "m=audio 5006 RTP/SAVP 0 101",
        &[
            "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
            &format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{KEY_30}|2^20"),
            "a=rtpmap:101 telephone-event/8000",
        ],
    );
    let offer = sdp::parse(&text).unwrap();
    assert!(offer.secure);
    let theirs = offer.crypto.clone().unwrap();
    assert_eq!(theirs.tag, 7, "the 32-bit tag suite is skipped");
    let ours = pbx_media::srtp::MasterKey::random().unwrap();
    let (answer, negotiated) = sdp::secure_answer(&offer, LOCAL, 30000, 7, 1, Some(&ours)).unwrap();
    assert!(answer.contains("m=audio 30000 RTP/SAVP 0 101\r\n"), "{answer}");
    assert!(
        answer.contains("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{answer}"
    );
    let keys = negotiated.srtp.unwrap();
    assert_eq!((&keys.send, &keys.receive), (&ours, &theirs.key));
    // What the offerer reads back: its own key to receive with, ours to... mirror.
    let back = sdp::parse(&answer).unwrap();
    assert_eq!(back.crypto.unwrap().key, ours);
    // Without a key (sip.srtp = "off"), an SRTP offer is not acceptable.
    let refused = sdp::answer(&offer, LOCAL, 30000, 7, 1).unwrap_err();
    assert!(refused.is_not_acceptable(), "{refused}");
}

#[test]
fn malformed_or_unusable_crypto_lines_leave_srtp_not_acceptable() {
    for line in [
        "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:!!!not base64!!!",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz KDR=1",
        "a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80",
        "a=crypto:1",
        "a=crypto:",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 key:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|soon",
    ] {
        let text = simple_offer("m=audio 5006 RTP/SAVP 0", &[line]);
        let error = sdp::parse(&text).unwrap_err();
        assert!(error.is_not_acceptable(), "{line}: {error}");
        assert!(matches!(error, SdpError::NoUsableCrypto), "{line}: {error:?}");
    }
    // The same line on a plain stream is ignored: plain audio.
    let text = simple_offer("m=audio 5006 RTP/AVP 0", &["a=crypto:1 bogus"]);
    let offer = sdp::parse(&text).unwrap();
    assert_eq!((offer.secure, offer.crypto), (false, None));
}

#[test]
fn our_srtp_offer_and_its_answer() {
    let ours = pbx_media::srtp::MasterKey::random().unwrap();
    let offer = sdp::secure_offer(LOCAL, 40000, 99, 1, Direction::SendRecv, Some(&ours));
    assert!(offer.contains("m=audio 40000 RTP/SAVP 0 8 101\r\n"), "{offer}");
    assert!(
        offer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{offer}"
    );
    let parsed = sdp::parse(&offer).unwrap();
    let theirs = pbx_media::srtp::MasterKey::random().unwrap();
    let (answer, _) = sdp::secure_answer(&parsed, LOCAL, 50000, 5, 1, Some(&theirs)).unwrap();
    let negotiated = sdp::negotiated_from_secure_answer(&sdp::parse(&answer).unwrap(), Some(&ours)).unwrap();
    let keys = negotiated.srtp.unwrap();
    assert_eq!((keys.send, keys.receive), (ours.clone(), theirs));
    // A plain answer to an SRTP offer is not usable.
    let plain = simple_offer("m=audio 5006 RTP/AVP 0", &[]);
    let error = sdp::negotiated_from_secure_answer(&sdp::parse(&plain).unwrap(), Some(&ours)).unwrap_err();
    assert!(error.is_not_acceptable());
}

#[test]
fn reading_the_answer_to_our_offer() {
    let answer = simple_offer(
        "m=audio 6000 RTP/AVP 8 101",
        &["a=rtpmap:101 telephone-event/8000", "a=sendonly"],
    );
    let negotiated = sdp::negotiated_from_answer(&sdp::parse(&answer).unwrap()).unwrap();
    assert_eq!(negotiated.codec, AudioCodec::pcma());
    assert_eq!(negotiated.telephone_event, Some(101));
    assert_eq!(
        negotiated.remote,
        "198.51.100.7:6000".parse::<SocketAddr>().unwrap()
    );
    assert!(negotiated.on_hold());

    let unusable = simple_offer("m=audio 6000 RTP/AVP 18", &[]);
    assert_eq!(
        sdp::negotiated_from_answer(&sdp::parse(&unusable).unwrap()),
        Err(SdpError::NoCommonCodec)
    );
    // A rejected audio stream (port 0) has nothing to negotiate.
    check_parse_error(&simple_offer("m=audio 0 RTP/AVP 0", &[]), SdpError::NoAudio);
}

#[test]
fn a_description_built_in_code_can_be_answered() {
    let offer = MediaDescription {
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        port: 5004,
        codecs: vec![AudioCodec::pcma()],
        ..MediaDescription::default()
    };
    let (answer, negotiated) = sdp::answer(&offer, LOCAL, 30000, 1, 1).unwrap();
    assert!(answer.contains("m=audio 30000 RTP/AVP 8\r\n"), "{answer}");
    assert_eq!(negotiated.codec, AudioCodec::pcma());
}

#[test]
fn tolerated_oddities() {
    // Unknown line types, blank lines, trailing spaces, a ptime of "20.0",
    // a malformed rtpmap (skipped) and a port with a count.
    let text = "v=0\n\no=- 1 1 IN IP4 10.0.0.1\ns=-\nz=0 0\nc=IN IP4 10.0.0.1 \nt=0 0\n\
                m=audio 5004/2 RTP/AVP 0 8\na=rtpmap:8\na=ptime:20.0\ny=whatever\n\n";
    let offer = sdp::parse(text).unwrap();
    assert_eq!(offer.port, 5004);
    assert_eq!(offer.ptime, Some(20));
    assert_eq!(offer.codecs, vec![AudioCodec::pcmu(), AudioCodec::pcma()]);
    // A multicast address with a TTL.
    let offer = sdp::parse(&simple_offer(
        "m=audio 5004 RTP/AVP 0",
        &["c=IN IP4 224.2.1.1/127"],
    ))
    .unwrap();
    assert_eq!(offer.address, IpAddr::V4(Ipv4Addr::new(224, 2, 1, 1)));
}

#[test]
fn garbage_is_an_error() {
    check_parse_error("", SdpError::NotSdp);
    check_parse_error("hello world", SdpError::MalformedLine { line_number: 1 });
    check_parse_error("v=1\r\n", SdpError::NotSdp);
    check_parse_error("o=- 1 1 IN IP4 10.0.0.1\r\nv=0\r\n", SdpError::NotSdp);
    check_parse_error("v=0\r\n", SdpError::NoAudio);
    check_parse_error(
        "v=0\r\nm=audio\r\n",
        SdpError::InvalidMediaLine { line_number: 2 },
    );
    check_parse_error(
        "v=0\r\nm=audio 70000 RTP/AVP 0\r\n",
        SdpError::InvalidMediaLine { line_number: 2 },
    );
    check_parse_error(
        "v=0\r\nm=audio 5004 RTP/AVP\r\n",
        SdpError::InvalidMediaLine { line_number: 2 },
    );
    check_parse_error(
        "v=0\r\nm=audio 5004 RTP/AVP 0 x\r\n",
        SdpError::InvalidMediaLine { line_number: 2 },
    );
    check_parse_error(
        "v=0\r\nm=audio 5004 RTP/AVP 128\r\n",
        SdpError::InvalidMediaLine { line_number: 2 },
    );
    check_parse_error(
        "v=0\r\nc=IN IP4 pbx.example.com\r\n",
        SdpError::InvalidConnection { line_number: 2 },
    );
    check_parse_error(
        "v=0\r\nc=IN IP6 10.0.0.1\r\n",
        SdpError::InvalidConnection { line_number: 2 },
    );
    check_parse_error(
        "v=0\r\nc=IN IP4\r\n",
        SdpError::InvalidConnection { line_number: 2 },
    );
    check_parse_error("v=0\r\nm=audio 5004 RTP/AVP 0\r\n", SdpError::MissingConnection);
    check_parse_error(
        "v=0\r\nm=video 5004 RTP/AVP 96\r\nc=IN IP4 10.0.0.1\r\n",
        SdpError::NoAudio,
    );
    check_parse_error("v=0\r\n=x\r\n", SdpError::MalformedLine { line_number: 2 });
    check_parse_error("v=0\r\n\u{e9}=x\r\n", SdpError::MalformedLine { line_number: 2 });
    check_parse_error("\u{0}\u{1}\u{2}", SdpError::MalformedLine { line_number: 1 });
}

#[test]
fn size_and_line_limits() {
    let too_large = format!("v=0\r\na={}\r\n", "x".repeat(sdp::MAX_SDP_BYTES));
    assert!(matches!(sdp::parse(&too_large), Err(SdpError::TooLarge { .. })));
    let many_lines = format!("v=0\r\n{}", "a=x\r\n".repeat(sdp::MAX_SDP_LINES));
    assert_eq!(sdp::parse(&many_lines), Err(SdpError::TooManyLines));
    // Just under both limits is fine.
    let mut long_but_legal = simple_offer("m=audio 5004 RTP/AVP 0", &[]);
    long_but_legal.push_str(&"a=x\r\n".repeat(sdp::MAX_SDP_LINES - 10));
    assert!(sdp::parse(&long_but_legal).is_ok());
}

/// One attribute or other line inside a generated media section.
fn media_level_line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u32..130, prop::sample::select(vec!["PCMU", "pcma", "opus", "telephone-event", "G729"]),
            prop::sample::select(vec![8000u32, 16000, 48000]))
            .prop_map(|(payload_type, name, rate)| format!("a=rtpmap:{payload_type} {name}/{rate}")),
        2 => prop::sample::select(vec!["a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive", "a=ptime:30"])
            .prop_map(str::to_owned),
        1 => prop::sample::select(vec!["c=IN IP4 0.0.0.0", "c=IN IP4 10.9.8.7", "c=IN IP6 2001:db8::5"])
            .prop_map(str::to_owned),
        1 => "[a-z]=[ -~]{0,30}",
        1 => ".{0,40}",
    ]
}

/// A media section: an m= line from plausible parts, then a few lines.
fn media_section() -> impl Strategy<Value = Vec<String>> {
    (
        prop::sample::select(vec!["audio", "audio", "video"]),
        prop::sample::select(vec![0u32, 5004, 5004, 5004, 70000]),
        prop::sample::select(vec!["RTP/AVP", "RTP/AVPF", "RTP/SAVP"]),
        proptest::collection::vec(prop::sample::select(vec![0u32, 8, 18, 96, 101, 101, 120]), 1..5),
        proptest::collection::vec(media_level_line(), 0..5),
    )
        .prop_map(|(media, port, protocol, formats, lines)| {
            let formats: String = formats.iter().map(|format| format!(" {format}")).collect();
            let mut section = vec![format!("m={media} {port} {protocol}{formats}")];
            section.extend(lines);
            section
        })
}

/// A description that is often valid, so that answering is exercised too.
fn sdp_like_text() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(media_level_line(), 0..3),
        proptest::collection::vec(media_section(), 0..4),
        prop::sample::select(vec!["\r\n", "\n"]),
    )
        .prop_map(|(session_lines, sections, separator)| {
            let mut lines = vec!["v=0".to_owned(), "c=IN IP4 192.0.2.50".to_owned()];
            lines.extend(session_lines);
            lines.extend(sections.into_iter().flatten());
            lines.join(separator)
        })
}

proptest! {
    // Parsing is cheap; more cases reach the answering path more often.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn parse_never_panics_on_any_text(text in ".{0,600}") {
        let _ = sdp::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = sdp::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn whatever_parses_can_be_answered_and_the_answer_parses(text in sdp_like_text()) {
        if let Ok(offer) = sdp::parse(&text) {
            prop_assert!(offer.port != 0);
            if let Ok((answer, negotiated)) = sdp::answer(&offer, LOCAL, 30000, 1, 1) {
                let reread = sdp::parse(&answer);
                prop_assert!(reread.is_ok(), "{answer:?} from {text:?}: {reread:?}");
                let back = sdp::negotiated_from_answer(&reread.unwrap());
                prop_assert_eq!(back.map(|back| back.codec), Ok(negotiated.codec));
            }
        }
    }
}

/// What the fuzzers found (`fuzz/`, issue 15 item 1), kept in
/// `tests/data/fuzz/`: a description with `a=` and a character of several
/// bytes across its seventh byte panicked the `a=crypto` check (a string
/// sliced inside a character), alone (`sdp`) and in an INVITE
/// (`datagram`). Each is now read, or refused, without a panic.
#[test]
fn what_the_fuzzers_found_is_read_or_refused() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut seen = 0;
    for target in ["sdp", "datagram"] {
        for entry in std::fs::read_dir(folder.join(target)).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            if target == "datagram" {
                let _ = pbx_sip::server::datagram_outcome(&bytes);
            } else if let Ok(description) = sdp::parse(&String::from_utf8_lossy(&bytes)) {
                let _ = sdp::answer(&description, IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000, 1, 2);
            }
            seen += 1;
        }
    }
    assert!(seen >= 12, "{seen} inputs");
    // The smallest case, written out.
    let text = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtp\u{20ac}map:0 PCMU/8000\r\n";
    assert!(sdp::parse(text).is_ok());
}
