//! Parlay X over SOAP and JSON (FEATURES.md §9; seed 004): Third Party
//! Call at `POST /ParlayX/ThirdPartyCall` (its WSDL at `?wsdl`), and the
//! same operations as JSON at `POST /api/3pcc/OPERATION`; Call
//! Notification, Call Direction and Call Handling at `POST
//! /ParlayX/CallNotification` (also reached as CallNotificationManager,
//! CallDirectionManager and CallHandling) and `POST /api/parlay/OPERATION`.
//!
//! Every request is authenticated as click-to-dial's are (HTTP Digest in
//! the first domain's realm, with `name@domain` as the user name where
//! several domains are served; Basic over HTTPS), and acts for the account
//! it authenticated as: a user on their own calls, a domain administrator
//! on the domain's.

pub mod notification;
pub mod payment;
pub mod tpc;

pub use pbx_runtime::soap;

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

/// The namespace of the notification services' operations.
const NOTIFICATION_LOCAL: &str = "http://www.csapi.org/schema/parlayx/call_notification/v2_3/local";

const WSDL: &str = include_str!("third_party_call.wsdl");
const NOTIFICATION_WSDL: &str = include_str!("call_notification.wsdl");

/// One of the SOAP services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    ThirdPartyCall,
    CallNotification,
    Payment,
    AccountManagement,
}

impl Service {
    /// The service `/ParlayX/NAME` serves.
    fn at(name: &str) -> Option<Service> {
        Some(match name {
            "ThirdPartyCall" => Service::ThirdPartyCall,
            "CallNotification" | "CallNotificationManager" | "CallDirectionManager" | "CallHandling" => {
                Service::CallNotification
            }
            "Payment" => Service::Payment,
            "AccountManagement" => Service::AccountManagement,
            _ => return None,
        })
    }

    /// Its WSDL.
    fn description(self) -> &'static str {
        match self {
            Service::ThirdPartyCall => WSDL,
            Service::CallNotification => NOTIFICATION_WSDL,
            Service::Payment => payment::Service::Payment.description(),
            Service::AccountManagement => payment::Service::AccountManagement.description(),
        }
    }

    /// The service of a JSON operation under `/api/API/`: `3pcc`,
    /// `parlay` (notification, direction, handling) or `payment` (both
    /// payment services).
    fn of_json(api: &str, operation: &str) -> Option<Service> {
        Some(match api {
            "3pcc" => Service::ThirdPartyCall,
            "parlay" => Service::CallNotification,
            "payment" => match payment::Service::of(operation) {
                Some(payment::Service::AccountManagement) => Service::AccountManagement,
                _ => Service::Payment,
            },
            _ => return None,
        })
    }

    fn knows(self, operation: &str) -> bool {
        match self {
            Service::ThirdPartyCall => operation_known(operation),
            Service::CallNotification => notification::knows(operation),
            Service::Payment => payment::Service::of(operation) == Some(payment::Service::Payment),
            Service::AccountManagement => {
                payment::Service::of(operation) == Some(payment::Service::AccountManagement)
            }
        }
    }
}

/// A request's parts, as XML or JSON carried them.
enum Request {
    Xml(soap::Element),
    Json(serde_json::Value),
}

impl tpc::Parts for Request {
    fn text(&self, name: &str) -> Option<String> {
        match self {
            Request::Xml(element) => element.text(name),
            Request::Json(value) => value.text(name),
        }
    }

    fn group(&self, name: &str) -> Option<Vec<(String, String)>> {
        match self {
            Request::Xml(element) => element.group(name),
            Request::Json(value) => value.group(name),
        }
    }

    fn list(&self, name: &str) -> Vec<String> {
        match self {
            Request::Xml(element) => element.list(name),
            Request::Json(value) => value.list(name),
        }
    }
}

/// What a service's operation gives back.
enum Reply {
    Call(Answer),
    Notification(notification::Answer),
    Payment(payment::Answer),
}

async fn perform(
    sources: &Sources,
    asker: &Arc<Account>,
    service: Service,
    operation: &str,
    parts: Request,
) -> Result<Reply, Exception> {
    match service {
        Service::ThirdPartyCall => tpc::perform(sources, asker, operation, &parts)
            .await
            .map(Reply::Call),
        Service::CallNotification => {
            notification::perform(sources, asker, operation, &parts).map(Reply::Notification)
        }
        // A write may wait for the disk: not on the executor.
        Service::Payment | Service::AccountManagement => {
            payment::perform_blocking(sources, asker.clone(), operation.to_string(), parts)
                .await
                .map(Reply::Payment)
        }
    }
}

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

/// `GET /ParlayX/NAME?wsdl`: the service's description, its address the
/// one it was asked at.
pub async fn description(
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path(name): Path<String>,
    secure: Option<axum::Extension<crate::Secure>>,
) -> Response {
    let Some(service) = Service::at(&name) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("there is no Parlay X service {name}"),
        );
    };
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
    let location = format!("{scheme}://{host}/ParlayX/{name}");
    xml(
        StatusCode::OK,
        service.description().replace("LOCATION", &location),
    )
}

/// `POST /ParlayX/NAME`: one SOAP 1.1 operation of that service.
pub async fn soap(
    State(sources): State<Arc<Sources>>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    secure: Option<axum::Extension<crate::Secure>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(service) = Service::at(&name) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("there is no Parlay X service {name}"),
        );
    };
    soap_request(&sources, source, secure.is_some(), &headers, &body, service).await
}

