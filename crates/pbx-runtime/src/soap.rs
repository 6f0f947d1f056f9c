//! SOAP 1.1 as the Parlay X services speak it (pbx-http's services, and
//! the notifications pbxd sends their clients): a message's operation
//! element read into a small tree, and envelopes and faults written.
//!
//! Requests are bounded (size, depth, elements) and a document type
//! declaration is refused outright, so no entity is ever declared,
//! expanded or fetched; only XML's five predefined entities and character
//! references are read.

use quick_xml::events::Event;
use quick_xml::Reader;

/// The largest request envelope taken.
pub const LARGEST_ENVELOPE: usize = 64 * 1024;
/// How deep elements may nest.
const DEEPEST: usize = 32;
/// How many elements one request may have.
const MOST_ELEMENTS: usize = 2000;

pub const ENVELOPE_NAMESPACE: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// An element: its local name (no prefix), text, and children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// The trimmed text of the first child called `name`.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|child| child.text.trim())
    }
}

/// Why a request could not be read (a client fault).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("the envelope is larger than {LARGEST_ENVELOPE} bytes")]
    TooLarge,
    #[error("document type declarations are not accepted")]
    Doctype,
    #[error("the XML is malformed: {0}")]
    Malformed(String),
    #[error("elements nest deeper than {DEEPEST}")]
    TooDeep,
    #[error("more than {MOST_ELEMENTS} elements")]
    TooMany,
    #[error("not a SOAP envelope with a body")]
    NotEnvelope,
    #[error("the body holds no operation")]
    NoOperation,
}

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match name.rsplit_once(':') {
        Some((_, local)) => local.to_string(),
        None => name.into_owned(),
    }
}

/// Reads a whole document into a tree.
pub fn parse(bytes: &[u8]) -> Result<Element, ReadError> {
    if bytes.len() > LARGEST_ENVELOPE {
        return Err(ReadError::TooLarge);
    }
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    let mut count = 0;
    let mut buffer = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buffer)
            .map_err(|error| ReadError::Malformed(error.to_string()))?;
        match event {
            Event::DocType(_) => return Err(ReadError::Doctype),
            Event::Start(start) => {
                count += 1;
                if count > MOST_ELEMENTS {
                    return Err(ReadError::TooMany);
                }
                if stack.len() >= DEEPEST {
                    return Err(ReadError::TooDeep);
                }
                stack.push(Element {
                    name: local(start.name().as_ref()),
                    ..Element::default()
                });
            }
            Event::Empty(empty) => {
                count += 1;
                if count > MOST_ELEMENTS {
                    return Err(ReadError::TooMany);
                }
                let element = Element {
                    name: local(empty.name().as_ref()),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None if root.is_none() => root = Some(element),
                    None => return Err(ReadError::Malformed("more than one root element".into())),
                }
            }
            Event::End(_) => {
                let Some(element) = stack.pop() else {
                    return Err(ReadError::Malformed("an end tag without its start".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None if root.is_none() => root = Some(element),
                    None => return Err(ReadError::Malformed("more than one root element".into())),
                }
            }
            Event::Text(text) => {
                let decoded = text
                    .xml10_content()
                    .map_err(|error| ReadError::Malformed(error.to_string()))?;
                match stack.last_mut() {
                    Some(element) => element.text.push_str(&decoded),
                    None if decoded.trim().is_empty() => {}
                    None => return Err(ReadError::Malformed("text outside the root element".into())),
                }
            }
            Event::GeneralRef(reference) => {
                // `&amp;` and the like, and `&#NN;`: only those XML
                // defines; any other entity is unknown (no DTD declares it).
                let character = match reference.resolve_char_ref() {
                    Ok(Some(character)) => character,
                    Ok(None) => {
                        let name = String::from_utf8_lossy(reference.as_ref()).into_owned();
                        match name.as_str() {
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "quot" => '"',
                            "apos" => '\'',
                            _ => return Err(ReadError::Malformed(format!("unknown entity &{name};"))),
                        }
                    }
                    Err(error) => return Err(ReadError::Malformed(error.to_string())),
                };
                if let Some(element) = stack.last_mut() {
                    element.text.push(character);
                }
            }
            Event::CData(data) => {
                if let Some(element) = stack.last_mut() {
                    element.text.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
        buffer.clear();
    }
    if !stack.is_empty() {
        return Err(ReadError::Malformed("the document ends inside an element".into()));
    }
    root.ok_or_else(|| ReadError::Malformed("no element".into()))
}

/// The operation a SOAP request asks for: the first element of its body.
pub fn operation(bytes: &[u8]) -> Result<Element, ReadError> {
    let envelope = parse(bytes)?;
    if envelope.name != "Envelope" {
        return Err(ReadError::NotEnvelope);
    }
    let body = envelope.child("Body").ok_or(ReadError::NotEnvelope)?;
    body.children.first().cloned().ok_or(ReadError::NoOperation)
}

/// `text` with `&`, `<`, `>` and quotes escaped.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// A response envelope around `body` (already XML).
pub fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"{ENVELOPE_NAMESPACE}\"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>\n"
    )
}

/// A Parlay X exception: a service one (`SVCnnnn`) or a policy one
/// (`POLnnnn`), with the text's `%1`… filled by `variables`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exception {
    pub message_id: &'static str,
    pub text: String,
    pub variables: Vec<String>,
}

