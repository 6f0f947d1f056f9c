//! The operations a task waits on, and how they are carried out. While a
//! task waits, what arrives for it (DTMF, events, a hang-up) keeps being
//! taken in, and may cut the wait short as CGPL.md §7.3 says.

use std::time::Duration;

use pbx_lang::value::{TaskId, Value};
use tokio::sync::oneshot;

use super::host::TaskHost;
use crate::call::{LegCommand, LegState, Media, Played};
use crate::observe::Event;
use crate::{http, mail};

/// What a task waits on.
#[derive(Debug)]
pub(crate) enum Op {
    /// `ReadInput(seconds)` with nothing queued yet.
    ReadInput(Duration),
    /// A prompt, tone or datablock, looping until `limit` if given.
    Play { media: Media, limit: Option<Duration> },
    /// `Record(seconds)`.
    Record(Duration),
    /// `AcceptCall()`.
    Accept,
    /// `SendEMail`/`SubmitEMail`.
    SendMail(mail::Outgoing),
    /// `HTTPCall`.
    Http(http::Request),
    /// `StartBridge(task)`: waits for the other task's answer.
    StartBridge(TaskId),
    /// `StartBridgedCall(destination, event)`: calls out for the task that
    /// asked to bridge.
    StartBridgedCall { target: String, from: TaskId },
    /// `TransferCall(destination)`.
    Transfer(String),
    /// `StartTransfer(task)`: waits for the other task's answer.
    StartTransfer(TaskId),
    /// `AcceptTransfer(event)`: joins the two peers.
    AcceptTransfer(TaskId),
}

impl TaskHost {
    /// Carries out `op`; its value is the built-in's result.
    pub async fn perform(&mut self, op: Op) -> Value {
        let waiting = match &op {
            Op::ReadInput(_) => "waiting for input",
            Op::Play { .. } => "playing",
            Op::Record(_) => "recording",
            Op::Accept => "answering",
            Op::SendMail(_) => "sending mail",
            Op::Http(_) => "waiting for HTTP",
            Op::StartBridge(_) | Op::StartBridgedCall { .. } => "bridging",
            Op::Transfer(_) | Op::StartTransfer(_) | Op::AcceptTransfer(_) => "transferring",
        };
        self.runtime.registry.set_state(self.id, waiting);
        let value = self.perform_op(op).await;
        self.runtime.registry.set_state(self.id, "running");
        value
    }

    async fn perform_op(&mut self, op: Op) -> Value {
        match op {
            Op::ReadInput(timeout) => self.read_input(timeout).await,
            Op::Play { media, limit } => self.play_media(media, limit).await,
            Op::Record(limit) => self.record(limit).await,
            Op::Accept => self.accept_call().await,
            Op::SendMail(outgoing) => self.deliver(outgoing).await,
            Op::Http(request) => self.fetch(request).await,
            Op::StartBridge(target) => self.bridge_with(target).await,
            Op::StartBridgedCall { target, from } => self.call_for(target, from).await,
            Op::Transfer(target) => self.transfer(target).await,
            Op::StartTransfer(target) => self.transfer_to_task(target).await,
            Op::AcceptTransfer(from) => self.join_peers(from).await,
        }
    }

