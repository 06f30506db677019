//! The HTTP surface of `waops serve`: health, readiness, metrics, and the layers
//! every route shares (request ids, tracing, body limit). Slack and Discord
//! routes join here in their own modules.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::core::Context;
use crate::workers::Workers;

/// The request-id header set on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the router `waops serve` runs; chat routes join when their secrets are set.
pub fn router(
    ctx: Context,
    workers: Workers,
    discord: Option<std::sync::Arc<crate::adapters::discord::Discord>>,
) -> anyhow::Result<Router> {
    let max_body = ctx.settings.server.max_body_bytes;
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
    Ok(router
        .layer(middleware::from_fn(count_requests))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .extensions()
                .get::<RequestId>()
                .and_then(|id| id.header_value().to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid)))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(ctx): State<Context>) -> Response {
    let budget = Duration::from_secs(2);
    let store = tokio::time::timeout(budget, ctx.store.ping()).await;
    let provider = tokio::time::timeout(budget, ctx.provider.health()).await;
    let mut reasons = Vec::new();
    match store {
        Ok(Ok(())) => {}
        Ok(Err(e)) => reasons.push(format!("store: {e:#}")),
        Err(_) => reasons.push("store: no answer within 2s".into()),
    }
    match provider {
        Ok(Ok(())) => {}
        Ok(Err(e)) => reasons.push(format!("provider: {e}")),
        Err(_) => reasons.push("provider: no answer within 2s".into()),
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

async fn count_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let mut response = next.run(req).await;
    let elapsed = started.elapsed();
    // Server-side time of this request (the standard Server-Timing header), so
    // load tests can tell the server's share from the client's and network's.
    if let Ok(value) = axum::http::HeaderValue::from_str(&format!("app;dur={:.3}", elapsed.as_secs_f64() * 1000.0)) {
        response.headers_mut().insert("server-timing", value);
    }
    let status = response.status().as_u16().to_string();
    metrics::counter!("waops_http_requests_total", "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("waops_http_request_duration_seconds", "route" => route).record(elapsed.as_secs_f64());
    response
}
