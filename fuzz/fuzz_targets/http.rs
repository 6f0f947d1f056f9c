//! HTTP requests to every page pbxd serves, through the real router
//! (`pbx_http::fuzzing::router`, the one `pbx_http::start` serves: the
//! size bounds, then each page's reading of its query, form, SOAP or JSON
//! body, authentication and what it does) on a real server assembled as
//! `pbxd serve` assembles it (`pbx_sip::start`: shards, media engine,
//! stores in a temporary folder). No socket: each request is handed to
//! the router with `tower::ServiceExt::oneshot`.
//!
//! The input: the page (one byte, an index into `PAGES`), flags (one
//! byte: the method; HTTPS with Basic credentials of the domain's
//! administrator or of a user; the console session's cookie; a content
//! type), then text: the first line is what stands for `{operation}` in
//! the page's path (for the last page, the whole path), the second the
//! query, then header lines up to an empty line, then the body. `{csrf}`
//! in the query or body is replaced with the console session's token.
//!
//! Programs are not found (the stock environment is an empty folder), so
//! requests that start a task (click-to-dial, makeCall, the console's
//! dial) are refused where the task would start: nothing rings, and no
//! task outlives its request.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderName, HeaderValue, Method, Request};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// Every page, as the router names it.
const PAGES: &[&str] = &[
    "/healthz",
    "/metrics",
    "/remote_call.htm",
    "/api/cdr",
    "/api/cdr.csv",
    "/ParlayX/ThirdPartyCall",
    "/api/3pcc/{operation}",
    "/api/parlay/{operation}",
    "/ParlayX/CallNotification",
    "/ParlayX/CallNotificationManager",
    "/ParlayX/CallDirectionManager",
    "/ParlayX/CallHandling",
    "/ParlayX/Payment",
    "/ParlayX/AccountManagement",
    "/api/payment/{operation}",
    "/",
    "/login",
    "/logout",
    "/console",
    "/console/dial",
    "/console/end",
    "{operation}",
];

const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::HEAD, Method::PUT];

/// The accounts' passwords: long and random-looking, so that the fuzzer
/// does not log in to the console by itself (each login is a session
/// kept for hours).
const ADMIN: (&str, &str) = ("admin@example.com", "9d1c-fuzz-admin-5e2a77f0b3");
const USER: (&str, &str) = ("ivanov@example.com", "41b6-fuzz-user-c08d2e9a1f");

fn configuration(folder: &std::path::Path) -> String {
    let path = |name: &str| folder.join(name).display().to_string().replace('\\', "/");
    format!(
        r#"
data_dir = "{data}"
[sip]
listen = "127.0.0.1:0"
auth_failures_per_minute = 4000000000
[http]
listen = "127.0.0.1:0"
[runtime]
threads = 1
[media]
threads = 1
[environments]
stock = "{stock}"
server = "{server}"
domains = "{domains}"
[parlay]
linger_seconds = 0
[domains."example.com"]
[domains."example.com".accounts.admin]
password = "{admin}"
domain_admin = true
[domains."example.com".accounts.ivanov]
password = "{user}"
aliases = ["201"]
[domains."example.com".accounts.petrov]
password = "petrov-demo"
aliases = ["202"]
"#,
        data = path("data"),
        stock = path("stock"),
        server = path("server"),
        domains = path("domains"),
        admin = ADMIN.1,
        user = USER.1,
    )
}

struct Fixture {
    /// The server's I/O executor, where pages run.
    io: tokio::runtime::Handle,
    router: axum::Router,
    /// The console session: its cookie and its forms' token.
    session: Mutex<(String, String)>,
}

const SOURCE: ([u8; 4], u16) = ([192, 0, 2, 1], 40_000);

fn build(
    method: Method,
    path: &str,
    headers: &[(HeaderName, String)],
    body: Vec<u8>,
) -> Option<Request<Body>> {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(name, HeaderValue::from_str(value).ok()?);
    }
    let mut request = builder.body(Body::from(body)).ok()?;
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(SOURCE)));
    Some(request)
}

/// The status and body of `request`.
fn send(
    io: &tokio::runtime::Handle,
    router: &axum::Router,
    request: Request<Body>,
) -> (u16, Vec<u8>, Vec<String>) {
    io.block_on(async {
        let Ok(response) = router.clone().oneshot(request).await;
        let status = response.status().as_u16();
        let cookies = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok().map(str::to_string))
            .collect();
        let body = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .map(|bytes| bytes.to_vec())
            .unwrap_or_default();
        (status, body, cookies)
    })
}

