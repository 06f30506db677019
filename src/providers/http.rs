//! What every HTTP provider client shares: one reqwest client with a timeout,
//! a client-side rate limiter, a retry policy that only repeats what is safe,
//! rate-limit hints, trace ids, and status-based error mapping.
//!
//! URLs are never logged or put into errors: Wawp carries its token in the query.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use jiff::Timestamp;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use url::Url;

use super::{ProviderError, ProviderErrorKind};
use crate::settings::{ProviderKind, ProviderSettings, Secret};

/// The longest a server's rate-limit hint is honoured by waiting; longer ones
/// go back to the user as "try again in …" instead of holding the request.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// Whether repeating a request could do something twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Safety {
    /// A read: retry on 429, 502, 503, 504, connect errors and timeouts.
    Read,
    /// A write (join, add, reset): retry only when it surely did not take
    /// effect: connect refused, 429, 503.
    Write,
}

/// A successful response.
#[derive(Debug)]
pub struct ApiResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The raw body.
    pub body: Vec<u8>,
    /// The provider's trace id, when it sends one.
    pub trace_id: Option<String>,
}

impl ApiResponse {
    /// Decodes the body as JSON; garbage becomes a `Malformed` error with the trace id.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            tracing::warn!(error = %e, trace_id = self.trace_id.as_deref().unwrap_or("-"), "provider sent unreadable JSON");
            ProviderError { kind: ProviderErrorKind::Malformed, trace_id: self.trace_id.clone() }
        })
    }
}

/// A request to send: method, URL, optional JSON body.
pub struct ApiRequest {
    /// The method.
    pub method: Method,
    /// The full URL (may hold a token in its query: never log it).
    pub url: Url,
    /// The JSON body, if any.
    pub body: Option<serde_json::Value>,
    /// Read or write.
    pub safety: Safety,
    /// What the request does, for logs ("add participants").
    pub what: &'static str,
}

/// Maps an error response to a kind; `None` falls back to the status mapping.
pub type ErrorMapper = fn(StatusCode, &[u8]) -> Option<ProviderErrorKind>;

/// The shared HTTP machinery of one provider account.
pub struct ApiClient {
    http: reqwest::Client,
    /// At most `provider.max_connections` requests in flight: a burst of adds
    /// reuses a few kept-alive connections instead of opening one each.
    connections: tokio::sync::Semaphore,
    base: Url,
    limiter: DefaultDirectRateLimiter,
    max_retries: u32,
    /// The account's metrics, labelled once here rather than on every call.
    metrics: CallMetrics,
    trace_header: Option<&'static str>,
    headers: HeaderMap,
    map_error: ErrorMapper,
    /// The account's secrets, cut out of any error text a provider sends back
    /// (it ends up in chat replies and logs).
    secrets: Vec<Secret>,
    /// Set when a response said the quota is used up: no request before then.
    not_before: Mutex<Option<Instant>>,
    /// The last health probe, reused for `HEALTH_TTL` so readiness probes do
    /// not spend the account's request quota.
    health: tokio::sync::Mutex<Option<(Instant, Result<(), ProviderError>)>>,
}

/// How long a health probe's answer is reused.
pub const HEALTH_TTL: Duration = Duration::from_secs(30);

/// One account's provider metrics: calls by outcome, their duration, retries
/// and 429s. Registered when the client is built, so each account's series
/// exist (at 0) before its first call, and dashboards and alerts see them.
struct CallMetrics {
    account: String,
    ok: metrics::Counter,
    error: metrics::Counter,
    seconds: metrics::Histogram,
    retries: metrics::Counter,
    rate_limited: metrics::Counter,
}

