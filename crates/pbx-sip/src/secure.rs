//! Encryption: SIP over TLS (`sip.tls_listen`) and the SRTP policy
//! (`sip.srtp`).
//!
//! TLS connections are taken by pbxd's own acceptor (`SipNetwork`'s, with
//! TCP's per-source cap), each handed to a shard in turn, which shakes
//! hands (at most [`HANDSHAKE_TIMEOUT`]) and gives the connection to its
//! rsipstack endpoint with the gate in front of the parser, as over TCP.
//! A failed handshake closes that connection and nothing else. A phone
//! registered over TLS is called over its connection, and offered SRTP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pbx_media::srtp::MasterKey;
use tokio_util::sync::CancellationToken;

use crate::sdp::{MediaDescription, SdpError};
use crate::server::SipShard;

/// A handshake not done by then closes the connection: a client that
/// opens connections and says nothing must not hold them.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What `sip.srtp` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpPolicy {
    /// Never offered; an SRTP offer gets 488.
    Off,
    /// Taken when offered; offered to phones reached over TLS.
    Optional,
    /// Offered to every phone; plain audio gets 488.
    Mandatory,
}

impl SrtpPolicy {
    /// From the configuration's word (checked when it was loaded).
    pub fn from_config(word: &str) -> SrtpPolicy {
        match word {
            "off" => SrtpPolicy::Off,
            "mandatory" => SrtpPolicy::Mandatory,
            _ => SrtpPolicy::Optional,
        }
    }

    /// pbxd's key for its answer to `offer`: a fresh one when the offer
    /// carries a usable key and SRTP is not off. A plain offer where SRTP
    /// is mandatory is not acceptable (488).
    pub fn answer_key(self, offer: &MediaDescription) -> Result<Option<MasterKey>, SdpError> {
        match (self, &offer.crypto) {
            (SrtpPolicy::Off, _) => Ok(None),
            (_, Some(_)) => fresh_key().map(Some),
            (SrtpPolicy::Mandatory, None) => Err(SdpError::EncryptionPolicy("SRTP is mandatory")),
            (SrtpPolicy::Optional, None) => Ok(None),
        }
    }

    /// pbxd's key for an offer of its own to a phone reached `over_tls`
    /// (or not); `None`: a plain offer.
    pub fn offer_key(self, over_tls: bool) -> Result<Option<MasterKey>, SdpError> {
        match self {
            SrtpPolicy::Mandatory => fresh_key().map(Some),
            SrtpPolicy::Optional if over_tls => fresh_key().map(Some),
            _ => Ok(None),
        }
    }
}

/// A key from the system's generator; without one, no encrypted call.
fn fresh_key() -> Result<MasterKey, SdpError> {
    MasterKey::random().map_err(|error| {
        tracing::error!(%error, "no SRTP key");
        SdpError::EncryptionPolicy("no randomness for an SRTP key")
    })
}

/// The TLS side of `sip.tls_listen`, from the certificate chain and key
/// files (`sip.tls_cert`, `sip.tls_key`); the error names the file.
pub fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    let config = pbx_runtime::tls::server_config(cert, key, "sip")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A TLS connection the acceptor gave this shard: the handshake, then the
/// connection joins the shard's endpoint. Must run on the shard.
pub(crate) fn take_tls(
    shard: Arc<SipShard>,
    stream: std::net::TcpStream,
    local: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    cancel: CancellationToken,
    gate: Arc<crate::transport::StreamGate>,
    failures: Arc<crate::server::SipShared>,
) {
    use rsipstack::sip::transport::Transport;
    use rsipstack::transport::tls::TlsConnection;
    use rsipstack::transport::{SipAddr, SipConnection};
    tokio::task::spawn_local(async move {
        let peer = gate.from;
        let stream = match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "TLS connection dropped");
                cancel.cancel();
                return;
            }
        };
        let handshake = tokio::select! {
            () = cancel.cancelled() => return,
            handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => handshake,
        };
        let stream = match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                failures.tcp_refusals.note(Some(peer), "TLS handshake failed");
                cancel.cancel();
                return;
            }
            Err(_) => {
                failures
                    .tcp_refusals
                    .note(Some(peer), "TLS handshake not done in time");
                cancel.cancel();
                return;
            }
        };
        let local = SipAddr {
            r#type: Some(Transport::Tls),
            addr: local.into(),
        };
        let remote = SipAddr {
            r#type: Some(Transport::Tls),
            addr: peer.into(),
        };
        let connection = TlsConnection::from_server_stream_guarded(stream, local, remote, Some(cancel), gate);
        shard
            .endpoint
            .transport_layer
            .add_connection(SipConnection::Tls(connection));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(crypto: bool) -> MediaDescription {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 {} 0\r\n{}",
            if crypto { "RTP/SAVP" } else { "RTP/AVP" },
            if crypto {
                "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
            } else {
                ""
            }
        );
        crate::sdp::parse(&text).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn each_policy_answers_and_offers_its_way() {
        use SrtpPolicy::*;
        assert!(matches!(Optional.answer_key(&offer(true)), Ok(Some(_))));
        assert!(matches!(Optional.answer_key(&offer(false)), Ok(None)));
        assert!(matches!(Mandatory.answer_key(&offer(true)), Ok(Some(_))));
        assert!(Mandatory
            .answer_key(&offer(false))
            .is_err_and(|error| error.is_not_acceptable()));
        assert!(matches!(Off.answer_key(&offer(true)), Ok(None)));
        assert!(matches!(Optional.offer_key(true), Ok(Some(_))));
        assert!(matches!(Optional.offer_key(false), Ok(None)));
        assert!(matches!(Mandatory.offer_key(false), Ok(Some(_))));
        assert!(matches!(Off.offer_key(true), Ok(None)));
    }
}
