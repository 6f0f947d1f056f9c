//! Callers as sipp scenarios written for each test: a caller from outside
//! (5550000@outside.test), or a phone of the domain that authenticates
//! (answers pbxd's 407 with its account's password), calls an address,
//! and once answered presses keys (RFC 4733 events from sip-tester's
//! pcaps), plays speech, waits, and hangs up or waits for pbxd to.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use super::{sipp_command_with_media, Pbxd};

/// What a sipp caller does once its call is answered.
pub enum Step {
    Pause(f64),
    /// Presses keys, RFC 4733 events from sip-tester's pcaps, 0.7 s apart.
    Keys(&'static str),
    /// Starts sending the RTP of a pcap file; it plays on while the next
    /// steps run (a pause lets it finish).
    Play(PathBuf),
}

/// How a caller's call ends.
pub enum Ending {
    /// The caller hangs up.
    HangsUp,
    /// pbxd hangs up (the program ends); the caller waits up to a minute.
    PbxdHangsUp,
    /// pbxd refuses the call with this final response (after the caller
    /// authenticated, for a phone); no steps.
    Refused(u16),
}

/// A sipp caller: calls `called` at example.com, offering PCMA and
/// telephone-event, and once answered does `steps`. `as_phone` makes it
/// an account's phone, `(name, password)`: its From is the account, and
/// it answers pbxd's challenge.
pub struct Caller {
    pub called: &'static str,
    pub steps: Vec<Step>,
    pub ending: Ending,
    pub as_phone: Option<(&'static str, &'static str)>,
}

/// Time each key takes: its packets, then a pause.
pub const KEY_SECONDS: f64 = 0.7;

/// sip-tester's pcap of the RFC 4733 event for `key`.
pub fn key_pcap(key: char) -> String {
    let name = match key {
        '#' => "pound".to_string(),
        '*' => "star".to_string(),
        digit => digit.to_string(),
    };
    format!("/usr/share/sip-tester/dtmf_2833_{name}.pcap")
}

pub fn milliseconds(seconds: f64) -> u64 {
    (seconds * 1000.0).round() as u64
}

/// An INVITE of the scenario (`CSeq` `cseq`), with `extra` headers.
fn invite(cseq: u32, extra: &str) -> String {
    format!(
        r#"  <send retrans="500">
    <![CDATA[

      INVITE sip:CALLED@example.com SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: FROM;tag=[pid]SIPpTag00[call_number]
      To: <sip:CALLED@example.com>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>{extra}
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20

    ]]>
  </send>

"#
    )
}

/// An ACK (`CSeq` `cseq`); `branch` is sipp's for it (the INVITE's for a
/// final response other than 2xx).
fn ack(cseq: u32, branch: &str) -> String {
    format!(
        r#"  <send>
    <![CDATA[

      ACK sip:CALLED@example.com SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch};rport
      From: FROM;tag=[pid]SIPpTag00[call_number]
      To: <sip:CALLED@example.com>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

"#
    )
}

impl Caller {
    /// The scenario, as sipp reads it.
    pub fn xml(&self) -> String {
        let called = self.called;
        let mut xml = format!(
            r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- Written by crates/pbxd/tests/common/caller.rs. -->
<scenario name="call {called}">
"#
        );
        // A phone is challenged first, and tries again with credentials.
        let mut cseq = 1;
        if let Some((name, password)) = self.as_phone {
            xml.push_str(&invite(cseq, ""));
            xml.push_str(
                "  <recv response=\"100\" optional=\"true\"/>\n  <recv response=\"407\" auth=\"true\"/>\n\n",
            );
            xml.push_str(&ack(cseq, "[branch-3]"));
            cseq += 1;
            xml.push_str(&invite(
                cseq,
                &format!("\n      [authentication username={name} password={password}]"),
            ));
        } else {
            xml.push_str(&invite(cseq, ""));
        }
        if let Ending::Refused(code) = self.ending {
            // Ringing may come first (a program that rings while it
            // decides).
            xml.push_str(&format!(
                "  <recv response=\"100\" optional=\"true\"/>\n  <recv response=\"180\" optional=\"true\"/>\n  \
                 <recv response=\"183\" optional=\"true\"/>\n  <recv response=\"{code}\"/>\n\n"
            ));
            xml.push_str(&ack(cseq, "[branch-5]"));
            xml.push_str("</scenario>\n");
            return self.addressed(xml);
        }
        xml.push_str(
            r#"  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>

"#,
        );
        xml.push_str(&ack(cseq, "[branch]"));
        let play = |xml: &mut String, pcap: &str| {
            writeln!(
                xml,
                r#"  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>"#
            )
            .unwrap();
        };
        let pause = |xml: &mut String, seconds: f64| {
            writeln!(xml, r#"  <pause milliseconds="{}"/>"#, milliseconds(seconds)).unwrap();
        };
        for step in &self.steps {
            match step {
                Step::Pause(seconds) => pause(&mut xml, *seconds),
                Step::Keys(keys) => {
                    for key in keys.chars() {
                        play(&mut xml, &key_pcap(key));
                        pause(&mut xml, KEY_SECONDS);
                    }
                }
                Step::Play(pcap) => play(&mut xml, &pcap.display().to_string()),
            }
        }
        match self.ending {
            Ending::HangsUp => {
                write!(
                    xml,
                    r#"
  <send retrans="500">
    <![CDATA[

      BYE sip:CALLED@example.com SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: FROM;tag=[pid]SIPpTag00[call_number]
      To: <sip:CALLED@example.com>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {} BYE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <recv response="200"/>
</scenario>
"#,
                    cseq + 1
                )
                .unwrap();
            }
            Ending::PbxdHangsUp => xml.push_str(
                r#"
  <recv request="BYE" timeout="60000"/>

  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"#,
            ),
            Ending::Refused(_) => {}
        }
        self.addressed(xml)
    }

    /// Fills in who calls whom.
    fn addressed(&self, xml: String) -> String {
        let from = match self.as_phone {
            Some((name, _)) => format!("<sip:{name}@example.com>"),
            None => "\"Caller\" <sip:5550000@outside.test>".to_string(),
        };
        xml.replace("CALLED", self.called).replace("FROM", &from)
    }

    /// Writes the scenario to a scratch file named after `name`.
    pub fn write(&self, name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("pbxd-caller-{name}-{}.xml", std::process::id()));
        std::fs::write(&path, self.xml()).unwrap();
        path
    }

    /// Runs the call to its end from sipp's RTP port `media_port`.
    pub fn call(&self, name: &str, sipp_program: &Path, pbxd: &Pbxd, media_port: u16) -> Output {
        let scenario = self.write(name);
        let output = sipp_command_with_media(sipp_program, &scenario, pbxd, media_port, &[])
            .output()
            .expect("sipp runs");
        let _ = std::fs::remove_file(&scenario);
        output
    }

    /// Starts the call in the background (see `call`).
    pub fn start(&self, name: &str, sipp_program: &Path, pbxd: &Pbxd, media_port: u16) -> Running {
        let scenario = self.write(name);
        let child = sipp_command_with_media(sipp_program, &scenario, pbxd, media_port, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sipp runs");
        Running {
            child: Some(child),
            scenario,
        }
    }
}

/// A caller's sipp running in the background (stopped if dropped before
/// it finished).
pub struct Running {
    child: Option<Child>,
    scenario: PathBuf,
}

impl Running {
    pub fn finish(mut self) -> Output {
        let child = self.child.take().expect("a running sipp");
        child.wait_with_output().expect("sipp ends")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.scenario);
    }
}
