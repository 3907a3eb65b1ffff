//! What one connection is doing, as its watchdog needs to know: whether a request is being
//! served, since when it has waited for the next one, and since when that one's head has been
//! arriving. hyper's own header timer also runs while a kept-alive connection waits with nothing
//! sent (so it would make the idle timeout the header timeout): the two are kept here instead.
//!
//! The socket is read through [`Watched`], which notes the first byte of a head; the service
//! holds a [`Busy`] while it answers, or notes a request it answered in place. All of it is a few
//! relaxed atomics on the connection's own task, and one clock read per request.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// "No head is arriving."
const NONE: u64 = u64::MAX;

/// One connection's activity; times are milliseconds since it was accepted.
pub(super) struct Activity {
    origin: Instant,
    busy: AtomicU32,
    waiting_since_ms: AtomicU64,
    head_since_ms: AtomicU64,
}

/// What the watchdog does next with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Look again at this instant.
    Wait(Instant),
    /// A head has taken longer than the header timeout: close the socket.
    SlowHead,
    /// Nothing has been asked for longer than the idle timeout: close it gracefully.
    Idle,
}

/// The two timeouts a watchdog enforces.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    /// A whole head, from the connection or from a kept-alive request's first byte.
    pub(super) header: Duration,
    /// A kept-alive connection with nothing sent.
    pub(super) idle: Duration,
}

impl Activity {
    /// A connection accepted now: its first head is due within the header timeout.
    pub(super) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            origin: Instant::now(),
            busy: AtomicU32::new(0),
            waiting_since_ms: AtomicU64::new(0),
            head_since_ms: AtomicU64::new(0),
        })
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(NONE - 1)
    }

    /// Bytes arrived: while the connection waits, they begin a head.
    pub(super) fn read(&self) {
        if self.busy.load(Ordering::Relaxed) == 0
            && self.head_since_ms.load(Ordering::Relaxed) == NONE
        {
            self.head_since_ms
                .store(self.ms(Instant::now()), Ordering::Relaxed);
        }
    }

    /// A request answered in place, with no await in between (the host-list fast path): the
    /// connection waits for its next one from when this one's head began to arrive — the answer
    /// took no time — so it needs no guard, no reference count and no clock read; plain stores
    /// on the connection's own task.
    pub(super) fn answered_at_once(&self) {
        let head = self.head_since_ms.load(Ordering::Relaxed);
        self.head_since_ms.store(NONE, Ordering::Relaxed);
        let since = if head == NONE {
            self.ms(Instant::now())
        } else {
            head
        };
        self.waiting_since_ms.store(since, Ordering::Relaxed);
    }

    /// A request is being answered until the guard is dropped.
    pub(super) fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        self.head_since_ms.store(NONE, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// What to do with the connection at `now`.
    pub(super) fn verdict(&self, now: Instant, limits: Timeouts) -> Verdict {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NONE - 1);
        let (header, idle) = (ms(limits.header), ms(limits.idle));
        let t = self.ms(now);
        let at = |deadline: u64| self.origin + Duration::from_millis(deadline);
        if self.busy.load(Ordering::Relaxed) > 0 {
            // A parked long poll is not idle; look again later.
            return Verdict::Wait(now + limits.header.min(limits.idle));
        }
        let head = self.head_since_ms.load(Ordering::Relaxed);
        if head != NONE {
            let deadline = head.saturating_add(header);
            return if t >= deadline {
                Verdict::SlowHead
            } else {
                Verdict::Wait(at(deadline))
            };
        }
        let deadline = self
            .waiting_since_ms
            .load(Ordering::Relaxed)
            .saturating_add(idle);
        if t >= deadline {
            return Verdict::Idle;
        }
        // A head may begin meanwhile: look again within a header timeout, so its deadline is
        // seen before it passes.
        Verdict::Wait(at(deadline).min(now + limits.header))
    }
}

/// A request being answered; when dropped, the connection waits for its next one from then.
pub(super) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        a.waiting_since_ms
            .store(a.ms(Instant::now()), Ordering::Relaxed);
        a.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connection's socket, read through its [`Activity`], with the bytes the host-list fast path
/// read but left to hyper read again first.
pub(super) struct Watched {
    tcp: TcpStream,
    activity: Arc<Activity>,
    replay: BytesMut,
}

impl Watched {
    /// `tcp`, noting its reads in `activity`.
    pub(super) fn new(tcp: TcpStream, activity: Arc<Activity>) -> Watched {
        Watched {
            tcp,
            activity,
            replay: BytesMut::new(),
        }
    }

    /// The socket with `read` (bytes read of it already, and noted) to be read again first.
    pub(super) fn replay(mut self, read: BytesMut) -> Watched {
        self.replay = read;
        self
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay[..n]);
            this.replay.advance(n);
            if this.replay.is_empty() {
                // Its buffer is not kept for the connection's life (a parked watcher's, say).
                this.replay = BytesMut::new();
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Timeouts = Timeouts {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    #[test]
    fn a_fresh_connection_owes_its_head_within_the_header_timeout() {
        let a = Activity::new();
        let o = a.origin;
        assert_eq!(
            a.verdict(o + Duration::from_secs(3), LIMITS),
            Verdict::Wait(o + Duration::from_secs(10))
        );
        assert_eq!(
            a.verdict(o + Duration::from_secs(10), LIMITS),
            Verdict::SlowHead
        );
    }

    #[test]
    fn a_kept_alive_connection_is_idle_after_the_idle_timeout_not_while_busy() {
        let a = Activity::new();
        let o = a.origin;
        let busy = a.busy();
        assert!(matches!(
            a.verdict(o + Duration::from_secs(120), LIMITS),
            Verdict::Wait(_)
        ));
        drop(busy);
        let ended = a.ms(Instant::now());
        let idle_at = o + Duration::from_millis(ended) + LIMITS.idle;
        assert!(matches!(
            a.verdict(idle_at - Duration::from_secs(1), LIMITS),
            Verdict::Wait(_)
        ));
        assert_eq!(a.verdict(idle_at, LIMITS), Verdict::Idle);
        // A head begun while it waits is due within the header timeout, not the idle one.
        a.read();
        let begun = a.head_since_ms.load(Ordering::Relaxed);
        let due = o + Duration::from_millis(begun) + LIMITS.header;
        assert_eq!(a.verdict(due, LIMITS), Verdict::SlowHead);
    }

    #[test]
    fn a_request_answered_in_place_waits_for_the_next_from_its_head() {
        let a = Activity::new();
        let o = a.origin;
        a.read();
        let begun = a.head_since_ms.load(Ordering::Relaxed);
        a.answered_at_once();
        let idle_at = o + Duration::from_millis(begun) + LIMITS.idle;
        assert!(matches!(
            a.verdict(idle_at - Duration::from_secs(1), LIMITS),
            Verdict::Wait(_)
        ));
        assert_eq!(
            a.verdict(idle_at, LIMITS),
            Verdict::Idle,
            "no head is pending"
        );
    }
}
