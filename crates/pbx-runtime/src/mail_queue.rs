//! Mail the relay could not take for now, kept on disk and sent again:
//! `data_dir/mail-queue/`, one message a pair of files (`NAME.eml`, the
//! message as it goes; `NAME.env`, the envelope: the sender on the first
//! line, a recipient on each further one), written whole before they are
//! renamed into place. A task on the I/O executor tries the oldest first
//! every `smtp.retry_seconds`, and at once when new mail is kept; a
//! message the relay refuses for good goes to `failed/` and the log says
//! so. What is kept outlasts a restart: the next start sends it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lettre::address::{Address, Envelope};

use crate::mail::{self, Relay};

/// The queue's folder and what wakes its sender.
#[derive(Debug)]
pub struct MailQueue {
    folder: PathBuf,
    wake: tokio::sync::Notify,
    next: AtomicU64,
}

impl MailQueue {
    /// The queue in `folder` (made when first used).
    pub fn new(folder: PathBuf) -> MailQueue {
        MailQueue {
            folder,
            wake: tokio::sync::Notify::new(),
            next: AtomicU64::new(0),
        }
    }

    /// Keeps a message to send later.
    pub fn keep(&self, envelope: &Envelope, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.folder)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!("{now:024}-{:06}", self.next.fetch_add(1, Ordering::Relaxed));
        let mut lines = envelope.from().map(ToString::to_string).unwrap_or_default();
        for recipient in envelope.to() {
            lines.push('\n');
            lines.push_str(recipient.as_ref());
        }
        // The envelope last: a message is pending once its `.env` is there.
        write_whole(&self.folder.join(format!("{name}.eml")), bytes)?;
        write_whole(&self.folder.join(format!("{name}.env")), lines.as_bytes())?;
        self.wake.notify_one();
        Ok(())
    }

    /// The messages waiting, oldest first (their names, without extension).
    pub fn pending(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.folder) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "env"))
            .map(|path| path.with_extension(""))
            .collect();
        names.sort();
        names
    }

    /// Tries every waiting message once, oldest first, until the relay
    /// does not take one for now; how many went.
    pub async fn flush(&self, relay: &Relay) -> usize {
        let mut sent = 0;
        for name in self.pending() {
            let envelope = name.with_extension("env");
            let message = name.with_extension("eml");
            let (Ok(lines), Ok(bytes)) = (std::fs::read_to_string(&envelope), std::fs::read(&message)) else {
                continue;
            };
            let Some(parsed) = parse_envelope(&lines) else {
                tracing::warn!(file = %envelope.display(), "a kept message's envelope is unreadable: set aside");
                self.set_aside(&name);
                continue;
            };
            match mail::send(relay, &parsed, &bytes).await {
                Ok(()) => {
                    let _ = std::fs::remove_file(&envelope);
                    let _ = std::fs::remove_file(&message);
                    tracing::info!(to = %recipients(&parsed), "kept mail delivered");
                    sent += 1;
                }
                Err(undelivered) if undelivered.permanent => {
                    tracing::warn!(to = %recipients(&parsed), reason = %undelivered.reason, "kept mail refused for good: set aside in failed/");
                    self.set_aside(&name);
                }
                Err(undelivered) => {
                    tracing::debug!(reason = %undelivered.reason, "kept mail still not taken");
                    break;
                }
            }
        }
        sent
    }

    fn set_aside(&self, name: &Path) {
        let failed = self.folder.join("failed");
        let _ = std::fs::create_dir_all(&failed);
        for extension in ["eml", "env"] {
            let from = name.with_extension(extension);
            if let Some(file) = from.file_name() {
                let _ = std::fs::rename(&from, failed.join(file));
            }
        }
    }

    /// Sends what is kept, now and every `every`, and at once when new
    /// mail is kept; runs until the runtime's I/O executor stops.
    pub fn start(self: &Arc<Self>, relay: Relay, every: Duration, io: &tokio::runtime::Handle) {
        let queue = self.clone();
        io.spawn(async move {
            loop {
                queue.flush(&relay).await;
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = queue.wake.notified() => {}
                }
            }
        });
    }
}

fn recipients(envelope: &Envelope) -> String {
    envelope
        .to()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_envelope(lines: &str) -> Option<Envelope> {
    let mut lines = lines.lines();
    let from = lines.next()?.trim();
    let from = if from.is_empty() {
        None
    } else {
        Some(from.parse::<Address>().ok()?)
    };
    let to: Vec<Address> = lines
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    Envelope::new(from, to).ok()
}

/// Writes `bytes` to a temporary name, then renames it to `path`: a crash
/// leaves the old file or the new one, never half of one.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("part");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_kept_in_order_and_read_back() {
        let folder = std::env::temp_dir().join(format!("pbxd-mail-queue-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        let queue = MailQueue::new(folder.clone());
        let envelope = Envelope::new(
            Some("pbx@example.com".parse().unwrap()),
            vec![
                "ivanov@example.com".parse().unwrap(),
                "boss@example.com".parse().unwrap(),
            ],
        )
        .unwrap();
        queue.keep(&envelope, b"Subject: one\r\n\r\nfirst\r\n").unwrap();
        queue.keep(&envelope, b"Subject: two\r\n\r\nsecond\r\n").unwrap();
        let pending = queue.pending();
        assert_eq!(pending.len(), 2);
        assert!(std::fs::read_to_string(pending[0].with_extension("eml"))
            .unwrap()
            .contains("first"));
        let read =
            parse_envelope(&std::fs::read_to_string(pending[0].with_extension("env")).unwrap()).unwrap();
        assert_eq!(read, envelope);
        queue.set_aside(&pending[0]);
        assert_eq!(queue.pending().len(), 1);
        assert!(folder.join("failed").read_dir().unwrap().count() == 2);
        let _ = std::fs::remove_dir_all(&folder);
    }
}
