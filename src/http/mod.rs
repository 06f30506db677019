//! The HTTP surface of `waops serve`: health, readiness, metrics, and the layers
//! every route shares (request ids, tracing, body limit). Slack and Discord
//! routes join here in their own modules.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tracing::Instrument as _;

use crate::core::Context;
use crate::settings::ServerSettings;
use crate::workers::Workers;

mod connection;

/// The request-id header set on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the router `waops serve` runs; chat routes join when their secrets are set.
pub fn router(
    ctx: Context,
    workers: Workers,
    discord: Option<std::sync::Arc<crate::adapters::discord::Discord>>,
) -> anyhow::Result<Router> {
    let limits = BodyLimits {
        max_bytes: ctx.settings.server.max_body_bytes,
        timeout: ctx.settings.server.body_timeout,
    };
    // Install the recorder now, so counts from before the first scrape are kept.
    crate::telemetry::metrics();
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ctx.clone());
    if let Some(webhooks) = crate::adapters::webhooks::router(ctx.clone()) {
        router = router.merge(webhooks);
    }
    if let Some(slack) = crate::adapters::slack::router(ctx.clone(), workers.clone())? {
        router = router.merge(slack);
    }
    if let Some(discord) = crate::adapters::discord::router(discord) {
        router = router.merge(discord);
    }
    Ok(router.layer(middleware::from_fn_with_state(limits, every_request)))
}

/// What a request's body may be: its size, and how long it may take to arrive.
#[derive(Clone, Copy)]
struct BodyLimits {
    max_bytes: usize,
    timeout: Duration,
}

/// When the body of the request carrying it must have arrived.
#[derive(Clone, Copy)]
struct BodyDeadline(tokio::time::Instant);

/// Clients waiting in the kernel while `server.max_connections` are served.
/// Tokio's `TcpListener::bind` leaves it at 128, which a burst of Slack retries
/// fills; a client beyond the backlog waits seconds for its SYN to be retried.
pub const BACKLOG: u32 = 1024;

/// Listens on `bind` (`server.bind`, validated as HOST:PORT at load).
pub fn listen(bind: &str) -> std::io::Result<tokio::net::TcpListener> {
    let address: std::net::SocketAddr = bind
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As Tokio's own bind does: a restarted server can take its port at once.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for the
/// open connections' requests to finish (the caller bounds that wait).
///
/// hyper's own connection builder rather than `axum::serve`: it is the one with
/// a header-read timer, so a client that connects and sends nothing (or
/// trickles a header, or idles on a kept-alive connection) cannot hold a
/// connection open ([`connection`] sets the deadlines). At most
/// `server.max_connections` are served at once; more wait in the kernel's
/// listen backlog, so a flood of connections cannot take the file descriptors
/// the store and the outbound clients need.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    settings: &ServerSettings,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;

    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(settings.max_connections.max(1) as usize));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = async {
                let slot = slots.clone().acquire_owned().await.expect("never closed");
                (slot, listener.accept().await)
            } => accepted,
        };
        let (slot, stream) = match accepted {
            (slot, Ok((stream, _))) => (slot, stream),
            (_, Err(e)) => {
                // Out of descriptors, or a connection reset before accept:
                // wait a moment rather than spin, and keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (stream, timer) = connection::timed(stream, settings.header_timeout, settings.idle_timeout);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(timer)
            .header_read_timeout(settings.header_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let connection = graceful.watch(connection);
        metrics::gauge!("waops_http_connections").increment(1.0);
        tokio::spawn(async move {
            // Errors here are the client's (reset, timed out); nothing to answer.
            let _ = connection.await;
            metrics::gauge!("waops_http_connections").decrement(1.0);
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the store and the provider answer. Unauthenticated, so it names
/// which dependency failed and how (the provider error's kind), never the
/// error's text: that goes to the log.
async fn readyz(State(ctx): State<Context>) -> Response {
    let budget = Duration::from_secs(2);
    let store = tokio::time::timeout(budget, ctx.store.ping()).await;
    // Every account's provider, at once.
    let several = ctx.accounts.several();
    let accounts = ctx.accounts.all().iter().map(|a| async move {
        let name = match several {
            true => format!("provider {}", a.name),
            false => "provider".to_string(),
        };
        (name, tokio::time::timeout(budget, a.provider.health()).await)
    });
    let providers = futures_util::future::join_all(accounts).await;
    let mut reasons = Vec::new();
    let store_up = metrics::gauge!("waops_store_up");
    match store {
        Ok(Ok(())) => store_up.set(1.0),
        Ok(Err(e)) => {
            store_up.set(0.0);
            tracing::warn!(error = format!("{e:#}"), "readiness: store failed");
            reasons.push("store: unavailable".to_string());
        }
        Err(_) => {
            store_up.set(0.0);
            reasons.push("store: no answer within 2s".into());
        }
    }
    for (name, health) in providers {
        match health {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e.kind, account = %name, "readiness: provider failed");
                reasons.push(format!("{name}: {}", e.kind.code()));
            }
            Err(_) => reasons.push(format!("{name}: no answer within 2s")),
        }
    }
    if reasons.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", reasons.join("; ")),
        )
            .into_response()
    }
}

async fn metrics() -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        crate::telemetry::metrics().render(),
    )
}

