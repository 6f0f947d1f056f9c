//! Parlay X over SOAP and JSON (FEATURES.md §9; seed 004): Third Party
//! Call at `POST /ParlayX/ThirdPartyCall` (its WSDL at `?wsdl`), and the
//! same operations as JSON at `POST /api/3pcc/OPERATION`.
//!
//! Every request is authenticated as click-to-dial's are (HTTP Digest in
//! the first domain's realm, with `name@domain` as the user name where
//! several domains are served; Basic over HTTPS), and acts for the account
//! it authenticated as: a user on their own calls, a domain administrator
//! on the domain's.

pub mod soap;
pub mod tpc;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use pbx_runtime::directory::Account;

use crate::click::{authenticate_request, text};
use crate::Sources;
use soap::Exception;
use tpc::{Answer, CallInformation};

/// The namespace of the operations' elements.
const LOCAL: &str = "http://www.csapi.org/schema/parlayx/third_party_call/v2_3/local";
/// The namespace of the exceptions.
const COMMON: &str = "http://www.csapi.org/schema/parlayx/common/v2_1";

const WSDL: &str = include_str!("third_party_call.wsdl");

/// Who asks, checked; or the answer that refuses them (401 with a
/// challenge, 403).
fn asker(
    sources: &Sources,
    source: SocketAddr,
    headers: &HeaderMap,
    secure: bool,
) -> Result<Arc<Account>, crate::click::Refused> {
    let directory = &sources.runtime.directory;
    let Some(realm) = directory
        .first_domain()
        .and_then(|domain| domain.accounts().next().cloned())
    else {
        return Err(Box::new(text(StatusCode::NOT_FOUND, "no domain is configured")));
    };
    authenticate_request(sources, source, headers, None, &realm, secure, "POST")
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

/// `GET /ParlayX/ThirdPartyCall?wsdl`: the service description, its
/// address the one it was asked at.
pub async fn wsdl(
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    secure: Option<axum::Extension<crate::Secure>>,
) -> Response {
    if !query.as_deref().unwrap_or_default().eq_ignore_ascii_case("wsdl") {
        return text(StatusCode::BAD_REQUEST, "ask for ?wsdl, or POST a SOAP request");
    }
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| {
            host.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("127.0.0.1");
    let scheme = if secure.is_some() { "https" } else { "http" };
    let location = format!("{scheme}://{host}/ParlayX/ThirdPartyCall");
    xml(StatusCode::OK, WSDL.replace("LOCATION", &location))
}

/// `POST /ParlayX/ThirdPartyCall`: one SOAP 1.1 operation.
pub async fn third_party_call(
    State(sources): State<Arc<Sources>>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    secure: Option<axum::Extension<crate::Secure>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let asker = match asker(&sources, source, &headers, secure.is_some()) {
        Ok(asker) => asker,
        Err(refused) => return *refused,
    };
    let fault = |exception: Exception| xml(StatusCode::INTERNAL_SERVER_ERROR, exception.fault(COMMON));
    let operation = match soap::operation(&body) {
        Ok(operation) => operation,
        Err(error) => {
            tracing::info!(%source, %error, "Parlay X request refused");
            return fault(Exception::service(
                "SVC0001",
                "A service error occurred. Error code is %1",
                &[&error.to_string()],
            ));
        }
    };
    let name = operation.name.clone();
    match tpc::perform(&sources, &asker, &name, &operation).await {
        Ok(answer) => xml(StatusCode::OK, soap::envelope(&response_xml(&name, &answer))),
        Err(exception) => fault(exception),
    }
}

/// `POST /api/3pcc/OPERATION`: the same operations with a JSON object of
/// the same parts; the answer is JSON, and an exception comes with 400
/// (service) or 403 (policy).
pub async fn third_party_call_json(
    State(sources): State<Arc<Sources>>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    secure: Option<axum::Extension<crate::Secure>>,
    headers: HeaderMap,
    Path(operation): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let asker = match asker(&sources, source, &headers, secure.is_some()) {
        Ok(asker) => asker,
        Err(refused) => return *refused,
    };
    if body.len() > soap::LARGEST_ENVELOPE {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "the request is larger than 64 KB");
    }
    let parts: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        Ok(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                "expected a JSON object of the operation's parts",
            )
        }
        Err(error) => return text(StatusCode::BAD_REQUEST, format!("not JSON: {error}")),
    };
    match tpc::perform(&sources, &asker, &operation, &parts).await {
        Ok(answer) => json(StatusCode::OK, response_json(&answer)),
        Err(exception) => {
            let status = if exception.is_policy() {
                StatusCode::FORBIDDEN
            } else if exception.message_id == "SVC0001" && operation_known(&operation) {
                StatusCode::INTERNAL_SERVER_ERROR
            } else if operation_known(&operation) {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::NOT_FOUND
            };
            json(status, exception.json())
        }
    }
}

