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

/// A request too broken for the SIP stack to answer (it would drop it):
/// without Call-ID, From, To or CSeq, or with a CSeq that is not a number
/// below 2^31 and the request's own method. Returns why, and the `400`
/// to send back, its reason phrase naming the fault (RFC 3261 §8.2, §20),
/// with the headers a response copies that the request has.
pub fn refusal_of_raw_request(message: &[u8]) -> Option<(String, String)> {
    let head_end = message
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or(message.len());
    let head = std::str::from_utf8(&message[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?;
    let mut words = request_line.split(' ');
    let method = words.next()?;
    // Responses, and what is no request at all, are the stack's to judge.
    if method.is_empty()
        || method.starts_with("SIP/")
        || !words.next_back().is_some_and(|last| last.starts_with("SIP/"))
    {
        return None;
    }
    let mut copied = Vec::new();
    let mut present = [false; 4];
    let mut cseq = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let index = match name.as_str() {
            "call-id" | "i" => Some(0),
            "from" | "f" => Some(1),
            "to" | "t" => Some(2),
            "cseq" => Some(3),
            _ => None,
        };
        if let Some(index) = index {
            present[index] = true;
        }
        if name == "cseq" {
            cseq = Some(value.trim().to_string());
        }
        if index.is_some() || name == "via" || name == "v" {
            copied.push(line);
        }
    }
    let fault = if let Some(missing) = ["Call-ID", "From", "To", "CSeq"]
        .iter()
        .zip(present)
        .find_map(|(name, present)| (!present).then_some(*name))
    {
        format!("Missing {missing} Header")
    } else {
        let cseq = cseq.unwrap_or_default();
        let mut parts = cseq.split_whitespace();
        let number = parts.next().and_then(|number| number.parse::<u32>().ok());
        let cseq_method = parts.next();
        match (number, cseq_method) {
            (Some(number), Some(cseq_method)) if number < 1 << 31 && cseq_method == method => return None,
            (Some(number), Some(_)) if number < 1 << 31 => "CSeq Method Does Not Match".to_string(),
            (_, None) if number.is_some() => "CSeq Without Method".to_string(),
            _ => "Bad CSeq Number".to_string(),
        }
    };
    let mut response = format!("SIP/2.0 400 {fault}\r\n");
    for line in copied {
        response.push_str(line);
        response.push_str("\r\n");
    }
    response.push_str("Content-Length: 0\r\n\r\n");
    Some((fault, response))
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
}

impl ShardUdp {
    /// Must run on the shard's thread: the socket joins its reactor.
    pub fn new(
        index: usize,
        socket: std::net::UdpSocket,
        inbox: mpsc::UnboundedReceiver<Datagram>,
        peers: Arc<[mpsc::UnboundedSender<Datagram>]>,
    ) -> std::io::Result<ShardUdp> {
        let local = socket.local_addr()?;
        Ok(ShardUdp {
            index,
            socket: tokio::net::UdpSocket::from_std(socket)?,
            local,
            inbox: Mutex::new(inbox),
            peers,
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
                    let (length, from) = received?;
                    if let Some(answer) = refusal_of_raw_request(&buffer[..length]) {
                        // The SIP stack would drop it unanswered.
                        tracing::info!(%from, "refused a request: {}", answer.0);
                        let _ = self.socket.send_to(answer.1.as_bytes(), from).await;
                        continue;
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
    fn only_requests_the_stack_would_drop_are_refused_before_it() {
        let good =
            b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\n\
                     To: <sip:a@b>\r\ni: c1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(refusal_of_raw_request(good), None);
        assert_eq!(refusal_of_raw_request(b"SIP/2.0 200 OK\r\n\r\n"), None);
        assert_eq!(refusal_of_raw_request(b"garbage"), None);
        assert_eq!(refusal_of_raw_request(b"\r\n\r\n"), None);
        let text = std::str::from_utf8(good).unwrap();
        let (fault, response) = refusal_of_raw_request(text.replace("7 INVITE", "7 ACK").as_bytes()).unwrap();
        assert_eq!(fault, "CSeq Method Does Not Match");
        assert!(response
            .starts_with("SIP/2.0 400 CSeq Method Does Not Match\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"));
        assert!(response.contains("\r\ni: c1\r\n") && response.ends_with("Content-Length: 0\r\n\r\n"));
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