impl CallMetrics {
    fn new(account: &str, kind: ProviderKind) -> Self {
        let labels = |outcome: &'static str| {
            [
                ("account", account.to_string()),
                ("provider", kind.as_str().to_string()),
                ("outcome", outcome.to_string()),
            ]
        };
        let account_only = [("account", account.to_string())];
        // Auth failures are what the alert watches: their series exists from the start.
        metrics::counter!("waops_provider_errors_total", "account" => account.to_string(), "kind" => "auth")
            .increment(0);
        CallMetrics {
            account: account.to_string(),
            ok: metrics::counter!("waops_provider_calls_total", &labels("ok")),
            error: metrics::counter!("waops_provider_calls_total", &labels("error")),
            seconds: metrics::histogram!(
                "waops_provider_call_seconds",
                &[
                    ("account", account.to_string()),
                    ("provider", kind.as_str().to_string())
                ]
            ),
            retries: metrics::counter!("waops_provider_retries_total", &account_only),
            rate_limited: metrics::counter!("waops_provider_rate_limited_total", &account_only),
        }
    }
}

impl ApiClient {
    /// Builds the client from settings; `default_base` applies when `base_url` is empty.
    pub fn new(
        settings: &ProviderSettings,
        default_base: &str,
        headers: HeaderMap,
        trace_header: Option<&'static str>,
        map_error: ErrorMapper,
    ) -> anyhow::Result<Self> {
        let base = if settings.base_url.trim().is_empty() {
            default_base
        } else {
            settings.base_url.trim()
        };
        let base = Url::parse(base)?;
        let connections = settings.max_connections.max(1) as usize;
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(connections)
            .user_agent(concat!("waops/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let rate = NonZeroU32::new(settings.rate_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
        Ok(ApiClient {
            http,
            connections: tokio::sync::Semaphore::new(connections),
            base,
            limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            max_retries: settings.max_retries,
            metrics: CallMetrics::new(&settings.account, settings.kind),
            trace_header,
            headers,
            map_error,
            secrets: [&settings.token, &settings.access_token, &settings.webhook_secret]
                .into_iter()
                .filter(|s| !s.expose().is_empty())
                .cloned()
                .collect(),
            not_before: Mutex::new(None),
            health: tokio::sync::Mutex::new(None),
        })
    }

    /// `base_url` + path segments (each percent-encoded as one segment) + query.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().expect("http(s) base URLs have paths");
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends with pacing and retries; returns the 2xx response or the mapped error.
    pub async fn send(&self, request: ApiRequest) -> Result<ApiResponse, ProviderError> {
        let mut attempt = 0;
        loop {
            // The connection first, then the quota: a request that waited for a
            // connection must not go out on a quota granted before the wait.
            let connection = self.connections.acquire().await.expect("never closed");
            self.wait_for_quota().await;
            let mut builder = self
                .http
                .request(request.method.clone(), request.url.clone())
                .headers(self.headers.clone());
            if let Some(body) = &request.body {
                builder = builder.json(body);
            }
            let started = Instant::now();
            let outcome = match builder.send().await {
                Ok(response) => self.read(response).await,
                Err(e) => Err(e),
            };
            // Not held through a retry's backoff.
            drop(connection);
            let retries_left = attempt < self.max_retries;
            let (kind, trace_id, hint) = match outcome {
                Ok(Ok(response)) => {
                    tracing::debug!(
                        what = request.what,
                        status = response.status.as_u16(),
                        trace_id = response.trace_id.as_deref().unwrap_or("-"),
                        ms = started.elapsed().as_millis() as u64,
                        "provider call"
                    );
                    super::note_trace(response.trace_id.as_deref());
                    self.metrics.ok.increment(1);
                    self.metrics.seconds.record(started.elapsed().as_secs_f64());
                    return Ok(response);
                }
                Ok(Err((status, body, trace_id, hint))) => {
                    if status.as_u16() == 429 {
                        self.metrics.rate_limited.increment(1);
                    }
                    let retryable = match status.as_u16() {
                        429 | 503 => true,
                        502 | 504 => request.safety == Safety::Read,
                        _ => false,
                    };
                    if retryable && retries_left {
                        let delay = hint.unwrap_or_else(|| backoff(attempt));
                        if delay <= MAX_WAIT {
                            tracing::info!(
                                what = request.what,
                                status = status.as_u16(),
                                trace_id = trace_id.as_deref().unwrap_or("-"),
                                delay_ms = delay.as_millis() as u64,
                                "provider busy; retrying"
                            );
                            self.metrics.retries.increment(1);
                            tokio::time::sleep(delay).await;
                            attempt += 1;
                            continue;
                        }
                    }
                    let kind = match status.as_u16() {
                        429 => ProviderErrorKind::RateLimited(hint),
                        _ => (self.map_error)(status, &body).unwrap_or_else(|| status_kind(status, &body)),
                    };
                    (kind, trace_id, hint)
                }
                Err(e) => {
                    // Connect errors never reached the provider; a timeout on a write
                    // may have done the work, so it is not repeated.
                    let retryable = e.is_connect() || (e.is_timeout() && request.safety == Safety::Read);
                    if retryable && retries_left {
                        self.metrics.retries.increment(1);
                        tokio::time::sleep(backoff(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    let kind = if e.is_timeout() {
                        ProviderErrorKind::Timeout(request.safety == Safety::Write)
                    } else {
                        ProviderErrorKind::Transport(describe(&e))
                    };
                    (kind, None, None)
                }
            };
            let _ = hint;
            let kind = self.redacted(kind);
            self.metrics.error.increment(1);
            metrics::counter!("waops_provider_errors_total", "account" => self.metrics.account.clone(), "kind" => kind.code())
                .increment(1);
            tracing::warn!(what = request.what, error = %kind, trace_id = trace_id.as_deref().unwrap_or("-"), attempts = attempt + 1, "provider call failed");
            return Err(ProviderError { kind, trace_id });
        }
    }

    /// `kind` with the account's secrets cut out of its text.
    fn redacted(&self, kind: ProviderErrorKind) -> ProviderErrorKind {
        let cut = |mut text: String| {
            for secret in &self.secrets {
                text = text.replace(secret.expose(), "[redacted]");
            }
            text
        };
        match kind {
            ProviderErrorKind::Forbidden(text) => ProviderErrorKind::Forbidden(cut(text)),
            ProviderErrorKind::Validation(text) => ProviderErrorKind::Validation(cut(text)),
            ProviderErrorKind::Transport(text) => ProviderErrorKind::Transport(cut(text)),
            other => other,
        }
    }

    #[allow(clippy::type_complexity)]
    async fn read(
        &self,
        response: reqwest::Response,
    ) -> Result<Result<ApiResponse, (StatusCode, Vec<u8>, Option<String>, Option<Duration>)>, reqwest::Error> {
        let status = response.status();
        let headers = response.headers().clone();
        let trace_id = self
            .trace_header
            .and_then(|h| headers.get(h))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let hint = wait_hint(&headers, Timestamp::now());
        if remaining(&headers) == Some(0) {
            // The quota is spent: hold the next request until the reset the server named.
            let wait = hint.unwrap_or(Duration::from_secs(1)).min(MAX_WAIT);
            *self.not_before.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + wait);
        }
        let body = response.bytes().await?.to_vec();
        if status.is_success() {
            Ok(Ok(ApiResponse { status, body, trace_id }))
        } else {
            Ok(Err((status, body, trace_id, hint)))
        }
    }

    /// Sends `probe` at most once per `HEALTH_TTL` and returns its (cached) result.
    pub async fn health(&self, probe: ApiRequest) -> Result<(), ProviderError> {
        let mut last = self.health.lock().await;
        if let Some((at, result)) = last.as_ref() {
            if at.elapsed() < HEALTH_TTL {
                return result.clone();
            }
        }
        let result = self.send(probe).await.map(|_| ());
        *last = Some((Instant::now(), result.clone()));
        result
    }

    async fn wait_for_quota(&self) {
        let until = self.not_before.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(until) = until {
            tokio::time::sleep_until(until.into()).await;
        }
        // governor's own `until_ready` sleeps on a coarse timer thread and each
        // overshoot delays every later request; tokio's timer keeps the pace.
        while let Err(not_until) = self.limiter.check() {
            let now = governor::clock::Clock::now(self.limiter.clock());
            tokio::time::sleep(not_until.wait_time_from(now)).await;
        }
    }
}

/// Exponential backoff with jitter: half fixed, half random, capped at 8 s.
fn backoff(attempt: u32) -> Duration {
    let ceiling = (200u64 << attempt.min(6)).min(8_000);
    Duration::from_millis(ceiling / 2 + fastrand::u64(0..=ceiling / 2))
}

/// How long the server asked us to wait: `Retry-After` (seconds or HTTP date),
/// else `X-RateLimit-Reset` (seconds when below 10^9, else a Unix time).
pub fn wait_hint(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(value) = header("retry-after") {
        if let Ok(seconds) = value.parse::<f64>() {
            return (seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)));
        }
        if let Ok(at) = jiff::fmt::rfc2822::parse(value) {
            return Some(until(at.timestamp(), now));
        }
    }
    let reset = header("x-ratelimit-reset")?.parse::<f64>().ok()?;
    if reset < 0.0 {
        return None;
    }
    if reset < 1e9 {
        return Some(Duration::from_secs_f64(reset.min(86_400.0)));
    }
    let at = Timestamp::from_second(reset as i64).ok()?;
    Some(until(at, now))
}

/// The time from `now` to `at`; zero when `at` has passed.
fn until(at: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

fn remaining(headers: &HeaderMap) -> Option<u64> {
    headers.get("x-ratelimit-remaining")?.to_str().ok()?.trim().parse().ok()
}

/// The mapping every provider shares when it has no more specific one.
pub fn status_kind(status: StatusCode, body: &[u8]) -> ProviderErrorKind {
    match status.as_u16() {
        401 => ProviderErrorKind::Auth,
        403 => ProviderErrorKind::Forbidden(excerpt(body)),
        404 => ProviderErrorKind::NotFound,
        400 | 409 | 422 => ProviderErrorKind::Validation(excerpt(body)),
        429 => ProviderErrorKind::RateLimited(None),
        s => ProviderErrorKind::Upstream(s),
    }
}

/// At most 200 characters of a response body, single line, for user-facing detail.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = line.chars().take(200).collect();
    if line.chars().count() > 200 {
        cut.push('…');
    }
    if cut.is_empty() {
        "no details given".into()
    } else {
        cut
    }
}

/// A transport error without its URL (which may hold a token).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    // Belt and braces: nothing that looks like a query string leaves this function.
    match text.find('?') {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn wait_hints() {
        let now: Timestamp = "2026-11-24T12:00:00Z".parse().unwrap();
        assert_eq!(
            wait_hint(&headers(&[("retry-after", "3")]), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            wait_hint(&headers(&[("retry-after", "Tue, 24 Nov 2026 12:00:05 GMT")]), now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            wait_hint(&headers(&[("x-ratelimit-reset", "7")]), now),
            Some(Duration::from_secs(7))
        );
        let unix = now.as_second() + 9;
        assert_eq!(
            wait_hint(&headers(&[("x-ratelimit-reset", &unix.to_string())]), now),
            Some(Duration::from_secs(9))
        );
        // A reset in the past means no wait, not a negative one.
        assert_eq!(
            wait_hint(&headers(&[("x-ratelimit-reset", "1737911669")]), now),
            Some(Duration::ZERO)
        );
        // Retry-After wins over the reset header.
        assert_eq!(
            wait_hint(&headers(&[("retry-after", "1"), ("x-ratelimit-reset", "7")]), now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(wait_hint(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(wait_hint(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        for attempt in 0..10 {
            let d = backoff(attempt).as_millis() as u64;
            let ceiling = (200u64 << attempt.min(6)).min(8_000);
            assert!(d >= ceiling / 2 && d <= ceiling, "{attempt}: {d}");
        }
    }

    #[test]
    fn excerpts_are_short_single_lines() {
        assert_eq!(excerpt(b"bad\n  input"), "bad input");
        assert_eq!(excerpt(b""), "no details given");
        assert_eq!(excerpt("x".repeat(300).as_bytes()).chars().count(), 201);
    }
}