/// Everything each request gets, in one middleware: its request id (the
/// caller's `x-request-id`, else a new one; on the request, where handlers read
/// it with [`request_id`], and on the response), the `http` span its log lines
/// carry, the body limit, the `Server-Timing` header and the request metrics.
///
/// tower-http's request-id, trace and body-limit layers and a metrics
/// middleware did this as five layers, and every layer on a `Router` wraps each
/// route in a boxed service of its own: a clone and a boxed future per layer
/// per request. One layer costs that once.
async fn every_request(State(limits): State<BodyLimits>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    req.extensions_mut()
        .insert(BodyDeadline(tokio::time::Instant::now() + limits.timeout));
    let id = match req.headers().get(&REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            // Hyphenated, as tower-http's `MakeRequestUuid` made them before.
            let mut text = uuid::Uuid::encode_buffer();
            let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
            let id = HeaderValue::from_str(text).expect("a UUID is a valid header value");
            req.headers_mut().insert(REQUEST_ID, id.clone());
            id
        }
    };
    // A clone of the matched route is a shared string's, not a copy.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    // The route's pattern, not the path: a webhook's path holds its secret.
    let span = tracing::info_span!(
        "http",
        method = %req.method(),
        route = %route,
        request_id = id.to_str().unwrap_or("-"),
    );
    let mut response = if declared_length(&req).is_some_and(|n| n > limits.max_bytes) {
        // Refused before a byte of the body is read.
        body_too_large()
    } else {
        let req = req.map(|body| Body::new(http_body_util::Limited::new(body, limits.max_bytes)));
        next.run(req).instrument(span.clone()).await
    };
    let elapsed = started.elapsed();
    let status = response.status();
    if status.is_server_error() {
        span.in_scope(|| {
            tracing::error!(
                status = status.as_u16(),
                latency_ms = elapsed.as_millis() as u64,
                "response failed"
            )
        });
    }
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID, id);
    // Server-side time of this request (the standard Server-Timing header), so
    // load tests can tell the server's share from the client's and network's.
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={:.3}", elapsed.as_secs_f64() * 1000.0)) {
        headers.insert("server-timing", value);
    }
    record(route, status, elapsed);
    response
}

/// Counts a request and records its duration, by route and status.
///
/// The handles are kept per thread: looking a labelled metric up in the
/// recorder builds its key, allocates its labels and hashes them on every
/// request. Routes are patterns, so the list stays short (routes × statuses).
fn record(route: &str, status: StatusCode, elapsed: Duration) {
    type Handles = Vec<(String, StatusCode, metrics::Counter, metrics::Histogram)>;
    thread_local! {
        static HANDLES: std::cell::RefCell<Handles> = const { std::cell::RefCell::new(Vec::new()) };
    }
    HANDLES.with_borrow_mut(|handles| {
        let at = match handles.iter().position(|(r, s, ..)| *s == status && r == route) {
            Some(at) => at,
            None => {
                handles.push((
                    route.to_string(),
                    status,
                    metrics::counter!(
                        "waops_http_requests_total",
                        "route" => route.to_string(),
                        "status" => status.as_u16().to_string()
                    ),
                    metrics::histogram!("waops_http_request_duration_seconds", "route" => route.to_string()),
                ));
                handles.len() - 1
            }
        };
        let (_, _, requests, duration) = &handles[at];
        requests.increment(1);
        duration.record(elapsed.as_secs_f64());
    });
}

/// A request's headers and whole body, moved out of the request, for the
/// signed routes (Slack, Discord, provider webhooks) that read both.
///
/// axum's `HeaderMap` extractor clones the headers, every value with them, so
/// a handler that only reads them paid a map's allocations per request. The
/// body is read as the `Bytes` extractor reads it, with the same refusals,
/// and 408 when it has not all arrived by the request's body deadline.
pub struct HeadersAndBody(pub axum::http::HeaderMap, pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for HeadersAndBody {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let read = axum::body::Bytes::from_request(Request::new(body), state);
        let body = match parts.extensions.get::<BodyDeadline>() {
            Some(BodyDeadline(deadline)) => tokio::time::timeout_at(*deadline, read).await.map_err(|_| {
                // The rest of a late body may still be arriving: close rather
                // than read it to find the next request.
                (
                    StatusCode::REQUEST_TIMEOUT,
                    [(axum::http::header::CONNECTION, "close")],
                    "request body not received in time\n",
                )
                    .into_response()
            })?,
            None => read.await,
        };
        Ok(HeadersAndBody(
            parts.headers,
            body.map_err(IntoResponse::into_response)?,
        ))
    }
}

/// The request id `every_request` put on the request; a fresh one where the
/// caller's is not text (header values may hold other bytes).
pub fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(&REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .map_or_else(crate::core::new_request_id, str::to_string)
}

/// The length a request declares, when it declares one.
fn declared_length(req: &Request) -> Option<usize> {
    req.headers()
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn body_too_large() -> Response {
    (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response()
}
