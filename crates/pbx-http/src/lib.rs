//! pbxd's HTTP side (FEATURES.md §8, §11) on `http.listen`: `/healthz`,
//! `/metrics` in Prometheus text format, and click-to-dial
//! (`/remote_call.htm`). Call records and the web console are to come here
//! (issue 10).
//!
//! It runs on the executor that runs SMTP and HTTP clients
//! (`Runtime::io`), never on a shard: a request reads counters the
//! runtime, the SIP side and the media engine keep, and never touches a
//! task's values.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use pbx_media::MediaEngine;
use pbx_runtime::admission::Admission;
use pbx_runtime::shard::ShardSpawner;
use pbx_runtime::Runtime;
use pbx_sip::SipNetwork;

mod click;
mod console;
mod metrics;
mod parlay;
mod records;
mod tls;

/// What the pages read, and how they start tasks.
pub struct Sources {
    pub runtime: Runtime,
    pub admission: Arc<Admission>,
    pub sip: Arc<SipNetwork>,
    pub media: Option<MediaEngine>,
    /// What tasks did and what went wrong (the runtime's observer).
    pub events: Arc<pbx_runtime::observe::EventCounts>,
    /// Runs work on the shards (tasks start there).
    pub spawner: ShardSpawner,
    /// The shard the next task starts on (in turn).
    pub next: std::sync::atomic::AtomicUsize,
    /// Who is logged in to the console.
    pub sessions: Sessions,
}

pub use console::Sessions;

impl Sources {
    /// The shard to start the next task on.
    fn next_shard(&self) -> usize {
        let next = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        next % self.spawner.count().max(1)
    }
}

/// Marks a request that came over HTTPS (Basic credentials are taken
/// only there).
#[derive(Clone, Copy, Debug)]
#[doc(hidden)]
pub struct Secure;

/// For the fuzz target `http` (`fuzz/`): the pages without a server, and
/// the mark of a request that came over HTTPS. Not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::Secure;

    /// The router `start` serves.
    pub fn router(sources: std::sync::Arc<crate::Sources>) -> axum::Router {
        crate::router(sources)
    }
}

/// The HTTP server, serving until stopped (or dropped).
pub struct HttpServer {
    local: SocketAddr,
    tls: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<std::sync::mpsc::Receiver<()>>,
}

impl HttpServer {
    /// Where it listens (the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Its address as a URL: `http://` or `https://`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local)
    }

    /// Stops taking connections, lets the requests in progress finish (up
    /// to five seconds), and returns.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.recv_timeout(std::time::Duration::from_secs(5));
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Binds `listen` and serves on the runtime's I/O executor: HTTPS when
/// `http.tls_cert` and `http.tls_key` are set.
pub fn start(listen: SocketAddr, sources: Sources) -> std::io::Result<HttpServer> {
    let http = &sources.runtime.config.http;
    let acceptor = match (&http.tls_cert, &http.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key).map_err(std::io::Error::other)?),
        (None, None) => None,
        _ => {
            return Err(std::io::Error::other(
                "set both http.tls_cert and http.tls_key, or neither",
            ))
        }
    };
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let io = sources.runtime.io.clone();
    let tls = acceptor.is_some();
    let limits = tls::Limits {
        per_source: http.connections_per_source.max(1),
        total: http.max_connections.max(1),
        header_timeout: std::time::Duration::from_secs(http.header_timeout_seconds.max(1)),
        requests_per_second: http.requests_per_source_per_second,
    };
    let router = router(Arc::new(sources));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (finished, done) = std::sync::mpsc::channel();
    io.spawn(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, "the HTTP listener does not work");
                return;
            }
        };
        tls::serve(listener, acceptor, router, stopped, limits).await;
        let _ = finished.send(());
    });
    Ok(HttpServer {
        local,
        tls,
        stop: Some(stop),
        done: Some(done),
    })
}

/// The pages.
fn router(sources: Arc<Sources>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .route("/remote_call.htm", get(click::remote_call))
        .route("/api/cdr", get(records::page))
        .route("/api/cdr.csv", get(records::page))
        .route("/ParlayX/{service}", get(parlay::description).post(parlay::soap))
        .route("/api/{api}/{operation}", axum::routing::post(parlay::json_api))
        .route("/", get(console::home))
        .route("/login", get(console::login_page).post(console::login))
        .route("/logout", axum::routing::post(console::logout))
        .route("/console", get(console::console))
        .route("/console/dial", axum::routing::post(console::dial))
        .route("/console/end", axum::routing::post(console::end))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(bounded))
        .with_state(sources)
}

/// The most a request line's target and its headers may take.
const LONGEST_TARGET: usize = 8 * 1024;
const LARGEST_HEADERS: usize = 16 * 1024;

/// Refuses what is too large before any page sees it: a target over
/// 8 KB (414), headers over 16 KB (431).
async fn bounded(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let text = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if request.uri().to_string().len() > LONGEST_TARGET {
        return (
            StatusCode::URI_TOO_LONG,
            text,
            "the address is longer than 8 KB\n",
        )
            .into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > LARGEST_HEADERS {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            text,
            "the headers are larger than 16 KB\n",
        )
            .into_response();
    }
    next.run(request).await
}

/// 200 while pbxd takes calls; 503 once it is stopping.
async fn healthz(axum::extract::State(sources): axum::extract::State<Arc<Sources>>) -> impl IntoResponse {
    let text = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if sources.admission.draining() {
        (StatusCode::SERVICE_UNAVAILABLE, text, "stopping\n")
    } else {
        (StatusCode::OK, text, "ok\n")
    }
}

async fn metrics_page(
    axum::extract::State(sources): axum::extract::State<Arc<Sources>>,
) -> impl IntoResponse {
    match metrics::render(&sources) {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        ),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("metrics could not be written: {error}\n"),
        ),
    }
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "no such page\n",
    )
}
