//! Open files: the budget `waops serve` keeps to, and a listener that keeps to it.
//!
//! Every client connection, every outbound connection and every SQLite file is
//! one descriptor. If a flood of client connections took them all, accepted
//! commands would fail later, when SQLite cannot open its files or the provider
//! connection cannot be made. So `serve` raises its soft limit to the hard one,
//! reserves what follow-ups and the store can hold, and accepts at most the rest
//! as client connections. Clients beyond that wait in the kernel's listen
//! backlog (bounded) until a connection closes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

/// Descriptors the process holds whatever the load: standard streams, the
/// runtimes' (HTTP, follow-ups, store writers) epoll and wake-up descriptors,
/// the signal pipe, the listener, the Discord gateway, digest posts and
/// readiness checks. 17 were open at idle
/// (sandbox, SQLite) when this was written; the rest is headroom.
pub const BASE_FILES: u64 = 64;

/// Requests each chat platform's client (Slack's, Discord's) has in flight at
/// once. Follow-ups beyond it wait their turn, so the number of follow-ups in
/// flight (`server.max_in_flight`) costs no descriptors of its own.
pub const CHAT_CONNECTIONS: u32 = 64;

/// Descriptors an [`Outbound`] of `connections` can hold when it talks to
/// `hosts` hosts: its requests in flight, and as many idle on each host.
pub const fn outbound_files(connections: u32, hosts: u64) -> u64 {
    connections as u64 * (1 + hosts)
}

/// Descriptors the chat clients can hold: Slack's (its Web API and its
/// `response_url`s) and Discord's (its API).
pub const CHAT_FILES: u64 = outbound_files(CHAT_CONNECTIONS, 2) + outbound_files(CHAT_CONNECTIONS, 1);

/// An outbound HTTP client that keeps its connections to a count: at most
/// `connections` requests in flight, and as many idle connections per host
/// between them. HTTP/1.1 carries one request per connection, so without the
/// bound a burst of follow-ups opens a connection each (a TCP and TLS handshake)
/// and the pool closes all but its idle few afterwards; with it, a burst reuses
/// the same connections and the rest wait their turn, first come first served.
pub struct Outbound {
    http: reqwest::Client,
    slots: Semaphore,
}

impl Outbound {
    /// Builds the client from `builder`, bounded to `connections` (at least 1).
    pub fn new(builder: reqwest::ClientBuilder, connections: u32) -> reqwest::Result<Outbound> {
        let connections = connections.max(1) as usize;
        Ok(Outbound {
            http: builder.pool_max_idle_per_host(connections).build()?,
            slots: Semaphore::new(connections),
        })
    }

    /// Waits for a connection of the count. Hold it while the request is sent
    /// and its answer read, and give it back before waiting to retry.
    pub async fn slot(&self) -> SemaphorePermit<'_> {
        self.slots.acquire().await.expect("the semaphore is never closed")
    }

    /// The client, to build requests with; send them holding a [`slot`](Self::slot).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// Fewer client connections than this is not a server worth starting.
pub const MIN_CONNECTIONS: u64 = 64;

/// How the open-file limit is shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The soft limit on open files.
    pub limit: u64,
    /// Descriptors kept for outbound connections, the store and the process itself.
    pub reserved: u64,
    /// Client connections accepted at once.
    pub connections: u64,
}

/// The limit leaves too few descriptors for client connections.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the open-file limit is {limit}, and provider.max_connections = {provider_connections}, the chat \
     platforms' connections and the store can hold {reserved} of those, which leaves fewer than {min} for client \
     connections; raise the limit (ulimit -n; docker run --ulimit nofile=N:N) or set provider.max_connections \
     to at most {fits}",
    min = MIN_CONNECTIONS
)]
pub struct TooFew {
    limit: u64,
    provider_connections: u32,
    reserved: u64,
    fits: u64,
}

impl Budget {
    /// Shares `limit` out for a provider client of `provider_connections`
    /// ([`Outbound`]: that many in flight and as many idle) and a store holding
    /// up to `store_files` descriptors.
    pub fn new(limit: u64, provider_connections: u32, store_files: u64) -> Result<Budget, TooFew> {
        let fixed = BASE_FILES + CHAT_FILES + store_files;
        let reserved = fixed + outbound_files(provider_connections, 1);
        match limit.checked_sub(reserved) {
            Some(connections) if connections >= MIN_CONNECTIONS => Ok(Budget {
                limit,
                reserved,
                connections,
            }),
            _ => Err(TooFew {
                limit,
                provider_connections,
                reserved,
                fits: limit.saturating_sub(fixed + MIN_CONNECTIONS) / outbound_files(1, 1),
            }),
        }
    }
}