async fn soap_request(
    sources: &Sources,
    source: SocketAddr,
    secure: bool,
    headers: &HeaderMap,
    body: &[u8],
    service: Service,
) -> Response {
    let asker = match asker(sources, source, headers, secure) {
        Ok(asker) => asker,
        Err(refused) => return *refused,
    };
    let fault = |exception: Exception| xml(StatusCode::INTERNAL_SERVER_ERROR, exception.fault(COMMON));
    let operation = match soap::operation(body) {
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
    if !service.knows(&name) {
        return fault(Exception::service(
            "SVC0001",
            "A service error occurred. Error code is %1",
            &[&format!("unknown operation {name}")],
        ));
    }
    match perform(sources, &asker, service, &name, Request::Xml(operation)).await {
        Ok(reply) => xml(StatusCode::OK, soap::envelope(&response_xml(&name, &reply))),
        Err(exception) => fault(exception),
    }
}

/// `POST /api/API/OPERATION`: the operations as JSON, a JSON object of
/// the same parts: `3pcc` (Third Party Call), `parlay` (call
/// notification, direction and handling), `payment` (Payment and Account
/// Management). The answer is JSON; an exception comes with 400 (bad
/// input), 403 (not allowed), 404 (no such operation), 409 (not enough
/// money).
pub async fn json_api(
    State(sources): State<Arc<Sources>>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    secure: Option<axum::Extension<crate::Secure>>,
    headers: HeaderMap,
    Path((api, operation)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let Some(service) = Service::of_json(&api, &operation) else {
        return text(StatusCode::NOT_FOUND, format!("there is no API {api}"));
    };
    json_request(
        &sources,
        source,
        secure.is_some(),
        &headers,
        &operation,
        &body,
        service,
    )
    .await
}

async fn json_request(
    sources: &Sources,
    source: SocketAddr,
    secure: bool,
    headers: &HeaderMap,
    operation: &str,
    body: &[u8],
    service: Service,
) -> Response {
    let asker = match asker(sources, source, headers, secure) {
        Ok(asker) => asker,
        Err(refused) => return *refused,
    };
    if body.len() > soap::LARGEST_ENVELOPE {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "the request is larger than 64 KB");
    }
    let parts: serde_json::Value = match serde_json::from_slice(body) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        Ok(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                "expected a JSON object of the operation's parts",
            )
        }
        Err(error) => return text(StatusCode::BAD_REQUEST, format!("not JSON: {error}")),
    };
    if !service.knows(operation) {
        return json(
            StatusCode::NOT_FOUND,
            Exception::service(
                "SVC0001",
                "A service error occurred. Error code is %1",
                &[&format!("unknown operation {operation}")],
            )
            .json(),
        );
    }
    match perform(sources, &asker, service, operation, Request::Json(parts)).await {
        Ok(reply) => json(StatusCode::OK, response_json(&reply)),
        Err(exception) => {
            let status = match exception.message_id {
                _ if exception.is_policy() => StatusCode::FORBIDDEN,
                // Not enough money.
                "SVC0270" => StatusCode::CONFLICT,
                "SVC0001" => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
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
fn response_xml(operation: &str, reply: &Reply) -> String {
    let (namespace, inner) = match reply {
        Reply::Call(Answer::Done) => (LOCAL, String::new()),
        Reply::Call(Answer::Identifier(id)) => (LOCAL, format!("<result>{}</result>", soap::escape(id))),
        Reply::Call(Answer::Information(information)) => (
            LOCAL,
            format!("<result>{}</result>", information_xml(information)),
        ),
        Reply::Payment(answer) => return payment::response_xml(operation, answer),
        Reply::Notification(notification::Answer::Done) => (NOTIFICATION_LOCAL, String::new()),
        Reply::Notification(notification::Answer::Rules(rules)) => {
            let list = |name: &str, items: &[String]| -> String {
                items
                    .iter()
                    .map(|item| format!("<{name}>{}</{name}>", soap::escape(item)))
                    .collect()
            };
            let inner = format!(
                "<result>{}{}{}</result>",
                list("acceptList", &rules.accept),
                list("blockList", &rules.block),
                list("forwardList", &rules.forward)
            );
            (NOTIFICATION_LOCAL, inner)
        }
    };
    format!("<ns:{operation}Response xmlns:ns=\"{namespace}\">{inner}</ns:{operation}Response>")
}

fn response_json(reply: &Reply) -> serde_json::Value {
    let answer = match reply {
        Reply::Call(answer) => answer,
        Reply::Payment(answer) => return payment::response_json(answer),
        Reply::Notification(notification::Answer::Done) => return serde_json::json!({}),
        Reply::Notification(notification::Answer::Rules(rules)) => {
            return serde_json::json!({
                "acceptList": rules.accept,
                "blockList": rules.block,
                "forwardList": rules.forward,
            })
        }
    };
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
        let body = response_xml("makeCall", &Reply::Call(Answer::Identifier("42".into())));
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
        let body = response_xml(
            "getCallInformation",
            &Reply::Call(Answer::Information(information)),
        );
        assert!(body.contains("<callStatus>CallConnected</callStatus><startTime>1970-01-01T00:00:00Z</startTime><duration>3</duration><participants>sip:a@b</participants>"), "{body}");
        assert!(soap::parse(soap::envelope(&body).as_bytes()).is_ok());
        assert!(soap::parse(WSDL.as_bytes()).is_ok(), "the WSDL is well-formed");
        assert!(
            soap::parse(NOTIFICATION_WSDL.as_bytes()).is_ok(),
            "the WSDL is well-formed"
        );
        let rules = pbx_runtime::parlay::Handling {
            accept: Vec::new(),
            block: vec!["5550000".into()],
            forward: vec!["200".into()],
        };
        let body = response_xml(
            "getRules",
            &Reply::Notification(notification::Answer::Rules(rules)),
        );
        assert!(
            body.ends_with("<result><blockList>5550000</blockList><forwardList>200</forwardList></result></ns:getRulesResponse>"),
            "{body}"
        );
    }
}
