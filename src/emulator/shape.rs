//! A network shape for the emulator's connections: a rate per connection, a
//! rate for all of them together, a round trip, and a limit on parts in
//! flight answered like a rate limit.
//!
//! Shaping wraps each accepted TCP stream, so that it models TCP streams
//! whatever the HTTP exchange on them: bytes from the client are let in at
//! most at the connection's rate and the link's, through token buckets; a
//! new connection waits one round trip before its first byte is read (the
//! handshake), and every answer waits one round trip after the request
//! that it answers (the request's way there and the answer's way back).
//! TCP's windows and slow start are not modelled.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The network between clients and the emulator. The default is loopback
/// as it is: no limit, no delay.
///
/// ```
/// use std::time::Duration;
/// use openai_uploads::emulator::NetworkShape;
///
/// // Streams of 20 MB/s sharing 160 MB/s, 30 ms away, 8 parts at once.
/// let shape = NetworkShape::default()
///     .stream_rate(20_000_000)
///     .link_rate(160_000_000)
///     .round_trip(Duration::from_millis(30))
///     .max_parts_in_flight(8);
/// assert_eq!(shape.limit_of(100), 160_000_000.0);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct NetworkShape {
    /// Bytes per second one connection carries from the client, at most.
    pub stream_rate: Option<u64>,
    /// Bytes per second all connections together carry from clients, at most.
    pub link_rate: Option<u64>,
    /// The round trip between client and emulator.
    pub round_trip: Duration,
    /// Part requests served at once; more are answered 429 with
    /// `Retry-After`, as a rate limit would.
    pub max_parts_in_flight: Option<usize>,
    /// The wait announced on those answers (default 1 s).
    pub retry_after: Option<Duration>,
}

impl NetworkShape {
    /// Caps each connection at `bytes_per_second` from the client.
    pub fn stream_rate(mut self, bytes_per_second: u64) -> Self {
        self.stream_rate = Some(bytes_per_second);
        self
    }

    /// Caps all connections together at `bytes_per_second` from clients.
    pub fn link_rate(mut self, bytes_per_second: u64) -> Self {
        self.link_rate = Some(bytes_per_second);
        self
    }

    /// Sets the round trip.
    pub fn round_trip(mut self, rtt: Duration) -> Self {
        self.round_trip = rtt;
        self
    }

    /// Serves at most `parts` part requests at once.
    pub fn max_parts_in_flight(mut self, parts: usize) -> Self {
        self.max_parts_in_flight = Some(parts);
        self
    }

    /// The wait announced when parts in flight are over the limit.
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Whether connections are shaped at all.
    pub fn shapes_connections(&self) -> bool {
        self.stream_rate.is_some() || self.link_rate.is_some() || !self.round_trip.is_zero()
    }

    /// What a perfect client reaches with `streams` connections, in bytes
    /// per second: the link, or the streams (at most the parts in flight)
    /// at their rate, whichever is less; infinite when nothing limits it.
    pub fn limit_of(&self, streams: usize) -> f64 {
        let streams = self
            .max_parts_in_flight
            .map_or(streams, |most| most.min(streams));
        let by_streams = self
            .stream_rate
            .map_or(f64::INFINITY, |rate| rate as f64 * streams as f64);
        let by_link = self.link_rate.map_or(f64::INFINITY, |rate| rate as f64);
        by_streams.min(by_link)
    }
}

/// A token bucket: `rate` bytes per second, holding at most `burst`.
#[derive(Debug)]
pub(crate) struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub(crate) fn new(rate: u64) -> Self {
        let rate = rate.max(1) as f64;
        // Five milliseconds of traffic, and never less than a 16 KiB read.
        let burst = (rate * 0.005).max(16.0 * 1024.0);
        Self {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
    }

    /// Bytes that may pass now.
    fn available(&mut self, now: Instant) -> usize {
        self.refill(now);
        self.tokens.max(0.0) as usize
    }

    /// When at least `want` bytes may pass.
    fn ready_at(&self, want: usize) -> Instant {
        let missing = (want as f64).min(self.burst) - self.tokens;
        self.at + Duration::from_secs_f64(missing.max(0.0) / self.rate)
    }

    fn take(&mut self, n: usize) {
        self.tokens -= n as f64;
    }
}