/// Raises the soft open-file limit as far as the hard one allows. Returns the
/// soft limit before and after (the same when it could not be raised).
pub fn raise_limit() -> (u64, u64) {
    let before = limit();
    let after = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(before);
    (before, after)
}

/// The soft open-file limit now (`u64::MAX` where there is none).
pub fn limit() -> u64 {
    #[cfg(unix)]
    {
        rlimit::Resource::NOFILE.get().map_or(u64::MAX, |(soft, _)| soft)
    }
    #[cfg(not(unix))]
    {
        u64::MAX
    }
}

/// Connections the kernel holds for `serve` before they are accepted. The
/// kernel's default from `listen` callers is 128 (std's and Tokio's); when the
/// connection budget is reached this backlog is where clients wait, so it is
/// longer. Linux caps it at `net.core.somaxconn` (4,096 by default).
pub const BACKLOG: u32 = 1024;

/// Listens on `bind` (`host:port`) with a backlog of [`BACKLOG`].
pub async fn listen(bind: &str) -> io::Result<TcpListener> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "the address resolves to nothing");
    for address in tokio::net::lookup_host(bind).await? {
        let socket = if address.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As Tokio's own bind does: a restarted server can take its port at once.
        socket.set_reuseaddr(true)?;
        match socket.bind(address).and_then(|()| socket.listen(BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A TCP listener that holds at most `connections` accepted connections open.
pub struct Bounded {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    last_warned: Option<Instant>,
}

/// How often "client connections at the limit" may be logged.
const WARN_EVERY: Duration = Duration::from_secs(60);

impl Bounded {
    /// Wraps `inner`; `connections` is clamped to what a semaphore can count.
    pub fn new(inner: TcpListener, connections: u64) -> Bounded {
        let permits = usize::try_from(connections)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Bounded {
            inner,
            slots: Arc::new(Semaphore::new(permits)),
            last_warned: None,
        }
    }

    /// Connections that could still be accepted now.
    pub fn free(&self) -> usize {
        self.slots.available_permits()
    }

    async fn slot(&mut self) -> OwnedSemaphorePermit {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return permit;
        }
        metrics::counter!("waops_http_connection_waits_total").increment(1);
        if self.last_warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            self.last_warned = Some(Instant::now());
            tracing::warn!(
                "client connections at the limit the open-file budget allows; new ones wait until one closes"
            );
        }
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}

impl axum::serve::Listener for Bounded {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        // The slot first: a connection not accepted stays in the kernel's backlog
        // and costs no descriptor.
        let slot = self.slot().await;
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        metrics::gauge!("waops_http_connections_open").increment(1.0);
        (Counted { io, _slot: slot }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An accepted connection; its slot is free again when it is dropped.
pub struct Counted {
    io: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Counted {
    fn drop(&mut self) {
        metrics::gauge!("waops_http_connections_open").decrement(1.0);
    }
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_reserves_outbound_connections_and_the_store_and_gives_the_rest_to_clients() {
        let b = Budget::new(20_000, 64, 12).unwrap();
        // The process, the chat clients (64 in flight each, 64 idle on each of
        // three hosts), the store, the provider's 64 in flight and 64 idle.
        assert_eq!(b.reserved, 64 + 320 + 12 + 128);
        assert_eq!(b.connections, 20_000 - b.reserved);
        // Exactly the minimum left is enough; one fewer is not.
        let just = 64 + 320 + 12 + 128 + MIN_CONNECTIONS;
        assert_eq!(Budget::new(just, 64, 12).unwrap().connections, MIN_CONNECTIONS);
        assert!(Budget::new(just - 1, 64, 12).is_err());
        // A provider connection costs two descriptors: in flight and idle.
        assert_eq!(
            Budget::new(20_000, 1_064, 12).unwrap().connections,
            b.connections - 2_000
        );
    }

    #[test]
    fn too_small_a_limit_says_what_to_change() {
        let e = Budget::new(1_000, 400, 12).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("open-file limit is 1000"), "{text}");
        assert!(text.contains("provider.max_connections = 400"), "{text}");
        // (1000 - 64 - 320 - 12 - 64) / 2, and that many fits exactly.
        assert!(text.contains("at most 270"), "{text}");
        assert!(Budget::new(1_000, 270, 12).is_ok());
        assert!(Budget::new(1_000, 271, 12).is_err());
        // A limit below the fixed part: nothing fits, and nothing underflows.
        assert!(Budget::new(10, 1, 12).unwrap_err().to_string().contains("at most 0"));
    }

    #[tokio::test]
    async fn the_listener_accepts_no_more_than_its_slots_until_one_closes() {
        use axum::serve::Listener as _;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut bounded = Bounded::new(listener, 2);
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(address).await.unwrap());
        }
        let first = bounded.accept().await.0;
        let _second = bounded.accept().await.0;
        assert_eq!(bounded.free(), 0);
        // The third client is connected (in the backlog) but not accepted while both slots are held.
        let third = tokio::time::timeout(Duration::from_millis(200), bounded.accept()).await;
        assert!(third.is_err(), "a third connection was accepted with two slots");
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(10), bounded.accept()).await;
        assert!(third.is_ok(), "the freed slot let the waiting connection in");
        assert_eq!(bounded.free(), 0);
    }

    /// A burst of requests through an [`Outbound`] of `CAP` has at most `CAP` in
    /// flight at the server, reuses its connections instead of opening one per
    /// request, and leaves at most `CAP` open behind it.
    #[tokio::test]
    async fn an_outbound_burst_holds_its_count_and_reuses_its_connections() {
        const CAP: u32 = 4;
        const BURST: usize = 64;
        const SLOTS: usize = 1_000;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let bounded = Bounded::new(listener, SLOTS as u64);
        let slots = bounded.slots.clone();
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most_in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most_open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let app = {
            let (in_flight, most_in_flight, most_open, slots) = (
                in_flight.clone(),
                most_in_flight.clone(),
                most_open.clone(),
                slots.clone(),
            );
            axum::Router::new().route(
                "/",
                axum::routing::get(move || {
                    let (in_flight, most_in_flight, most_open, slots) = (
                        in_flight.clone(),
                        most_in_flight.clone(),
                        most_open.clone(),
                        slots.clone(),
                    );
                    async move {
                        use std::sync::atomic::Ordering::SeqCst;
                        let now = in_flight.fetch_add(1, SeqCst) + 1;
                        most_in_flight.fetch_max(now, SeqCst);
                        // Less the slot the waiting accept holds.
                        most_open.fetch_max(SLOTS - slots.available_permits() - 1, SeqCst);
                        // Let the other requests pile up behind this one.
                        for _ in 0..8 {
                            tokio::task::yield_now().await;
                        }
                        in_flight.fetch_sub(1, SeqCst);
                        "ok"
                    }
                }),
            )
        };
        tokio::spawn(async move { axum::serve(bounded, app).await });
        let client = Arc::new(Outbound::new(reqwest::Client::builder(), CAP).unwrap());
        let url = format!("http://{address}/");
        let mut burst = tokio::task::JoinSet::new();
        for _ in 0..BURST {
            let (client, url) = (client.clone(), url.clone());
            burst.spawn(async move {
                let _slot = client.slot().await;
                client.http().get(&url).send().await?.text().await
            });
        }
        while let Some(answer) = burst.join_next().await {
            assert_eq!(answer.unwrap().unwrap(), "ok");
        }
        use std::sync::atomic::Ordering::SeqCst;
        let (most_in_flight, most_open) = (most_in_flight.load(SeqCst), most_open.load(SeqCst));
        assert!(
            most_in_flight <= CAP as usize,
            "{most_in_flight} requests in flight at once, cap {CAP}"
        );
        // A request that found no idle connection opens one; if another comes
        // back first it takes that, and the new one joins the idle ones. So a
        // few more than the cap may be open for a moment, never one per request.
        assert!(
            most_open <= 2 * CAP as usize,
            "{most_open} connections open at once for {BURST} requests, cap {CAP}"
        );
        // What the burst left open settles to the idle cap: taking every permit
        // but the cap's (and the waiting accept's) completes once no more are open.
        let settled = tokio::time::timeout(
            Duration::from_secs(10),
            slots.acquire_many((SLOTS - 1 - CAP as usize) as u32),
        )
        .await;
        assert!(
            settled.is_ok(),
            "{} connections still open, cap {CAP}",
            SLOTS - 1 - slots.available_permits()
        );
        drop(client);
    }
}