fn log_in(io: &tokio::runtime::Handle, router: &axum::Router) -> (String, String) {
    let form = format!("name={}&password={}", ADMIN.0.replace('@', "%40"), ADMIN.1);
    let headers = [(
        header::CONTENT_TYPE,
        "application/x-www-form-urlencoded".to_string(),
    )];
    let Some(login) = build(Method::POST, "/login", &headers, form.into_bytes()) else {
        return Default::default();
    };
    let (_, _, cookies) = send(io, router, login);
    let cookie = cookies
        .first()
        .and_then(|cookie| cookie.split(';').next())
        .unwrap_or_default()
        .to_string();
    let headers = [(header::COOKIE, cookie.clone())];
    let Some(console) = build(Method::GET, "/console", &headers, Vec::new()) else {
        return (cookie, String::new());
    };
    let (_, page, _) = send(io, router, console);
    let page = String::from_utf8_lossy(&page);
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string();
    (cookie, csrf)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let folder = std::env::temp_dir().join(format!("pbx-fuzz-http-{}", std::process::id()));
        for name in ["data", "stock", "server", "domains"] {
            std::fs::create_dir_all(folder.join(name)).expect("a temporary folder");
        }
        let config = pbx_runtime::Config::parse(&configuration(&folder), "fuzz.toml", &[])
            .expect("the fuzz configuration");
        let observer = pbx_runtime::observe::Counting::new(pbx_runtime::observe::LogObserver);
        let events = observer.counts.clone();
        let server = pbx_sip::start(config, Arc::new(observer)).expect("a server");
        let spawner = server.shards().spawner().expect("shards on threads");
        let sources = pbx_http::Sources {
            runtime: server.runtime().clone(),
            admission: server.admission().clone(),
            sip: server.network().clone(),
            media: server.media().cloned(),
            events,
            spawner,
            next: std::sync::atomic::AtomicUsize::new(0),
            sessions: Default::default(),
        };
        let router = pbx_http::fuzzing::router(Arc::new(sources));
        let io = server.runtime().io.clone();
        let session = log_in(&io, &router);
        if show() {
            eprintln!("console session: {session:?}");
        }
        let session = Mutex::new(session);
        // The server runs as long as the fuzzer: its threads, never stopped.
        std::mem::forget(server);
        Fixture { io, router, session }
    })
}

/// `PBX_FUZZ_HTTP_SHOW=1`: print each request's path and the answer's
/// status and start (to check what the inputs reach).
fn show() -> bool {
    static SHOW: OnceLock<bool> = OnceLock::new();
    *SHOW.get_or_init(|| std::env::var_os("PBX_FUZZ_HTTP_SHOW").is_some())
}

fn basic((name, password): (&str, &str)) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    format!("Basic {encoded}")
}

fuzz_target!(|data: &[u8]| {
    let [page, flags, rest @ ..] = data else { return };
    let fixture = fixture();
    let (cookie, csrf) = fixture
        .session
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let text = String::from_utf8_lossy(rest);
    // Two lines, header lines up to an empty one, the body.
    let mut rest = text.as_ref();
    let mut line = || {
        let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
        rest = after;
        line
    };
    let operation = line();
    let query = line().replace("{csrf}", &csrf);
    let mut lines = Vec::new();
    loop {
        let header = line();
        if header.is_empty() {
            break;
        }
        lines.push(header);
    }
    let body = rest;
    let template = PAGES[usize::from(*page) % PAGES.len()];
    let mut path = template.replace("{operation}", operation);
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query);
    }
    let mut headers: Vec<(HeaderName, String)> = Vec::new();
    if flags & 0x0C != 0 {
        let who = if flags & 0x08 != 0 { USER } else { ADMIN };
        headers.push((header::AUTHORIZATION, basic(who)));
    }
    if flags & 0x10 != 0 {
        headers.push((header::COOKIE, cookie.clone()));
    }
    let content_type = match flags >> 5 {
        1 => Some("application/json"),
        2 => Some("text/xml; charset=utf-8"),
        3 => Some("application/x-www-form-urlencoded"),
        4 => Some("multipart/form-data; boundary=x"),
        _ => None,
    };
    if let Some(content_type) = content_type {
        headers.push((header::CONTENT_TYPE, content_type.to_string()));
    }
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes()) {
                headers.push((name, value.trim().to_string()));
            }
        }
    }
    let body = body.replace("{csrf}", &csrf).into_bytes();
    let method = METHODS[usize::from(flags & 3)].clone();
    let Some(mut request) = build(method, &path, &headers, body) else {
        return;
    };
    if flags & 0x0C != 0 {
        request.extensions_mut().insert(pbx_http::fuzzing::Secure);
    }
    let shown = format!("{} {path}", request.method());
    let (status, answer, _) = send(&fixture.io, &fixture.router, request);
    if show() {
        let answer = String::from_utf8_lossy(&answer);
        eprintln!(
            "{shown} -> {status} {}",
            answer.chars().take(160).collect::<String>().replace('\n', " ")
        );
    }
    // A logout (with the token) ends the console session the other
    // requests use: start another. The ended one is gone from the map, so
    // sessions do not pile up.
    if template == "/logout" {
        let headers = [(header::COOKIE, cookie)];
        if let Some(console) = build(Method::GET, "/console", &headers, Vec::new()) {
            let (status, _, _) = send(&fixture.io, &fixture.router, console);
            if status != 200 {
                let fresh = log_in(&fixture.io, &fixture.router);
                *fixture.session.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
            }
        }
    }
});
