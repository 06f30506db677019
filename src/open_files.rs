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
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors the process holds whatever the load: standard streams, the
/// runtimes' (HTTP, follow-ups, store writers) epoll and wake-up descriptors,
/// the signal pipe, the listener, the Discord gateway, digest posts and
/// readiness checks. 17 were open at idle
/// (sandbox, SQLite) when this was written; the rest is headroom.
pub const BASE_FILES: u64 = 64;

/// Outbound connections one follow-up holds at a time: its chat platform's.
/// Its provider connection comes from `provider.max_connections`, shared by
/// every follow-up, and is counted once for all of them.
pub const FILES_PER_COMMAND: u64 = 1;

/// Idle connections each outbound HTTP client keeps per host between requests
/// ([`http_client`]). Without a cap, every connection a burst opened would stay
/// open for the pool's idle timeout, and a burst of `max_in_flight` follow-ups
/// leaves that many on each host it touched: more than the budget counts.
/// Beyond this many, a burst's connections are closed as they come back; the
/// next burst opens them again (a TCP and TLS handshake each).
pub const IDLE_PER_HOST: usize = 32;

/// Hosts the outbound clients talk to: the provider, Slack's Web API, Slack's
/// `response_url`s and Discord's API.
pub const OUTBOUND_HOSTS: u64 = 4;

/// Descriptors the outbound clients' idle connections can hold.
pub const IDLE_FILES: u64 = IDLE_PER_HOST as u64 * OUTBOUND_HOSTS;

/// The builder every outbound HTTP client starts from, so that its idle
/// connections stay within [`IDLE_FILES`].
pub fn http_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder().pool_max_idle_per_host(IDLE_PER_HOST)
}

/// Fewer client connections than this is not a server worth starting.
pub const MIN_CONNECTIONS: u64 = 64;

/// How the open-file limit is shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The soft limit on open files.
    pub limit: u64,
    /// Descriptors kept for follow-ups, provider connections, idle outbound
    /// connections, the store and the process itself.
    pub reserved: u64,
    /// Client connections accepted at once.
    pub connections: u64,
}

/// The limit leaves too few descriptors for client connections.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the open-file limit is {limit}, and server.max_in_flight = {max_in_flight}, provider.max_connections = \
     {provider_connections} and the store can hold {reserved} of those, which leaves fewer than {min} for client connections; raise the limit \
     (ulimit -n; docker run --ulimit nofile=N:N) or set server.max_in_flight to at most {fits}",
    min = MIN_CONNECTIONS
)]
pub struct TooFew {
    limit: u64,
    max_in_flight: u32,
    provider_connections: u32,
    reserved: u64,
    fits: u64,
}

impl Budget {
    /// Shares `limit` out for a pool of `max_in_flight` follow-ups, at most
    /// `provider_connections` provider requests in flight, and a store holding
    /// up to `store_files` descriptors.
    pub fn new(limit: u64, max_in_flight: u32, provider_connections: u32, store_files: u64) -> Result<Budget, TooFew> {
        let fixed = BASE_FILES + IDLE_FILES + u64::from(provider_connections) + store_files;
        let reserved = fixed + FILES_PER_COMMAND * u64::from(max_in_flight);
        match limit.checked_sub(reserved) {
            Some(connections) if connections >= MIN_CONNECTIONS => Ok(Budget {
                limit,
                reserved,
                connections,
            }),
            _ => Err(TooFew {
                limit,
                max_in_flight,
                provider_connections,
                reserved,
                fits: limit.saturating_sub(fixed + MIN_CONNECTIONS) / FILES_PER_COMMAND,
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
    fn the_budget_reserves_follow_ups_and_the_store_and_gives_the_rest_to_clients() {
        let b = Budget::new(20_000, 256, 64, 12).unwrap();
        // The process, idle outbound connections, the store, provider requests
        // in flight, and one chat connection per follow-up.
        assert_eq!(b.reserved, 64 + 128 + 12 + 64 + 256);
        assert_eq!(b.connections, 20_000 - b.reserved);
        // Exactly the minimum left is enough; one fewer is not.
        let just = 64 + 128 + 12 + 64 + 256 + MIN_CONNECTIONS;
        assert_eq!(Budget::new(just, 256, 64, 12).unwrap().connections, MIN_CONNECTIONS);
        assert!(Budget::new(just - 1, 256, 64, 12).is_err());
        // More provider connections leave fewer for clients, one for one.
        assert_eq!(
            Budget::new(20_000, 256, 1_064, 12).unwrap().connections,
            b.connections - 1_000
        );
    }

    #[test]
    fn too_small_a_limit_says_what_to_change() {
        let e = Budget::new(20_000, 32_768, 64, 12).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("open-file limit is 20000"), "{text}");
        assert!(
            text.contains("server.max_in_flight = 32768, provider.max_connections = 64"),
            "{text}"
        );
        // 20000 - 64 - 128 - 12 - 64 - 64, and that many fits exactly.
        assert!(text.contains("at most 19668"), "{text}");
        assert!(Budget::new(20_000, 19_668, 64, 12).is_ok());
        assert!(Budget::new(20_000, 19_669, 64, 12).is_err());
        // A limit below the fixed part: nothing fits, and nothing underflows.
        assert!(Budget::new(10, 1, 64, 12)
            .unwrap_err()
            .to_string()
            .contains("at most 0"));
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

    /// A burst leaves at most `IDLE_PER_HOST` connections open behind it: the
    /// server holds every request until all are in, so the client must open one
    /// connection per request, then counts what stays open once all are answered.
    #[tokio::test]
    async fn a_burst_leaves_at_most_the_idle_cap_open() {
        const BURST: usize = IDLE_PER_HOST * 2 + 8;
        const SLOTS: usize = 1_000;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let bounded = Bounded::new(listener, SLOTS as u64);
        let slots = bounded.slots.clone();
        let slots_at_end = bounded.slots.clone();
        // Less the slot the waiting accept holds (it takes one before each accept).
        let open = move || SLOTS - slots.available_permits() - 1;
        let all_in = Arc::new(tokio::sync::Barrier::new(BURST));
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(move || {
                let all_in = all_in.clone();
                async move {
                    all_in.wait().await;
                    "ok"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(bounded, app).await });
        let client = http_client().build().unwrap();
        let url = format!("http://{address}/");
        let mut burst = tokio::task::JoinSet::new();
        for _ in 0..BURST {
            burst.spawn(client.get(&url).send());
        }
        while let Some(answer) = burst.join_next().await {
            assert!(answer.unwrap().unwrap().status().is_success());
        }
        assert!(
            open() >= BURST,
            "the burst held {} connections at once, not {BURST}",
            open()
        );
        // The client closes the surplus as each answer comes back; the server
        // sees the close when it next reads. Taking every permit but the cap's
        // (and the waiting accept's) completes once no more than the cap are
        // open. Without the cap all stay open for the pool's idle timeout (90 s)
        // and this waits out its 10 s.
        let settled = tokio::time::timeout(
            Duration::from_secs(10),
            slots_at_end.acquire_many((SLOTS - 1 - IDLE_PER_HOST) as u32),
        )
        .await;
        assert!(
            settled.is_ok(),
            "{} connections still open, cap {IDLE_PER_HOST}",
            open()
        );
        // Held to here: its idle connections are what was counted.
        drop(client);
    }
}