impl Exception {
    pub fn service(message_id: &'static str, text: impl Into<String>, variables: &[&str]) -> Exception {
        Exception {
            message_id,
            text: text.into(),
            variables: variables.iter().map(|variable| variable.to_string()).collect(),
        }
    }

    /// Whether it is a policy exception (else a service one).
    pub fn is_policy(&self) -> bool {
        self.message_id.starts_with("POL")
    }

    /// The text with its variables in place.
    pub fn message(&self) -> String {
        let mut text = self.text.clone();
        for (index, variable) in self.variables.iter().enumerate().rev() {
            text = text.replace(&format!("%{}", index + 1), variable);
        }
        text
    }

    /// The SOAP fault carrying it, in `namespace` (the common types').
    pub fn fault(&self, namespace: &str) -> String {
        let (code, element) = if self.is_policy() {
            ("soapenv:Client", "PolicyException")
        } else if self.message_id == "SVC0001" {
            ("soapenv:Server", "ServiceException")
        } else {
            ("soapenv:Client", "ServiceException")
        };
        let variables: String = self
            .variables
            .iter()
            .map(|variable| format!("<variables>{}</variables>", escape(variable)))
            .collect();
        envelope(&format!(
            "<soapenv:Fault><faultcode>{code}</faultcode><faultstring>{}: {}</faultstring><detail><ns:{element} xmlns:ns=\"{namespace}\"><messageId>{}</messageId><text>{}</text>{variables}</ns:{element}></detail></soapenv:Fault>",
            self.message_id,
            escape(&self.message()),
            self.message_id,
            escape(&self.text),
        ))
    }

    /// The same, for the JSON API.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "exception": if self.is_policy() { "PolicyException" } else { "ServiceException" },
            "messageId": self.message_id,
            "text": self.text,
            "variables": self.variables,
            "message": self.message(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_is_read_with_its_parts_whatever_the_prefixes() {
        let request = br#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:loc="urn:x">
  <s:Header/>
  <s:Body>
    <loc:makeCall>
      <loc:callingParty>sip:ivanov@example.com</loc:callingParty>
      <loc:calledParty>tel:202 &amp; &#x31;</loc:calledParty>
      <loc:charging><description><![CDATA[a <b>]]></description></loc:charging>
    </loc:makeCall>
  </s:Body>
</s:Envelope>"#;
        let operation = operation(request).unwrap();
        assert_eq!(operation.name, "makeCall");
        assert_eq!(operation.text_of("callingParty"), Some("sip:ivanov@example.com"));
        assert_eq!(operation.text_of("calledParty"), Some("tel:202 & 1"));
        let charging = operation.child("charging").unwrap();
        assert_eq!(charging.text_of("description"), Some("a <b>"));
    }

    #[test]
    fn entities_doctypes_and_bad_xml_are_refused() {
        let billion = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><Envelope><Body><x>&lol;</x></Body></Envelope>"#;
        assert_eq!(operation(billion), Err(ReadError::Doctype));
        let external = br#"<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><Envelope/>"#;
        assert_eq!(operation(external), Err(ReadError::Doctype));
        assert!(matches!(
            operation(b"<Envelope><Body><x>&unknown;</x></Body></Envelope>"),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            operation(b"<Envelope><Body><x></y></Body></Envelope>"),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            operation(b"not xml at all"),
            Err(ReadError::Malformed(_))
        ));
        assert_eq!(
            operation(b"<Envelope><Body/></Envelope>"),
            Err(ReadError::NoOperation)
        );
        assert_eq!(
            operation(b"<Other><Body><x/></Body></Other>"),
            Err(ReadError::NotEnvelope)
        );
        let deep = format!(
            "<Envelope><Body>{}{}</Body></Envelope>",
            "<a>".repeat(40),
            "</a>".repeat(40)
        );
        assert_eq!(operation(deep.as_bytes()), Err(ReadError::TooDeep));
        let large = format!(
            "<Envelope><Body><x>{}</x></Body></Envelope>",
            "y".repeat(LARGEST_ENVELOPE)
        );
        assert_eq!(operation(large.as_bytes()), Err(ReadError::TooLarge));
    }

    #[test]
    fn faults_carry_the_exception() {
        let unknown = Exception::service(
            "SVC0002",
            "Invalid input value for message part %1",
            &["callIdentifier"],
        );
        let fault = unknown.fault("urn:common");
        assert!(fault.contains("<faultcode>soapenv:Client</faultcode>"), "{fault}");
        assert!(
            fault.contains(
                "<faultstring>SVC0002: Invalid input value for message part callIdentifier</faultstring>"
            ),
            "{fault}"
        );
        assert!(fault.contains("<ns:ServiceException xmlns:ns=\"urn:common\"><messageId>SVC0002</messageId>"));
        let parsed = parse(fault.as_bytes()).unwrap();
        assert_eq!(parsed.name, "Envelope");
        let denied = Exception::service(
            "POL0001",
            "A policy error occurred. Error code is %1",
            &["<not allowed>"],
        );
        assert!(denied.fault("urn:common").contains("PolicyException"));
        assert!(denied.fault("urn:common").contains("&lt;not allowed&gt;"));
        assert_eq!(denied.json()["messageId"], "POL0001");
    }
}
