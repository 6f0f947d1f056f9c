//! The server's connections: HTTPS (issue 10) when `http.tls_cert` and
//! `http.tls_key` are set (rustls), plain HTTP otherwise, each connection
//! served by hyper (HTTP/1.1) with the same pages, within limits on
//! connections per address and in all, and on how long headers take.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio_rustls::TlsAcceptor;

/// The TLS side of the server, from the certificate chain and key files
/// (`http.tls_cert`, `http.tls_key`).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let config = pbx_runtime::tls::server_config(cert, key, "http")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Limits on the server's connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once from one address; more are closed at once.
    pub per_source: usize,
    /// Connections open at once in all.
    pub total: usize,
    /// A request's headers must have come whole within this (slow-loris
    /// connections are closed), also between requests on a kept-alive
    /// connection; a TLS handshake must be over within it too.
    pub header_timeout: std::time::Duration,
    /// Requests a second from one address (0: no limit); past it a
    /// request gets 429 and its connection is closed, and new connections
    /// from there are closed as they come until that second is over.
    pub requests_per_second: u32,
}

/// Requests counted per address in windows of a second.
#[derive(Default)]
struct Requests {
    counts: Mutex<HashMap<IpAddr, (std::time::Instant, u32)>>,
}

impl Requests {
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

    /// Counts a request from `source`: whether it is past `limit`.
    fn over(&self, source: IpAddr, limit: u32) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.len() > 10_000 {
            counts.retain(|_, (since, _)| since.elapsed() < Self::WINDOW);
        }
        let entry = counts.entry(source).or_insert((std::time::Instant::now(), 0));
        if entry.0.elapsed() >= Self::WINDOW {
            *entry = (std::time::Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 > limit
    }

    /// Whether `source` went past `limit` in its current second.
    fn blocked(&self, source: IpAddr, limit: u32) -> bool {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts
            .get(&source)
            .is_some_and(|(since, count)| since.elapsed() < Self::WINDOW && *count > limit)
    }
}

/// The answer past the request limit: 429, and the connection closed.
fn too_many() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        [
            (axum::http::header::RETRY_AFTER, "1"),
            (axum::http::header::CONNECTION, "close"),
        ],
        "too many requests from your address; try again in a second\n",
    )
        .into_response()
}

/// Connections refused by [`Limits`] since pbxd started (the metrics).
pub static REFUSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many connections are open, by address and in all.
#[derive(Default)]
struct Open {
    by_source: HashMap<IpAddr, usize>,
    total: usize,
}

/// A connection's place in [`Open`], given back when it ends.
struct Place {
    open: Arc<Mutex<Open>>,
    source: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_source.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_source.remove(&self.source);
            }
        }
    }
}

/// Serves `router` on `listener` until `stopped`, over TLS when given an
/// acceptor: each connection by hyper (HTTP/1.1), within `limits`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: Option<TlsAcceptor>,
    router: Router,
    stopped: tokio::sync::oneshot::Receiver<()>,
    limits: Limits,
) {
    let mut stopped = std::pin::pin!(stopped);
    let open = Arc::new(Mutex::new(Open::default()));
    let requests = Arc::new(Requests::default());
    let limit = limits.requests_per_second;
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::debug!(%error, "an HTTP connection was not accepted");
                    // Out of file descriptors, say: not a busy loop.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let place = {
            let mut counts = open.lock().unwrap_or_else(PoisonError::into_inner);
            let here = counts.by_source.get(&peer.ip()).copied().unwrap_or(0);
            let flooding = limit > 0 && requests.blocked(peer.ip(), limit);
            if here >= limits.per_source || counts.total >= limits.total || flooding {
                drop(counts);
                REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(%peer, "HTTP connection refused: too many open");
                continue;
            }
            *counts.by_source.entry(peer.ip()).or_default() += 1;
            counts.total += 1;
            Place {
                open: open.clone(),
                source: peer.ip(),
            }
        };
        let mut service = router
            .clone()
            .layer(axum::Extension(ConnectInfo::<SocketAddr>(peer)));
        if acceptor.is_some() {
            service = service.layer(axum::Extension(crate::Secure));
        }
        if limit > 0 {
            let (requests, source) = (requests.clone(), peer.ip());
            service = service.layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let over = requests.over(source, limit);
                    async move {
                        if over {
                            tracing::debug!(%source, "HTTP request refused: too many a second");
                            return too_many();
                        }
                        next.run(request).await
                    }
                },
            ));
        }
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _place = place;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let service = TowerToHyperService::new(service);
            let served = match acceptor {
                Some(acceptor) => {
                    // A handshake that never ends must not hold the task for ever.
                    let handshake = tokio::time::timeout(limits.header_timeout, acceptor.accept(stream));
                    let tls = match handshake.await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    builder.serve_connection(TokioIo::new(tls), service).await
                }
                None => builder.serve_connection(TokioIo::new(stream), service).await,
            };
            if let Err(error) = served {
                tracing::debug!(%peer, %error, "HTTP connection ended");
            }
        });
    }
}