    async fn read_input(&mut self, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.drain();
            if let Some(value) = self.queue.pop() {
                return value;
            }
            if self.stop_requested {
                return Value::Null;
            }
            tokio::select! {
                input = self.receiver.recv() => match input {
                    Some(input) => self.absorb(input),
                    None => return Value::Null,
                },
                () = tokio::time::sleep_until(deadline) => return Value::Null,
            }
        }
    }

    /// Whether what has arrived should stop a prompt or a recording.
    fn interrupted(&self) -> Option<&'static str> {
        let disconnected = self
            .call
            .as_ref()
            .is_none_or(|leg| leg.state == LegState::Disconnected);
        if disconnected {
            Some("hang-up")
        } else if self.stop_requested {
            Some("shutdown")
        } else if self.interrupt_on_dtmf && !self.queue.dtmf.is_empty() {
            Some("DTMF")
        } else if !self.queue.events.is_empty() {
            Some("event")
        } else {
            None
        }
    }

    async fn play_media(&mut self, media: Media, limit: Option<Duration>) -> Value {
        let skip = std::mem::take(&mut self.skip_next);
        let (reply, mut played) = oneshot::channel::<Played>();
        let length = limit.unwrap_or_else(|| media.length().saturating_sub(skip));
        match &media {
            Media::File { shown, .. } => self.runtime.observer.event(Event::Play {
                task: self.id,
                file: shown.clone(),
                length,
            }),
            Media::Data { .. } => self.runtime.observer.event(Event::Play {
                task: self.id,
                file: "(datablock)".into(),
                length,
            }),
            Media::Tone { frequencies, .. } => self.runtime.observer.event(Event::Tone {
                task: self.id,
                frequencies: if frequencies.is_empty() {
                    "silence".into()
                } else {
                    frequencies
                        .iter()
                        .map(|hz| format!("{hz} Hz"))
                        .collect::<Vec<_>>()
                        .join(" + ")
                },
                length,
            }),
        }
        let Some(leg) = self.call.as_ref() else {
            return Value::Null;
        };
        leg.send(LegCommand::Play {
            media,
            limit: Some(length),
            reply,
        });
        let mut stopped_by = None;
        let result = loop {
            tokio::select! {
                result = &mut played => break result.ok(),
                input = self.receiver.recv(), if stopped_by.is_none() => {
                    match input {
                        Some(input) => self.absorb(input),
                        None => stopped_by = Some("hang-up"),
                    }
                    if let Some(reason) = stopped_by.or_else(|| self.interrupted()) {
                        stopped_by = Some(reason);
                        if let Some(leg) = self.call.as_ref() {
                            leg.send(LegCommand::Stop);
                        }
                    }
                }
            }
        };
        let played = result.unwrap_or(Played {
            length: Duration::ZERO,
            completed: false,
        });
        self.last_play = played.length;
        self.last_play_completed = played.completed;
        if let (false, Some(by)) = (played.completed, stopped_by) {
            self.runtime.observer.event(Event::PlayInterrupted {
                task: self.id,
                after: played.length,
                by: by.into(),
            });
        }
        Value::Null
    }

    async fn record(&mut self, limit: Duration) -> Value {
        let Some(leg) = self.call.as_ref() else {
            return Value::Null;
        };
        let (reply, mut recorded) = oneshot::channel::<Vec<u8>>();
        leg.send(LegCommand::Record { limit, reply });
        let mut stopping = false;
        let wav = loop {
            tokio::select! {
                result = &mut recorded => break result.ok(),
                input = self.receiver.recv(), if !stopping => {
                    match input {
                        Some(input) => self.absorb(input),
                        None => stopping = true,
                    }
                    if stopping || self.interrupted().is_some() {
                        stopping = true;
                        if let Some(leg) = self.call.as_ref() {
                            leg.send(LegCommand::Stop);
                        }
                    }
                }
            }
        };
        match wav {
            Some(bytes) => {
                let length = pbx_media::wav::info(&bytes)
                    .map(|info| info.duration())
                    .unwrap_or_default();
                self.runtime.observer.event(Event::Recorded {
                    task: self.id,
                    length,
                });
                Value::data(bytes)
            }
            None => Value::Null,
        }
    }

    pub(super) async fn accept_call(&mut self) -> Value {
        let Some(leg) = self.call.as_ref() else {
            return Value::str("there is no call to accept");
        };
        let (reply, answer) = oneshot::channel();
        leg.send(LegCommand::Accept { reply });
        let result = answer.await.unwrap_or_else(|_| Err("the call is gone".into()));
        let task = self.id;
        match (result, self.call.as_mut()) {
            (Ok(()), Some(leg)) => {
                leg.state = LegState::Connected;
                self.runtime.observer.event(Event::Call {
                    task,
                    what: "accepted".into(),
                });
                Value::Null
            }
            (Err(reason), leg) => {
                if let Some(leg) = leg {
                    leg.state = LegState::Disconnected;
                }
                Value::from(reason)
            }
            (Ok(()), None) => Value::str("there is no call to accept"),
        }
    }

    async fn deliver(&mut self, outgoing: mail::Outgoing) -> Value {
        let relay = mail::Relay::of(&self.runtime.config.smtp);
        let to = outgoing.recipients.join(", ");
        let envelope = outgoing.message.envelope().clone();
        let bytes = outgoing.message.formatted();
        let kept = bytes.clone();
        let sent = self
            .runtime
            .io(async move { mail::send(&relay, &envelope, &bytes).await.map(|()| envelope) })
            .await
            .unwrap_or_else(|| {
                Err(mail::Undelivered {
                    reason: "the mail service stopped".into(),
                    permanent: false,
                })
            });
        // Not taken for now: kept on disk and sent again; the script is told.
        let result = match (&sent, &self.runtime.mail_queue) {
            (Ok(_), _) => Ok(()),
            (Err(undelivered), Some(queue)) if !undelivered.permanent => {
                let envelope = outgoing.message.envelope().clone();
                match queue.keep(&envelope, &kept) {
                    Ok(()) => Err(format!("queued: {}; pbxd will send it again", undelivered.reason)),
                    Err(error) => Err(format!("{} (and not kept: {error})", undelivered.reason)),
                }
            }
            (Err(undelivered), _) => Err(undelivered.reason.clone()),
        };
        self.runtime.observer.event(Event::Email {
            task: self.id,
            to,
            result: result.clone(),
        });
        match result {
            Ok(()) => Value::Null,
            Err(reason) => Value::from(reason),
        }
    }

    async fn fetch(&mut self, request: http::Request) -> Value {
        let client = self.runtime.http.clone();
        let url = request.url.clone();
        let result = self
            .runtime
            .io(async move { http::perform(&client, request).await })
            .await
            .unwrap_or_else(|| Err("the HTTP service stopped".into()));
        self.runtime.observer.event(Event::Http {
            task: self.id,
            url,
            result: result
                .as_ref()
                .map(|response| response.code)
                .map_err(Clone::clone),
        });
        match result {
            Ok(response) => http::to_value(&response),
            Err(reason) => Value::from(reason),
        }
    }
}