fn operation_known(operation: &str) -> bool {
    matches!(
        operation,
        "makeCall"
            | "getCallInformation"
            | "endCall"
            | "cancelCall"
            | "addCallParticipant"
            | "deleteCallParticipant"
            | "transferCallParticipant"
    )
}

/// An xsd:dateTime in UTC.
fn date_time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|time| time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn information_xml(information: &CallInformation) -> String {
    let mut xml = format!("<callStatus>{}</callStatus>", soap::escape(&information.status));
    if let Some(start) = information.start {
        xml.push_str(&format!("<startTime>{}</startTime>", date_time(start)));
    }
    if let Some(duration) = information.duration {
        xml.push_str(&format!("<duration>{duration}</duration>"));
    }
    if let Some(cause) = &information.termination_cause {
        xml.push_str(&format!(
            "<terminationCause>{}</terminationCause>",
            soap::escape(cause)
        ));
    }
    for participant in &information.participants {
        xml.push_str(&format!(
            "<participants>{}</participants>",
            soap::escape(participant)
        ));
    }
    xml
}

/// The body of an operation's response.
fn response_xml(operation: &str, answer: &Answer) -> String {
    let inner = match answer {
        Answer::Done => String::new(),
        Answer::Identifier(id) => format!("<result>{}</result>", soap::escape(id)),
        Answer::Information(information) => format!("<result>{}</result>", information_xml(information)),
    };
    format!("<ns:{operation}Response xmlns:ns=\"{LOCAL}\">{inner}</ns:{operation}Response>")
}

fn response_json(answer: &Answer) -> serde_json::Value {
    match answer {
        Answer::Done => serde_json::json!({}),
        Answer::Identifier(id) => serde_json::json!({ "callIdentifier": id }),
        Answer::Information(information) => serde_json::json!({
            "callStatus": information.status,
            "startTime": information.start.map(date_time),
            "duration": information.duration,
            "terminationCause": information.termination_cause,
            "participants": information.participants,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_written_in_the_local_namespace() {
        let body = response_xml("makeCall", &Answer::Identifier("42".into()));
        assert_eq!(
            body,
            format!("<ns:makeCallResponse xmlns:ns=\"{LOCAL}\"><result>42</result></ns:makeCallResponse>")
        );
        let information = CallInformation {
            status: "CallConnected".into(),
            start: Some(0),
            duration: Some(3),
            termination_cause: None,
            participants: vec!["sip:a@b".into()],
        };
        let body = response_xml("getCallInformation", &Answer::Information(information));
        assert!(body.contains("<callStatus>CallConnected</callStatus><startTime>1970-01-01T00:00:00Z</startTime><duration>3</duration><participants>sip:a@b</participants>"), "{body}");
        assert!(soap::parse(soap::envelope(&body).as_bytes()).is_ok());
        assert!(soap::parse(WSDL.as_bytes()).is_ok(), "the WSDL is well-formed");
    }
}
