//! `HTTPCall(url, parameters)` (CGPL.md §6.9): an HTTP request with a
//! timeout; the result is a dictionary, or an error string.
//!
//! Parameters (all optional): `method` (GET, or POST when there is a
//! body), `body` (a string, a datablock, or a dictionary sent as a form),
//! `Content-Type` (with `Content-Subtype`), `urlParameters` (a dictionary
//! added to the query), `headers` (a dictionary of extra header fields),
//! `timeout` (seconds, at most the configured limit). The result:
//! `{responseCode; Content-Type; Content-Subtype; body; headers}`, with the
//! body a string when the response is text and a datablock otherwise.

use std::time::Duration;

use pbx_lang::value::{Bytes, Dict, Value};

/// A request ready to send (plain data, so it can go to another thread).
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// What came back.
#[derive(Debug)]
pub struct Response {
    pub code: u16,
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn text(value: &Value) -> Option<String> {
    value
        .as_str_bytes()
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

fn form_encode(dict: &Dict) -> String {
    fn escape(text: &[u8]) -> String {
        text.iter()
            .map(|&byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (byte as char).to_string()
                }
                b' ' => "+".into(),
                other => format!("%{other:02X}"),
            })
            .collect()
    }
    dict.entries()
        .iter()
        .map(|(key, value)| {
            let value = match value {
                Value::Str(bytes) | Value::Data(bytes) => bytes.as_slice().to_vec(),
                other => pbx_lang::value::text::to_text(other).into_bytes(),
            };
            format!("{}={}", escape(key.as_slice()), escape(&value))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Builds the request of `HTTPCall(url, parameters)`.
pub fn build(url: &Value, parameters: &Value, limit: Duration) -> Result<Request, String> {
    let url = text(url).ok_or("the URL must be a string")?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    }
    let parameters = match parameters {
        Value::Dict(dict) => dict.clone(),
        Value::Null => Dict::new(),
        other => {
            return Err(format!(
                "the parameters must be a dictionary, not {}",
                other.type_name()
            ))
        }
    };
    let mut headers = Vec::new();
    let mut body = None;
    match parameters.get(b"body") {
        Value::Null => {}
        Value::Dict(form) => {
            body = Some(form_encode(&form).into_bytes());
            headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
        }
        Value::Str(bytes) | Value::Data(bytes) => body = Some(bytes.as_slice().to_vec()),
        other => {
            return Err(format!(
                "body: expected a string, a datablock or a dictionary, not {}",
                other.type_name()
            ))
        }
    }
    if let Some(kind) = text(&parameters.get(b"Content-Type")) {
        let kind = match text(&parameters.get(b"Content-Subtype")) {
            Some(subtype) => format!("{kind}/{subtype}"),
            None => kind,
        };
        headers.retain(|(name, _)| name != "Content-Type");
        headers.push(("Content-Type".into(), kind));
    }
    if let Value::Dict(extra) = parameters.get(b"headers") {
        for (name, value) in extra.entries() {
            if let Some(value) = text(&value) {
                headers.push((name.to_str_lossy().into_owned(), value));
            }
        }
    }
    let mut url = url;
    if let Value::Dict(query) = parameters.get(b"urlParameters") {
        let encoded = form_encode(&query);
        if !encoded.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&encoded);
        }
    }
    let method = text(&parameters.get(b"method"))
        .map(|method| method.to_ascii_uppercase())
        .unwrap_or_else(|| {
            if body.is_some() {
                "POST".into()
            } else {
                "GET".into()
            }
        });
    let timeout = match parameters.get(b"timeout") {
        Value::Num(seconds) if seconds > 0 => Duration::from_secs(seconds as u64).min(limit),
        _ => limit,
    };
    Ok(Request {
        method,
        url,
        headers,
        body,
        timeout,
    })
}

/// Sends the request.
pub async fn perform(client: &reqwest::Client, request: Request) -> Result<Response, String> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("`{}` is not an HTTP method", request.method))?;
    let mut builder = client.request(method, &request.url).timeout(request.timeout);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let response = builder.send().await.map_err(|error| describe(&error))?;
    let code = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let body = response.bytes().await.map_err(|error| describe(&error))?.to_vec();
    Ok(Response {
        code,
        content_type,
        headers,
        body,
    })
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "cannot connect".into()
    } else {
        error.to_string()
    }
}

/// The result dictionary the script receives.
pub fn to_value(response: &Response) -> Value {
    let dict = Dict::new();
    let set = |key: &str, value: Value| {
        let _ = dict.set(Bytes::from(key), value);
    };
    set("responseCode", Value::Num(i64::from(response.code)));
    let (kind, subtype) = match response
        .content_type
        .as_deref()
        .map(|value| value.split(';').next().unwrap_or(""))
    {
        Some(mime) => match mime.split_once('/') {
            Some((kind, subtype)) => (kind.trim().to_string(), subtype.trim().to_string()),
            None => (mime.trim().to_string(), String::new()),
        },
        None => (String::new(), String::new()),
    };
    let textual = kind == "text"
        || subtype.contains("json")
        || subtype.contains("xml")
        || subtype == "x-www-form-urlencoded";
    if !kind.is_empty() {
        set("Content-Type", Value::str(&kind));
    }
    if !subtype.is_empty() {
        set("Content-Subtype", Value::str(&subtype));
    }
    set(
        "body",
        if textual || kind.is_empty() {
            Value::string_from_bytes(response.body.iter().copied().filter(|byte| *byte != 0).collect())
        } else {
            Value::data(response.body.clone())
        },
    );
    let headers = Dict::new();
    for (name, value) in &response.headers {
        let _ = headers.set(Bytes::from(name.as_str()), Value::str(value));
    }
    set("headers", Value::Dict(headers));
    Value::Dict(dict)
}
