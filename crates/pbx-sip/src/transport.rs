//! SIP transports across shards (ARCHITECTURE.md, "Every core").
//!
//! A dialog lives on one shard, so every message of it must reach that
//! shard. Over UDP the shard is chosen by the Call-ID: each shard has its
//! own socket on the SIP port (`SO_REUSEPORT`: the kernel spreads the
//! peers over them), reads what arrives there, and passes a datagram whose
//! Call-ID belongs to another shard on to that one's queue. A call pbxd
//! places gets a Call-ID of its own shard. Over TCP a connection belongs to
//! the shard that took it (taken in turn), and so do the dialogs that came
//! over it; a call to a phone registered over TCP is placed on the shard
//! of its connection.

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::platform::net::UdpSocket as SipUdpSocket;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::{mpsc, Mutex};

use crate::gate::Verdict;

/// A datagram one shard read for another.
#[derive(Debug)]
pub(crate) struct Datagram {
    bytes: Vec<u8>,
    from: SocketAddr,
}

/// The shard that owns a Call-ID among `shards`.
pub fn shard_of_call_id(call_id: &str, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    // FNV-1a: stable across runs and processes, cheap on a short string.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in call_id.trim().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % shards as u64) as usize
}

/// A new Call-ID that belongs to `shard` of `shards`.
pub fn call_id_for(shard: usize, shards: usize, host: &str) -> String {
    loop {
        let call_id = format!("{:08x}{:08x}@{host}", crate::random_u32(), crate::random_u32());
        if shard_of_call_id(&call_id, shards) == shard % shards.max(1) {
            return call_id;
        }
    }
}

/// The Call-ID of a raw SIP message (`Call-ID:` or its compact form `i:`),
/// found without parsing the rest.
pub fn raw_call_id(message: &[u8]) -> Option<&str> {
    let head_end = message
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or(message.len());
    message[..head_end]
        .split(|&byte| byte == b'\n')
        .skip(1)
        .find_map(|line| {
            let colon = line.iter().position(|&byte| byte == b':')?;
            let name = line[..colon].trim_ascii();
            let is_call_id = name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i");
            if !is_call_id {
                return None;
            }
            std::str::from_utf8(line[colon + 1..].trim_ascii()).ok()
        })
}

/// Binds one UDP socket per shard on `address` (with `SO_REUSEPORT`). A
/// plain bind first makes sure no one else holds the port (two pbxd on one
/// port would otherwise share its traffic), and picks the port when asked
/// for port 0.
pub fn bind_udp(address: SocketAddr, shards: usize) -> std::io::Result<Vec<std::net::UdpSocket>> {
    let probe = std::net::UdpSocket::bind(address)?;
    let address = probe.local_addr()?;
    drop(probe);
    (0..shards.max(1))
        .map(|_| {
            let domain = if address.is_ipv6() {
                Domain::IPV6
            } else {
                Domain::IPV4
            };
            let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
            socket.set_reuse_port(true)?;
            socket.set_nonblocking(true)?;
            // Bursts of SIP under load: a bigger queue before datagrams drop.
            let _ = socket.set_recv_buffer_size(4 << 20);
            socket.bind(&address.into())?;
            Ok(socket.into())
        })
        .collect()
}

/// The queues shards pass datagrams to each other by.
pub(crate) fn inboxes(
    shards: usize,
) -> (
    Arc<[mpsc::UnboundedSender<Datagram>]>,
    Vec<mpsc::UnboundedReceiver<Datagram>>,
) {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..shards.max(1)).map(|_| mpsc::unbounded_channel()).unzip();
    (senders.into(), receivers)
}

/// One shard's side of the SIP port, as rsipstack's UDP transport reads
/// and writes it.
pub(crate) struct ShardUdp {
    index: usize,
    socket: tokio::net::UdpSocket,
    local: SocketAddr,
    /// What other shards read for this one. Only rsipstack's one reader
    /// locks it.
    inbox: Mutex<mpsc::UnboundedReceiver<Datagram>>,
    peers: Arc<[mpsc::UnboundedSender<Datagram>]>,
    /// Counts (and now and then logs) the requests refused as malformed.
    refusals: Arc<crate::gate::Tally>,
}

impl ShardUdp {
    /// Must run on the shard's thread: the socket joins its reactor.
    pub fn new(
        index: usize,
        socket: std::net::UdpSocket,
        inbox: mpsc::UnboundedReceiver<Datagram>,
        peers: Arc<[mpsc::UnboundedSender<Datagram>]>,
        refusals: Arc<crate::gate::Tally>,
    ) -> std::io::Result<ShardUdp> {
        let local = socket.local_addr()?;
        Ok(ShardUdp {
            index,
            socket: tokio::net::UdpSocket::from_std(socket)?,
            local,
            inbox: Mutex::new(inbox),
            peers,
            refusals,
        })
    }
}

