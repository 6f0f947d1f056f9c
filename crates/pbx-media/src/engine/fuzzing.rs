//! The receiving half of a session without a socket or a worker, so that
//! the fuzz target `rtp` (`fuzz/`) can feed it datagrams as a worker
//! does: parse, symmetric-RTP latching, the reorder buffer, RFC 4733
//! events and their de-duplication, G.711 decoding, the in-band detector,
//! a recording and the playout queue. Not part of the crate's API.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::receive::{ReceiveContext, ReceiveState, Recording};
use super::{Counters, EventSender, MediaEvent};
use crate::dtmf::InbandDetector;

/// One session's receiving side, its clock set by the caller.
pub struct Receiver {
    state: ReceiveState,
    remote_known: bool,
    telephone_event: Option<u8>,
    events: EventSender,
    pending: futures_channel::mpsc::UnboundedReceiver<MediaEvent>,
    counters: Counters,
    start: Instant,
    recorded: Option<tokio::sync::oneshot::Receiver<Vec<u8>>>,
}

impl Receiver {
    /// A session whose remote is `remote_known` (latching on) and which
    /// negotiated telephone-events as `telephone_event`; `inband` turns on
    /// the in-band detector, `record` records up to that long.
    pub fn new(
        remote_known: bool,
        telephone_event: Option<u8>,
        inband: bool,
        record: Option<Duration>,
    ) -> Receiver {
        let (events, pending) = futures_channel::mpsc::unbounded();
        let mut state = ReceiveState::default();
        if inband {
            state.detector = Some(InbandDetector::new());
        }
        let mut recorded = None;
        if let Some(limit) = record {
            let (reply, receiver) = tokio::sync::oneshot::channel();
            state.recording = Some(Recording::new(limit, reply));
            recorded = Some(receiver);
        }
        let start = Instant::now();
        state.restart_watch(start, true);
        Receiver {
            state,
            remote_known,
            telephone_event,
            events,
            pending,
            counters: Counters::default(),
            start,
            recorded,
        }
    }

    /// Takes `datagram` from `source`, `at` after the session started.
    pub fn datagram(&mut self, datagram: &[u8], source: SocketAddr, at: Duration) {
        let context = ReceiveContext {
            remote_known: self.remote_known,
            telephone_event: self.telephone_event,
            events: &self.events,
            counters: &self.counters,
            now: self.start + at,
        };
        self.state.on_datagram(datagram, source, &context);
    }

    /// A worker's tick `at` after the start: the inactivity check and the
    /// next 20 ms of the peer's audio, if any.
    pub fn tick(&mut self, at: Duration) -> Option<[i16; crate::prompt::FRAME_SAMPLES]> {
        self.state
            .check_inactivity(self.start + at, Duration::from_secs(30), true, &self.events);
        self.state.next_frame()
    }

    /// The keys (and inactivity reports) since the last call.
    pub fn events(&mut self) -> Vec<MediaEvent> {
        let mut events = Vec::new();
        while let Ok(event) = self.pending.try_recv() {
            events.push(event);
        }
        events
    }

    /// Ends the recording, if one was started: the WAV file it made.
    pub fn finish(mut self) -> Option<Vec<u8>> {
        if let Some(recording) = self.state.recording.take() {
            recording.finish();
        }
        self.recorded.take()?.try_recv().ok()
    }
}
