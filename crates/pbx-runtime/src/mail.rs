//! `SubmitEMail` and `SendEMail` (CGPL.md §6.10): a message built from the
//! script's headers and content, delivered through the configured relay.
//! The script gets null when the relay accepted the message and an error
//! string when it did not; a message the relay could not take for now
//! (down, a 4xx) is kept on disk and sent again (`mail_queue`), and the
//! script gets `queued: …`.

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pbx_lang::value::{Bytes, Value};

/// A message ready to go, and to whom (for the timeline).
#[derive(Debug)]
pub struct Outgoing {
    pub message: Message,
    pub recipients: Vec<String>,
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Str(bytes) => Some(bytes.to_str_lossy().into_owned()),
        _ => None,
    }
}

/// The addresses of a header given as a string or an array of strings.
fn addresses(value: &Value, header: &str) -> Result<Vec<Mailbox>, String> {
    let texts: Vec<String> = match value {
        Value::Null => Vec::new(),
        Value::Str(_) => text_of(value)
            .map(|text| {
                text.split(',')
                    .map(|part| part.trim().to_string())
                    .filter(|part| !part.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        Value::Array(array) => array.items().iter().filter_map(text_of).collect(),
        other => {
            return Err(format!(
                "{header}: expected an address or an array of them, not {}",
                other.type_name()
            ))
        }
    };
    texts
        .iter()
        .map(|text| {
            text.parse::<Mailbox>()
                .map_err(|_| format!("{header}: `{text}` is not an e-mail address"))
        })
        .collect()
}

const KNOWN: [&str; 6] = ["from", "to", "cc", "bcc", "subject", "sourcetype"];

/// Builds the message of `SubmitEMail(headers, content)`; `from`, `subject`
/// and `to` (from `SendEMail`) replace the headers' own when not null.
pub fn build(
    headers: &Value,
    content: &Value,
    from: &Value,
    subject: &Value,
    to: &Value,
) -> Result<Outgoing, String> {
    let header = |name: &str| match headers {
        Value::Dict(dict) => dict
            .entries()
            .into_iter()
            .find(|(key, _)| key.as_slice().eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| value)
            .unwrap_or(Value::Null),
        _ => Value::Null,
    };
    if !matches!(headers, Value::Null | Value::Dict(_)) {
        return Err(format!(
            "the headers must be a dictionary, not {}",
            headers.type_name()
        ));
    }
    let pick = |given: &Value, name: &str| {
        if given.is_null() {
            header(name)
        } else {
            given.clone()
        }
    };
    let from = addresses(&pick(from, "From"), "From")?;
    let from = from.into_iter().next().ok_or("no From address")?;
    let to = addresses(&pick(to, "To"), "To")?;
    let cc = addresses(&header("Cc"), "Cc")?;
    let bcc = addresses(&header("Bcc"), "Bcc")?;
    if to.is_empty() && cc.is_empty() && bcc.is_empty() {
        return Err("no recipient".into());
    }
    let recipients: Vec<String> = to
        .iter()
        .chain(&cc)
        .chain(&bcc)
        .map(|mailbox| mailbox.email.to_string())
        .collect();
    let mut builder = Message::builder().from(from);
    for mailbox in to {
        builder = builder.to(mailbox);
    }
    for mailbox in cc {
        builder = builder.cc(mailbox);
    }
    for mailbox in bcc {
        builder = builder.bcc(mailbox);
    }
    if let Some(subject) = text_of(&pick(subject, "Subject")) {
        builder = builder.subject(subject);
    }
    if let Value::Dict(dict) = headers {
        for (key, value) in dict.entries() {
            let name = key.to_str_lossy().into_owned();
            if KNOWN.contains(&name.to_ascii_lowercase().as_str()) {
                continue;
            }
            let Some(value) = text_of(&value) else { continue };
            let Ok(header_name) = HeaderName::new_from_ascii(name.clone()) else {
                return Err(format!("`{name}` is not a header name"));
            };
            if value.contains(['\r', '\n']) {
                return Err(format!("{name}: a header value cannot hold a line break"));
            }
            builder = builder.raw_header(HeaderValue::new(header_name, value));
        }
    }
    let message = match content {
        Value::Null => builder.body(String::new()),
        Value::Array(array) => {
            let mut parts = MultiPart::mixed().build();
            for item in array.items().iter() {
                parts = parts.singlepart(part(item)?);
            }
            builder.multipart(parts)
        }
        other => builder.singlepart(part(other)?),
    }
    .map_err(|error| error.to_string())?;
    Ok(Outgoing { message, recipients })
}

/// A MIME part from a string (text), a datablock (an attachment) or a
/// dictionary `{"" or body, Content-Type, Content-Subtype, filename}`.
fn part(value: &Value) -> Result<SinglePart, String> {
    match value {
        Value::Str(_) => Ok(SinglePart::plain(text_of(value).unwrap_or_default())),
        Value::Data(bytes) => Ok(attachment(bytes, None, None)),
        Value::Dict(dict) => {
            let body = match dict.get(b"body") {
                Value::Null => dict.get(b""),
                body => body,
            };
            let content_type = text_of(&dict.get(b"Content-Type"));
            let subtype = text_of(&dict.get(b"Content-Subtype"));
            let mime = content_type.map(|kind| match subtype {
                Some(subtype) => format!("{kind}/{subtype}"),
                None if kind.contains('/') => kind,
                None => format!("{kind}/plain"),
            });
            let filename = text_of(&dict.get(b"filename"));
            match &body {
                Value::Data(bytes) => Ok(attachment(bytes, mime.as_deref(), filename)),
                Value::Str(_) if filename.is_some() => {
                    let bytes = body
                        .as_str_bytes()
                        .map(Bytes::copy_from)
                        .unwrap_or_else(Bytes::empty);
                    Ok(attachment(&bytes, mime.as_deref(), filename))
                }
                Value::Str(_) | Value::Null => {
                    let content_type =
                        ContentType::parse(mime.as_deref().unwrap_or("text/plain; charset=utf-8"))
                            .map_err(|_| format!("`{}` is not a content type", mime.unwrap_or_default()))?;
                    Ok(SinglePart::builder()
                        .content_type(content_type)
                        .body(text_of(&body).unwrap_or_default()))
                }
                other => Err(format!(
                    "a part's body must be a string or a datablock, not {}",
                    other.type_name()
                )),
            }
        }
        other => Err(format!(
            "the content must be a string, a datablock, an array or a dictionary, not {}",
            other.type_name()
        )),
    }
}

/// An attached file; a WAV datablock is named and typed as one.
fn attachment(bytes: &Bytes, mime: Option<&str>, filename: Option<String>) -> SinglePart {
    let data = bytes.as_slice();
    let is_wav = data.len() >= 12 && &data[0..4] == b"RIFF" && &data[8..12] == b"WAVE";
    let mime = mime.unwrap_or(if is_wav {
        "audio/wav"
    } else {
        "application/octet-stream"
    });
    let filename = filename.unwrap_or_else(|| {
        if is_wav {
            "message.wav".into()
        } else {
            "attachment.bin".into()
        }
    });
    let content_type = ContentType::parse(mime).unwrap_or(ContentType::TEXT_PLAIN);
    Attachment::new(filename).body(data.to_vec(), content_type)
}

/// How to reach the relay: `smtp.*` of the configuration.
#[derive(Clone, Debug)]
pub struct Relay {
    /// `host:port`.
    pub address: String,
    pub timeout: Duration,
    pub tls: crate::config::SmtpTls,
    pub ca_file: Option<std::path::PathBuf>,
}

impl Relay {
    pub fn of(config: &crate::config::SmtpConfig) -> Relay {
        Relay {
            address: config.relay.clone(),
            timeout: Duration::from_secs(config.timeout_seconds),
            tls: config.tls,
            ca_file: config.ca_file.clone(),
        }
    }
}

/// Why a message did not reach the relay: `permanent` when the relay
/// refused it for good (a 5xx), else it may go another time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undelivered {
    pub reason: String,
    pub permanent: bool,
}

impl Undelivered {
    fn transient(reason: String) -> Undelivered {
        Undelivered {
            reason,
            permanent: false,
        }
    }
}

/// Delivers `message` to the relay (STARTTLS first when `smtp.tls` says).
pub async fn deliver(relay: &Relay, message: Message) -> Result<(), Undelivered> {
    send(relay, message.envelope(), &message.formatted()).await
}

/// Delivers a formatted message with its envelope to the relay.
pub async fn send(
    relay: &Relay,
    envelope: &lettre::address::Envelope,
    bytes: &[u8],
) -> Result<(), Undelivered> {
    let timeout = relay.timeout;
    let tls = match relay.tls {
        crate::config::SmtpTls::None => lettre::transport::smtp::client::Tls::None,
        crate::config::SmtpTls::Starttls => {
            let host = relay
                .address
                .rsplit_once(':')
                .map_or(relay.address.as_str(), |(host, _)| host);
            let mut parameters = lettre::transport::smtp::client::TlsParameters::builder(host.to_string());
            if let Some(path) = &relay.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|error| Undelivered::transient(format!("{}: {error}", path.display())))?;
                let certificate = lettre::transport::smtp::client::Certificate::from_pem(&pem)
                    .map_err(|error| Undelivered::transient(format!("{}: {error}", path.display())))?;
                parameters = parameters.add_root_certificate(certificate);
            }
            let parameters = parameters
                .build_rustls()
                .map_err(|error| Undelivered::transient(format!("TLS to the relay: {error}")))?;
            lettre::transport::smtp::client::Tls::Required(parameters)
        }
    };
    let relay = relay.address.as_str();
    let (host, port) = match relay.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| Undelivered::transient(format!("bad relay port in `{relay}`")))?,
        ),
        None => (relay, 25),
    };
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(timeout))
        .tls(tls)
        .build();
    match transport.send_raw(envelope, bytes).await {
        Ok(response) if response.is_positive() => Ok(()),
        Ok(response) => Err(Undelivered {
            reason: format!("the relay refused the message: {}", response.code()),
            permanent: response.code().severity
                == lettre::transport::smtp::response::Severity::PermanentNegativeCompletion,
        }),
        Err(error) => Err(Undelivered {
            reason: format!("the relay {relay} did not take the message: {error}"),
            permanent: error.is_permanent(),
        }),
    }
}