#[async_trait::async_trait]
impl SipUdpSocket for ShardUdp {
    async fn recv_from(&self, buffer: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        let mut inbox = self.inbox.lock().await;
        loop {
            tokio::select! {
                biased;
                passed = inbox.recv() => {
                    let Some(datagram) = passed else { continue };
                    let length = datagram.bytes.len().min(buffer.len());
                    buffer[..length].copy_from_slice(&datagram.bytes[..length]);
                    return Ok((length, datagram.from));
                }
                received = self.socket.recv_from(buffer) => {
                    let (mut length, from) = received?;
                    if crate::gate::flood_limit().is_some_and(|limit| limit.over(from, &buffer[..length])) {
                        continue;
                    }
                    match judge_safely(&buffer[..length]) {
                        Verdict::Pass => {}
                        Verdict::Rewritten(unfolded) if unfolded.len() <= buffer.len() => {
                            buffer[..unfolded.len()].copy_from_slice(&unfolded);
                            length = unfolded.len();
                        }
                        Verdict::Rewritten(_) => continue,
                        Verdict::Refused { fault, answer } => {
                            // The SIP stack would drop it unanswered.
                            self.refusals.note(Some(from), &fault);
                            if !answer.is_empty() {
                                let _ = self.socket.send_to(&answer, from).await;
                            }
                            continue;
                        }
                    }
                    let owner = raw_call_id(&buffer[..length])
                        .map_or(self.index, |call_id| shard_of_call_id(call_id, self.peers.len()));
                    if owner == self.index {
                        return Ok((length, from));
                    }
                    if let Some(peer) = self.peers.get(owner) {
                        let _ = peer.send(Datagram { bytes: buffer[..length].to_vec(), from });
                    }
                }
            }
        }
    }

    async fn send_to(&self, buffer: &[u8], address: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buffer, address).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.local)
    }

    fn answer_unparsable(&self, datagram: &[u8], error: &str) -> Option<Vec<u8>> {
        let (fault, answer) = crate::gate::answer_unusable(datagram, error, false)?;
        self.refusals.note(None, &fault);
        Some(answer)
    }
}

/// The gate's verdict; should the gate ever panic on some input (a bug),
/// the message is dropped and the socket's reader goes on, instead of
/// the shard losing its SIP port.
fn judge_safely(message: &[u8]) -> Verdict {
    std::panic::catch_unwind(|| crate::gate::judge(message)).unwrap_or_else(|_| {
        tracing::error!("the SIP gate failed on a message; it is dropped");
        Verdict::Refused {
            fault: "the gate failed".into(),
            answer: Vec::new(),
        }
    })
}

/// The gate on one TCP connection (the stack's stream guard).
pub(crate) struct StreamGate {
    pub from: SocketAddr,
    pub refusals: Arc<crate::gate::Tally>,
}

impl rsipstack::transport::stream::StreamGuard for StreamGate {
    fn judge(&self, message: &[u8]) -> rsipstack::transport::stream::Judged {
        use rsipstack::transport::stream::Judged;
        match judge_safely(message) {
            Verdict::Pass => Judged::Pass,
            Verdict::Rewritten(unfolded) => Judged::Replace(unfolded),
            Verdict::Refused { fault, answer } => {
                self.refusals.note(Some(self.from), &fault);
                Judged::Answer(answer)
            }
        }
    }

    fn answer_unusable(
        &self,
        message: &[u8],
        problem: rsipstack::transport::stream::Unusable<'_>,
    ) -> Option<Vec<u8>> {
        use rsipstack::transport::stream::Unusable;
        let (error, too_large) = match problem {
            Unusable::Unparsable(error) => (error, false),
            Unusable::BadContentLength => ("Content-Length is not a length", false),
            Unusable::TooLarge => ("", true),
        };
        let (fault, answer) = crate::gate::answer_unusable(message, error, too_large)?;
        self.refusals.note(Some(self.from), &fault);
        Some(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_found_in_raw_messages() {
        let invite = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x\r\nCall-ID: abc@host \r\nCSeq: 1 INVITE\r\n\r\nbody Call-ID: no";
        assert_eq!(raw_call_id(invite), Some("abc@host"));
        let compact = b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP x\r\ni:xyz\r\n\r\n";
        assert_eq!(raw_call_id(compact), Some("xyz"));
        assert_eq!(raw_call_id(b"garbage"), None);
        assert_eq!(
            raw_call_id(b"BYE x SIP/2.0\r\nFrom: <sip:call-id@x>\r\n\r\n"),
            None
        );
    }

    #[test]
    fn call_ids_made_for_a_shard_belong_to_it() {
        for shard in 0..4 {
            let call_id = call_id_for(shard, 4, "127.0.0.1");
            assert_eq!(shard_of_call_id(&call_id, 4), shard);
        }
        assert_eq!(shard_of_call_id("anything", 1), 0);
        // Spread: a thousand Call-IDs land on every one of four shards.
        let mut counts = [0; 4];
        for number in 0..1000 {
            counts[shard_of_call_id(&format!("{number}-call@example.com"), 4)] += 1;
        }
        assert!(counts.iter().all(|&count| count > 150), "{counts:?}");
    }
}
