//! The two read deadlines of a client connection: a request head must arrive
//! within `server.header_timeout_s` of its first byte (of the connection, for
//! its first request), and a kept-alive connection may wait
//! `server.idle_timeout_s` for the next request.
//!
//! hyper's http1 server has one timer for both: `header_read_timeout` starts
//! when it begins waiting for a head, so on a kept-alive connection it also
//! times the idle wait, and 10 s for a trickled head would mean 10 s of
//! keep-alive. The timer given to hyper here tells the two apart by whether a
//! byte has arrived since the wait began, which the connection's reader counts.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from one connection, and the request heads waited for on it.
#[derive(Default)]
struct Activity {
    bytes: AtomicU64,
    heads: AtomicU64,
}

/// A client stream that counts the bytes read from it.
pub struct Counted<T> {
    inner: T,
    activity: Arc<Activity>,
}

/// The stream to serve and the timer to give hyper's connection builder, which
/// must be set to time heads (`header_read_timeout`, any value: this timer
/// picks the deadline).
pub fn timed<T>(stream: T, head: Duration, idle: Duration) -> (Counted<T>, HeadTimer) {
    let activity = Arc::new(Activity::default());
    (
        Counted {
            inner: stream,
            activity: activity.clone(),
        },
        HeadTimer { activity, head, idle },
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            this.activity.bytes.fetch_add(read as u64, Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// hyper's timer for one connection (hyper's http1 server uses it only for
/// request heads).
pub struct HeadTimer {
    activity: Arc<Activity>,
    head: Duration,
    idle: Duration,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    /// hyper asks for this when it starts waiting for a request head; the
    /// deadline it passes is its own one timeout, so it is not used.
    fn sleep_until(&self, _: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let first = self.activity.heads.fetch_add(1, Relaxed) == 0;
        Box::pin(HeadWait {
            activity: self.activity.clone(),
            bytes_at_start: self.activity.bytes.load(Relaxed),
            head: self.head,
            // A new connection gets no idle time: its first head is due at once.
            waiting_for_first_byte: !first,
            sleep: Box::pin(tokio::time::sleep(if first { self.head } else { self.idle })),
        })
    }
}

/// The wait for one request head: the idle deadline until its first byte, then
/// the head deadline from that byte.
struct HeadWait {
    activity: Arc<Activity>,
    bytes_at_start: u64,
    head: Duration,
    waiting_for_first_byte: bool,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadWait {
    type Output = ();

    /// hyper polls this each time a read leaves the head incomplete, so a byte
    /// is seen here as it arrives.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.waiting_for_first_byte && this.activity.bytes.load(Relaxed) != this.bytes_at_start {
            this.waiting_for_first_byte = false;
            this.sleep.as_mut().reset(tokio::time::Instant::now() + this.head);
        }
        this.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadWait {}
