//! Capturing what pbxd sends and receives: tcpdump on `lo` into a pcap
//! file, and a reader of that file's RTP packets (UDP over IPv4).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One RTP packet over UDP and IPv4: when it was captured, between which
/// ports, and what it carried.
#[derive(Clone, Debug)]
pub struct Rtp {
    pub time: f64,
    pub source_port: u16,
    pub destination_port: u16,
    pub payload_type: u8,
    pub sequence: u16,
    pub payload: Vec<u8>,
}

/// One record of a pcap file.
pub struct Record<'a> {
    /// Seconds since the epoch.
    pub time: f64,
    /// The record as in the file: its header, then the packet.
    pub whole: &'a [u8],
    pub packet: &'a [u8],
}

/// A pcap file (libpcap's format, not pcapng).
pub struct Pcap<'a> {
    /// The 24-byte global header.
    pub header: &'a [u8],
    pub link_type: u32,
    pub records: Vec<Record<'a>>,
}

impl Pcap<'_> {
    pub fn parse(bytes: &[u8]) -> Result<Pcap<'_>, String> {
        let header = bytes.get(..24).ok_or("shorter than a pcap header")?;
        let magic = [header[0], header[1], header[2], header[3]];
        let (big_endian, nanoseconds) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            other => return Err(format!("not a pcap file (magic {other:02x?})")),
        };
        let word = |bytes: &[u8]| {
            let four = [bytes[0], bytes[1], bytes[2], bytes[3]];
            if big_endian {
                u32::from_be_bytes(four)
            } else {
                u32::from_le_bytes(four)
            }
        };
        let link_type = word(&header[20..24]);
        let fraction = if nanoseconds { 1e-9 } else { 1e-6 };
        let mut records = Vec::new();
        let mut offset = 24;
        while offset < bytes.len() {
            let record = bytes
                .get(offset..offset + 16)
                .ok_or_else(|| format!("a record header cut short at byte {offset}"))?;
            let time = f64::from(word(&record[0..4])) + f64::from(word(&record[4..8])) * fraction;
            let length = word(&record[8..12]) as usize;
            let end = offset + 16 + length;
            // tcpdump stopped mid-write: the last record may be cut short.
            let Some(whole) = bytes.get(offset..end) else {
                break;
            };
            records.push(Record {
                time,
                whole,
                packet: &whole[16..],
            });
            offset = end;
        }
        Ok(Pcap {
            header,
            link_type,
            records,
        })
    }

    /// The RTP packets (UDP over IPv4, RTP version 2); others are skipped.
    pub fn rtp(&self) -> Result<Vec<Rtp>, String> {
        let mut packets = Vec::new();
        for record in &self.records {
            let ip = match self.link_type {
                // Ethernet (what tcpdump gives on Linux's lo): IPv4 only.
                1 => record
                    .packet
                    .get(12..14)
                    .filter(|kind| *kind == [0x08, 0x00])
                    .and(record.packet.get(14..)),
                // BSD loopback: a 4-byte address family.
                0 => record.packet.get(4..),
                // Raw IP.
                101 | 228 => Some(record.packet),
                // Linux cooked capture, v1 and v2.
                113 => record
                    .packet
                    .get(14..16)
                    .filter(|kind| *kind == [0x08, 0x00])
                    .and(record.packet.get(16..)),
                276 => record
                    .packet
                    .get(0..2)
                    .filter(|kind| *kind == [0x08, 0x00])
                    .and(record.packet.get(20..)),
                other => return Err(format!("link type {other} is not one this test reads")),
            };
            if let Some(rtp) = ip.and_then(|ip| rtp_in_ip(ip, record.time)) {
                packets.push(rtp);
            }
        }
        Ok(packets)
    }
}

/// The RTP packet in an IPv4 datagram, if it carries one.
pub fn rtp_in_ip(ip: &[u8], time: f64) -> Option<Rtp> {
    let first = *ip.first()?;
    let header_length = usize::from(first & 0x0f) * 4;
    let total_length = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let fragment = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
    // IPv4, UDP, not a fragment (offset or more-fragments flag).
    if first >> 4 != 4 || *ip.get(9)? != 17 || fragment & 0x3fff != 0 || header_length < 20 {
        return None;
    }
    let ip = ip.get(..total_length.min(ip.len()))?;
    let udp = ip.get(header_length..)?;
    let source_port = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let destination_port = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let udp_length = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    let rtp = udp.get(8..udp_length.min(udp.len()))?;
    let flags = *rtp.first()?;
    if flags >> 6 != 2 {
        return None;
    }
    let contributing = usize::from(flags & 0x0f);
    let mut start = 12 + 4 * contributing;
    if flags & 0x10 != 0 {
        let words = usize::from(u16::from_be_bytes([*rtp.get(start + 2)?, *rtp.get(start + 3)?]));
        start += 4 + 4 * words;
    }
    let mut end = rtp.len();
    if flags & 0x20 != 0 {
        end = end.checked_sub(usize::from(*rtp.last()?))?;
    }
    Some(Rtp {
        time,
        source_port,
        destination_port,
        payload_type: rtp.get(1)? & 0x7f,
        sequence: u16::from_be_bytes([*rtp.get(2)?, *rtp.get(3)?]),
        payload: rtp.get(start..end)?.to_vec(),
    })
}

/// tcpdump capturing UDP on lo to and from some ports, into a scratch file.
pub struct Capture {
    child: Child,
    file: PathBuf,
}

/// The `tcpdump` program, or `None` (after saying why) when it is missing
/// and peers are not required.
pub fn tcpdump() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("tcpdump"))
        .find(|candidate| candidate.is_file())
        .or_else(|| pbx_test_peers::missing("tcpdump is not installed (apt-get install tcpdump)"))
}

impl Capture {
    /// Starts capturing, once tcpdump says it listens; `None` (after saying
    /// why) when tcpdump is missing or may not capture, and peers are not
    /// required.
    pub fn start(name: &str, ports: &[u16]) -> Option<Capture> {
        let ports: Vec<String> = ports.iter().map(|port| format!("port {port}")).collect();
        Capture::start_filter(name, &format!("udp and ({})", ports.join(" or ")))
    }

    /// As `start`, with tcpdump's own filter (`udp and portrange 10000-10003`).
    pub fn start_filter(name: &str, filter: &str) -> Option<Capture> {
        let program = tcpdump()?;
        let file = std::env::temp_dir().join(format!("pbxd-capture-{name}-{}.pcap", std::process::id()));
        let _ = std::fs::remove_file(&file);
        let mut child = Command::new(program)
            .args(["-i", "lo", "-n", "-U", "-w"])
            .arg(&file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let stderr = child.stderr.take()?;
        let (sender, said) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let mut lines = String::new();
        while let Ok(line) = said.recv_timeout(Duration::from_secs(10)) {
            if line.contains("listening on") {
                return Some(Capture { child, file });
            }
            lines.push_str(&line);
            lines.push('\n');
        }
        let _ = child.kill();
        let _ = child.wait();
        pbx_test_peers::missing(&format!("tcpdump does not capture on lo (run as root):\n{lines}"))
    }

    /// Stops capturing (as Ctrl-C does) and reads what was captured.
    pub fn stop(mut self) -> Vec<Rtp> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let _ = self.child.wait();
        let bytes = std::fs::read(&self.file).unwrap_or_default();
        Pcap::parse(&bytes)
            .and_then(|pcap| pcap.rtp())
            .unwrap_or_else(|error| panic!("{}: {error}", self.file.display()))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
    }
}
