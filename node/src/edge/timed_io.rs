//! A byte stream that gives up on a peer that stalls it: a write the peer does not drain for the
//! write timeout fails, and so does a read that waits with nothing read or written for the idle
//! timeout. Both fail with [`std::io::ErrorKind::TimedOut`] carrying a [`Stalled`], so whoever
//! drives the connection (hyper) closes it and the caller can say which limit it hit.
//!
//! Writes push the read's deadline: while a response is being written the HTTP server keeps a
//! read pending only to notice the client leaving, and a client that reads its stream is not
//! idle. A timer is armed only while an operation is pending, and is reused.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Which limit a stalled connection hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Stalled {
    /// A read waited this long with nothing read or written.
    #[error("nothing read or written for {0:?}")]
    Idle(Duration),
    /// A write was not drained by the peer for this long.
    #[error("a write not drained by the peer for {0:?}")]
    Write(Duration),
}

impl Stalled {
    /// The limit behind `e`, if a [`TimedStream`] made it.
    pub fn of(e: &io::Error) -> Option<Self> {
        e.get_ref()?.downcast_ref::<Self>().copied()
    }

    fn error(self) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, self)
    }
}

/// A deadline armed while an operation is pending.
#[derive(Debug, Default)]
struct Deadline {
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Deadline {
    /// Polls the deadline, arming it `after` from now if it is not armed; ready once passed.
    fn poll(&mut self, cx: &mut Context<'_>, after: Duration) -> Poll<()> {
        let at = Instant::now() + after;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if !self.armed {
            sleep.as_mut().reset(at);
            self.armed = true;
        }
        let passed = sleep.as_mut().poll(cx);
        if passed.is_ready() {
            self.armed = false;
        }
        passed
    }

    /// The operation finished.
    fn disarm(&mut self) {
        self.armed = false;
    }

    /// Progress elsewhere: an armed deadline moves to `after` from now.
    fn push(&mut self, after: Duration) {
        if let (true, Some(sleep)) = (self.armed, self.sleep.as_mut()) {
            sleep.as_mut().reset(Instant::now() + after);
        }
    }
}

/// `S` with an idle timeout on reads and a timeout on writes.
#[derive(Debug)]
pub struct TimedStream<S> {
    inner: S,
    idle: Duration,
    write: Duration,
    read_deadline: Deadline,
    write_deadline: Deadline,
}

impl<S> TimedStream<S> {
    /// `inner`, whose reads fail after `idle` with nothing read or written, and whose writes
    /// fail after `write` without the peer draining any.
    pub fn new(inner: S, idle: Duration, write: Duration) -> Self {
        Self {
            inner,
            idle,
            write,
            read_deadline: Deadline::default(),
            write_deadline: Deadline::default(),
        }
    }

    /// A write finished: the write deadline goes, and some bytes written keep the read alive.
    fn wrote(&mut self, progress: bool) {
        self.write_deadline.disarm();
        if progress {
            self.read_deadline.push(self.idle);
        }
    }

    /// A write is pending: an error once it has been for the write timeout.
    fn write_pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.write;
        self.write_deadline
            .poll(cx, limit)
            .map(|()| Err(Stalled::Write(limit).error()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.read_deadline.disarm();
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = this.idle;
                this.read_deadline
                    .poll(cx, limit)
                    .map(|()| Err(Stalled::Idle(limit).error()))
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                this.wrote(r.as_ref().is_ok_and(|n| *n > 0));
                Poll::Ready(r)
            }
            Poll::Pending => this.write_pending(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.wrote(r.as_ref().is_ok_and(|n| *n > 0));
                Poll::Ready(r)
            }
            Poll::Pending => this.write_pending(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(r) => {
                this.wrote(false);
                Poll::Ready(r)
            }
            Poll::Pending => this.write_pending(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Ready(r) => {
                this.wrote(false);
                Poll::Ready(r)
            }
            Poll::Pending => this.write_pending(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const IDLE: Duration = Duration::from_secs(3);
    const WRITE: Duration = Duration::from_secs(2);

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_drains_fails_after_the_write_timeout() {
        let (ours, _peer) = tokio::io::duplex(64);
        let mut s = TimedStream::new(ours, IDLE, WRITE);
        let t0 = Instant::now();
        let e = s.write_all(&[7; 1000]).await.unwrap_err();
        assert_eq!(Stalled::of(&e), Some(Stalled::Write(WRITE)));
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(t0.elapsed(), WRITE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_drains_something_within_the_write_timeout_is_kept() {
        let (ours, mut peer) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0; 64];
            while got < 1000 {
                tokio::time::sleep(WRITE / 2).await;
                got += peer.read(&mut buf).await.unwrap();
            }
        });
        let mut s = TimedStream::new(ours, IDLE, WRITE);
        s.write_all(&[7; 1000]).await.unwrap();
        reader.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_with_nothing_coming_fails_after_the_idle_timeout() {
        let (ours, _peer) = tokio::io::duplex(64);
        let mut s = TimedStream::new(ours, IDLE, WRITE);
        let t0 = Instant::now();
        let e = s.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(Stalled::of(&e), Some(Stalled::Idle(IDLE)));
        assert_eq!(t0.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn writes_keep_a_pending_read_alive_until_they_stop() {
        let (ours, mut peer) = tokio::io::duplex(1024);
        let (mut read_half, mut write_half) = tokio::io::split(TimedStream::new(ours, IDLE, WRITE));
        let t0 = Instant::now();
        let read = tokio::spawn(async move { read_half.read(&mut [0; 8]).await });
        // A byte a second for ten seconds, each read by the peer: longer than the idle timeout.
        for _ in 0..10 {
            write_half.write_all(b"x").await.unwrap();
            peer.read_exact(&mut [0; 1]).await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let e = read.await.unwrap().unwrap_err();
        assert_eq!(Stalled::of(&e), Some(Stalled::Idle(IDLE)));
        // The last write was at 9 s.
        assert_eq!(t0.elapsed(), Duration::from_secs(9) + IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_that_arrive_in_time_are_read_and_the_clock_starts_again() {
        let (ours, mut peer) = tokio::io::duplex(64);
        let mut s = TimedStream::new(ours, IDLE, WRITE);
        for _ in 0..3 {
            let send = async {
                tokio::time::sleep(IDLE - Duration::from_millis(1)).await;
                peer.write_all(b"hi").await.unwrap();
            };
            let mut buf = [0; 2];
            let (_, got) = tokio::join!(send, s.read_exact(&mut buf));
            got.unwrap();
            assert_eq!(&buf, b"hi");
        }
    }
}