/// What all connections of one emulator share.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) shape: NetworkShape,
    bucket: Option<Mutex<Bucket>>,
}

impl Link {
    pub(crate) fn new(shape: NetworkShape) -> Arc<Self> {
        Arc::new(Self {
            bucket: shape.link_rate.map(|rate| Mutex::new(Bucket::new(rate))),
            shape,
        })
    }
}

/// A connection seen through the shape.
pub(crate) struct Shaped<S> {
    inner: S,
    link: Arc<Link>,
    own: Option<Bucket>,
    /// Armed while a read waits for tokens, or an answer for its round trip.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Whether the handshake's round trip has passed.
    open: bool,
    /// Whether bytes were read since the last write: the next write is an
    /// answer and waits a round trip.
    heard: bool,
    /// Whether the current answer already waited its round trip.
    answering: bool,
}

impl<S> Shaped<S> {
    pub(crate) fn new(inner: S, link: Arc<Link>) -> Self {
        Self {
            own: link.shape.stream_rate.map(Bucket::new),
            inner,
            link,
            sleep: None,
            open: false,
            heard: false,
            answering: false,
        }
    }

    /// Waits `wait` from the first poll, keeping the timer across polls.
    fn wait_for(&mut self, cx: &mut Context<'_>, wait: Duration) -> Poll<()> {
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(wait)));
        ready!(sleep.as_mut().poll(cx));
        self.sleep = None;
        Poll::Ready(())
    }

    /// Waits until `at`, keeping the timer across polls.
    fn wait_until(&mut self, cx: &mut Context<'_>, at: Instant) -> Poll<()> {
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if sleep.deadline() != at {
            sleep.as_mut().reset(at);
        }
        ready!(sleep.as_mut().poll(cx));
        self.sleep = None;
        Poll::Ready(())
    }

    /// Bytes that may be read now, or the instant more may.
    fn allowance(&mut self, want: usize) -> Result<usize, Instant> {
        let now = Instant::now();
        let mut allowed = want;
        let mut wait = None;
        if let Some(own) = &mut self.own {
            allowed = allowed.min(own.available(now));
            if allowed == 0 {
                wait = Some(own.ready_at(want));
            }
        }
        if let Some(link) = &self.link.bucket {
            let mut link = link.lock().unwrap_or_else(|p| p.into_inner());
            let free = link.available(now);
            if free == 0 {
                let at = link.ready_at(want.min(16 * 1024));
                wait = Some(wait.map_or(at, |w: Instant| w.max(at)));
            }
            allowed = allowed.min(free);
        }
        match wait {
            Some(at) if allowed == 0 => Err(at),
            _ => Ok(allowed),
        }
    }

    fn took(&mut self, n: usize) {
        if let Some(own) = &mut self.own {
            own.take(n);
        }
        if let Some(link) = &self.link.bucket {
            link.lock().unwrap_or_else(|p| p.into_inner()).take(n);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Shaped<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let rtt = this.link.shape.round_trip;
        if !this.open {
            if !rtt.is_zero() {
                ready!(this.wait_for(cx, rtt));
            }
            this.open = true;
        }
        let allowed = loop {
            match this.allowance(buf.remaining()) {
                Ok(allowed) => break allowed,
                Err(at) => ready!(this.wait_until(cx, at)),
            }
        };
        let mut limited = buf.take(allowed);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        // SAFETY: `limited` reads into `buf`'s unfilled part; these `n`
        // bytes are initialised by the read above.
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        this.took(n);
        if n > 0 {
            this.heard = true;
            this.answering = false;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Shaped<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let rtt = this.link.shape.round_trip;
        if this.heard && !this.answering && !rtt.is_zero() {
            ready!(this.wait_for(cx, rtt));
            this.answering = true;
        }
        this.heard = false;
        Pin::new(&mut this.inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_the_link_or_the_streams() {
        let shape = NetworkShape::default().stream_rate(10).link_rate(100);
        assert_eq!(shape.limit_of(4), 40.0);
        assert_eq!(shape.limit_of(20), 100.0);
        assert_eq!(shape.clone().max_parts_in_flight(3).limit_of(20), 30.0);
        assert!(NetworkShape::default().limit_of(8).is_infinite());
        assert!(!NetworkShape::default().shapes_connections());
        assert!(shape.shapes_connections());
    }

    #[tokio::test]
    async fn a_bucket_lets_no_more_than_its_rate_through() {
        let mut bucket = Bucket::new(10_000_000);
        let start = Instant::now();
        let mut passed = 0;
        while passed < 2_000_000 {
            let now = Instant::now();
            let n = bucket.available(now);
            if n == 0 {
                tokio::time::sleep_until(bucket.ready_at(16 * 1024)).await;
                continue;
            }
            bucket.take(n);
            passed += n;
        }
        // 2 MB at 10 MB/s, less the first burst of 50 KB.
        let took = start.elapsed().as_secs_f64();
        assert!(took >= 0.19, "{took} s for 0.195 s of traffic");
    }

    /// The time, on the paused clock, that `streams` connections through
    /// `link` take to carry `len` bytes each from the client, `together`
    /// at once or one after the other.
    async fn carry(link: &Arc<Link>, streams: usize, len: usize, together: bool) -> Duration {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let one = |link: Arc<Link>| async move {
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            let mut server = Shaped::new(server, link);
            let writer = tokio::spawn(async move { client.write_all(&vec![7; len]).await });
            let mut buf = vec![0; 32 * 1024];
            let mut got = 0;
            while got < len {
                got += server.read(&mut buf).await.expect("read");
            }
            writer.await.expect("writer").expect("written");
        };
        let started = Instant::now();
        if together {
            futures::future::join_all((0..streams).map(|_| one(link.clone()))).await;
        } else {
            for _ in 0..streams {
                one(link.clone()).await;
            }
        }
        started.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_per_stream_is_lifted_by_more_streams() {
        const LEN: usize = 256 * 1024;
        let link = Link::new(NetworkShape::default().stream_rate(2_000_000));
        let one = carry(&link, 4, LEN, false).await;
        let four = carry(&link, 4, LEN, true).await;
        // 4 × 256 KiB at 2 MB/s, less a 16 KiB burst per stream: 0.49 s.
        assert!(one >= Duration::from_millis(480), "{one:?}");
        assert!(
            four < one.mul_f64(0.3),
            "4 streams {four:?}, 1 stream {one:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_link_as_narrow_as_one_stream_is_not_lifted() {
        const LEN: usize = 256 * 1024;
        let shape = NetworkShape::default()
            .stream_rate(2_000_000)
            .link_rate(2_000_000);
        let link = Link::new(shape);
        let one = carry(&link, 4, LEN, false).await;
        let four = carry(&link, 4, LEN, true).await;
        assert!(
            four > one.mul_f64(0.9),
            "4 streams {four:?}, 1 stream {one:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_handshake_and_every_answer_wait_a_round_trip() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rtt = Duration::from_millis(60);
        let link = Link::new(NetworkShape::default().round_trip(rtt));
        let (mut client, server) = tokio::io::duplex(1024);
        let mut server = Shaped::new(server, link);
        let started = Instant::now();
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0; 4];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(started.elapsed(), rtt, "the handshake");
        server.write_all(b"pong").await.unwrap();
        assert_eq!(started.elapsed(), rtt * 2, "the answer");
        // A second write in the same answer does not wait again.
        server.write_all(b"!").await.unwrap();
        assert_eq!(started.elapsed(), rtt * 2);
    }
}
