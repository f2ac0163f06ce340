//! The accept loop: HTTP/1.1 connections served by hyper, each bounded in time, and a cap on how
//! many are served at once, so that a few hundred slow or silent sockets cannot take the server
//! from everyone else.
//!
//! - **Header timeout** (`server.header_read_timeout_ms`): a request's head (request line and
//!   headers) must arrive within this time, counted from the accept for a connection's first
//!   request and from the first byte of each later request on a kept-alive connection.
//!   Otherwise the connection is closed without an answer.
//! - **Idle timeout** (`server.idle_timeout_secs`): a kept-alive connection with no request for
//!   this long is closed; so is a connection whose request moves no byte either way for this long
//!   (a body that stops arriving, an answer the client stops reading).
//! - **Per-address share** (`server.max_connections_per_ip`, IPv6 by its /64): one address holds
//!   at most this many connections; a further one is closed at once, so that one address cannot
//!   keep every slot busy with cheap requests.
//! - **Connection cap** (`server.max_connections`): past it the loop accepts nothing until a
//!   connection closes. Connections beyond the cap wait in the kernel's listen queue and are
//!   served, in order, as slots free up (or time out on the client side): nothing is accepted
//!   only to be dropped, and no work is spent on them while the server is full.
//! - **Connections give way when the server is full** (from the moment no slot is free until
//!   an eighth of them is free again; `Occupancy`): every answer is sent with
//!   `Connection: close`, a kept-alive connection idle for [`IDLE_WHEN_FULL`] is closed, and
//!   so is one whose request head has not all come [`READ_WHEN_FULL`] after it started, or
//!   whose body has not all come that long after the application began to read it (the
//!   accept loop wakes the watchdogs when it finds no slot). So a connection holds
//!   its slot for one request at most while others wait in the listen queue, however it paces
//!   its requests, and silent or slow senders hold theirs for seconds, not for the header and
//!   body timeouts: a few addresses, each within its share, cannot make everyone else wait
//!   those out.
//! - **Head size**: hyper stops reading a request head once its buffer holds
//!   [`MAX_HEAD_BYTES`] (431 or 414); the read that crosses the mark may bring up to as much
//!   again, so a connection holds at most about twice that for its head.
//!
//! hyper's own `header_read_timeout` is not used: it starts whenever hyper waits for a head,
//! which includes the idle time between kept-alive requests, so it would close every idle
//! connection after the header timeout. A small watchdog per connection keeps both clocks
//! instead, fed by the connection's IO (bytes read and written) and by the requests it carries.
//!
//! Graceful shutdown: the loop stops accepting and closes the listener, every connection is told
//! to finish its request in flight (hyper answers it and closes) and idle ones close at once;
//! the loop returns when every connection is gone. The timeouts keep running meanwhile, so a
//! half-sent head delays the stop by at most the header timeout, and a half-sent body by at
//! most the body timeout.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::ServerConfig;

/// How long a kept-alive connection may stay idle while every slot is taken.
pub const IDLE_WHEN_FULL: Duration = Duration::from_secs(1);

/// How long a request's head, and then its body, may take to arrive while every slot is taken
/// (counted from the accept, or the request's first byte, and from the application's first
/// read of the body). A
/// client that sends its request at once needs one round trip of this; a connection that sends
/// nothing, or a byte at a time, would otherwise keep its slot for the header and body timeouts
/// while others wait.
pub const READ_WHEN_FULL: Duration = Duration::from_secs(2);

/// The largest request head hyper buffers: hyper's own default (about 400 KB) would let each
/// connection hold that much for as long as its request lasts. The longest request this server
/// answers in full is an authorization request of up to 16 KiB (`return_to`'s limit).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The bounds of every connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Connections one client address (IPv6 by its /64) holds at once; 0 is no cap.
    pub max_connections_per_ip: usize,
}

impl From<&ServerConfig> for ConnectionLimits {
    fn from(c: &ServerConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(c.header_read_timeout_ms),
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            max_connections: c.max_connections,
            max_connections_per_ip: c.max_connections_per_ip,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes the requests in flight
/// and returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let occupancy = Arc::new(Occupancy::new(slots.clone(), max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let per_address = Arc::new(PerAddress::new(limits.max_connections_per_ip));
    let mut shutdown = pin!(shutdown);
    let mut full = false;
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => {
                full = false;
                occupancy.found_one();
                p
            }
            Err(_) => {
                // Idle connections give their slots up; answers close their connections.
                occupancy.found_none();
                if !full {
                    full = true;
                    tracing::warn!(
                        max_connections = max,
                        "connection limit reached: accepting no new connection until one closes"
                    );
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        // One address may not hold every slot: past its share its new connection is closed at
        // once (the slot goes back to everyone else).
        let Some(share) = per_address.take(peer) else {
            drop(stream);
            continue;
        };
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            limits,
            stop_rx.clone(),
            (permit, share),
            occupancy.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it closes: having them all back means none is left.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// How many connections each client address holds, so that one address cannot take every slot.
struct PerAddress {
    max: usize,
    open: Mutex<HashMap<String, usize>>,
    warned: AtomicBool,
}

/// One connection's place in its address's count, given back when the connection ends.
struct AddressShare {
    key: Option<String>,
    of: Arc<PerAddress>,
}

impl PerAddress {
    fn new(max: usize) -> Self {
        Self {
            max,
            open: Mutex::new(HashMap::new()),
            warned: AtomicBool::new(false),
        }
    }

    /// A place for a connection from `peer`, or `None` when its address holds its share.
    fn take(self: &Arc<Self>, peer: SocketAddr) -> Option<AddressShare> {
        if self.max == 0 {
            return Some(AddressShare {
                key: None,
                of: self.clone(),
            });
        }
        let key = crate::peer::address_key(peer.ip());
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max_connections_per_ip = self.max,
                    "an address reached its connection share; its further connections are closed"
                );
            }
            return None;
        }
        *n += 1;
        Some(AddressShare {
            key: Some(key),
            of: self.clone(),
        })
    }
}

impl Drop for AddressShare {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut open = self.of.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&key);
            }
        }
    }
}

/// A failed accept. Errors of one connection (reset or aborted before the accept) are skipped;
/// others (out of file descriptors, for example) would fail again at once, so the loop waits a
/// little before trying again.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// One connection: hyper serves it while the watchdog keeps its clocks.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    _slot: (OwnedSemaphorePermit, AddressShare),
    occupancy: Arc<Occupancy>,
) {
    let clock = Arc::new(Clock::new(limits, occupancy.clone()));
    let io = TokioIo::new(Watched {
        inner: stream,
        clock: clock.clone(),
    });
    let on_request = clock.clone();
    let on_answer = occupancy.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let in_flight = InFlight::start(on_request.clone());
        let mut req = if !hyper::body::Body::is_end_stream(req.body()) {
            let clock = on_request.clone();
            req.map(|inner| {
                axum::body::Body::new(WatchedBody {
                    inner,
                    clock,
                    state: BodyState::Unread,
                })
            })
        } else {
            req.map(axum::body::Body::new)
        };
        // Handlers read the peer address (per-address limits, the audit trail).
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        let occupancy = on_answer.clone();
        async move {
            let mut response = answered_in_turn(app.oneshot(req)).await;
            if occupancy.full() {
                // Others wait for a slot: this connection gives its up after this answer.
                if let Ok(r) = &mut response {
                    r.headers_mut().insert(
                        axum::http::header::CONNECTION,
                        axum::http::HeaderValue::from_static("close"),
                    );
                }
            }
            drop(in_flight);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(Option::<Duration>::None);
    builder.max_buf_size(MAX_HEAD_BYTES);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut stopping = false;
    let sleep = tokio::time::sleep_until(clock.arm());
    let mut sleep = pin!(sleep);
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|stopped| *stopped), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = sleep.as_mut() => {
                if clock.expired() {
                    tracing::debug!("connection closed: header or idle timeout");
                    // Dropping the connection closes the socket (and cancels a request that
                    // moved no byte for the idle timeout).
                    return;
                }
                sleep.as_mut().reset(clock.arm());
            }
            // The server just found no slot free: the idle deadline may have moved earlier.
            _ = occupancy.full_now.notified() => {
                if clock.expired() {
                    tracing::debug!("connection closed: idle while the server is full");
                    return;
                }
                sleep.as_mut().reset(clock.arm());
            }
        }
    }
}

/// The server's slots as connections see them: whether the server is full, and a signal each
/// time the accept loop finds no slot.
///
/// "Full" has a margin: it starts when the loop finds no slot and ends only when a
/// [`FREE_TO_END_FULL`] share of the slots is free. Without it, the first connection to give
/// its slot up would make the server look free to every other connection answered in the same
/// moment (they would all stay), and connections that reconnect at once would keep it so.
/// Shared as one `Arc`, so that an answer's check costs one reference count.
struct Occupancy {
    slots: Arc<Semaphore>,
    /// Set by the accept loop when it finds no slot; cleared when enough are free again.
    pressed: AtomicBool,
    /// How many free slots end the full state.
    enough_free: usize,
    full_now: Notify,
}

/// The share of the slots that must be free for the server to stop counting as full.
const FREE_TO_END_FULL: usize = 8;

impl Occupancy {
    fn new(slots: Arc<Semaphore>, max: usize) -> Self {
        Self {
            slots,
            pressed: AtomicBool::new(false),
            enough_free: (max / FREE_TO_END_FULL).max(1),
            full_now: Notify::new(),
        }
    }

    fn full(&self) -> bool {
        self.pressed.load(Ordering::Relaxed) && self.slots.available_permits() < self.enough_free
    }

    /// The accept loop found no slot.
    fn found_none(&self) {
        self.pressed.store(true, Ordering::Relaxed);
        self.full_now.notify_waiters();
    }

    /// The accept loop got a slot: the full state ends once enough are free.
    fn found_one(&self) {
        if self.slots.available_permits() + 1 >= self.enough_free {
            self.pressed.store(false, Ordering::Relaxed);
        }
    }
}

/// The application's answer to one request, handed to hyper one scheduler turn after it is
/// ready.
///
/// Under load many connections have a request ready at the same moment. Written as soon as each
/// is ready, every answer finds the client's side asleep again (it read the previous answer and
/// went back to wait) and pays for waking it on another CPU: on a virtual machine an interrupt
/// between vCPUs, measured at about a quarter of an ES256 token's CPU (BENCHMARKS.md, "Answers
/// handed over in turn"). Yielding once lets the other ready requests run their handlers first;
/// the answers then go out close together, and the side woken by the first finds the next ones
/// without sleeping in between.
///
/// Tokio wakes a yielded task when its worker has no ready task left, or at the worker's periodic
/// look at the sockets (every 61 scheduler ticks), and the task then queues behind the ready
/// ones. So an answer waits for about one round of the connections that have a request ready
/// (the order among them is the scheduler's), and the request duration histogram, which ends
/// with the handler, does not include that wait. With nothing else ready, the cost is one look
/// at the sockets (a system call).
async fn answered_in_turn<F: Future>(answer: F) -> F::Output {
    let response = answer.await;
    tokio::task::yield_now().await;
    response
}

/// The two clocks of one connection. The watchdog sleeps until the deadline it last read, but at
/// most the shorter of the two timeouts, and then looks again: a deadline that moved later is
/// waited for, and one that moved earlier (the first byte of a request on an idle connection
/// starts the header clock; a request in flight is on the idle clock) is met on time, since no
/// new deadline is nearer than the shorter timeout. Requests themselves wake nothing.
struct Clock {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    /// The server's slots: none free shortens the idle time to [`IDLE_WHEN_FULL`].
    occupancy: Arc<Occupancy>,
    state: Mutex<ClockState>,
}

struct ClockState {
    /// Requests handed to the application and not answered yet.
    in_flight: usize,
    /// When the application first read the body of the request in flight; `None` before that
    /// (it may be busy with other things first, a database, say: the client is not the one
    /// keeping it then), and once all of the body has come or the application dropped it.
    body_since: Option<Instant>,
    /// When the awaited request head started: the accept for the first request, its first byte
    /// for later ones; `None` while no byte of the next request has come.
    head_since: Option<Instant>,
    /// When the last answer was handed over (the start of the idle time).
    idle_since: Instant,
    /// When bytes last moved, either way.
    last_io: Instant,
}

impl Clock {
    fn new(limits: ConnectionLimits, occupancy: Arc<Occupancy>) -> Self {
        let now = Instant::now();
        Self {
            header_read_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
            occupancy,
            state: Mutex::new(ClockState {
                in_flight: 0,
                body_since: None,
                head_since: Some(now),
                idle_since: now,
                last_io: now,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ClockState> {
        // Nothing panics while holding the lock; a poisoned state is still a valid state.
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn deadline(&self, s: &ClockState) -> Instant {
        if s.in_flight > 0 {
            let idle = s.last_io + self.idle_timeout;
            match s.body_since {
                // The body's own deadline (`extract::read_body`) holds otherwise.
                Some(since) if self.occupancy.full() => idle.min(since + READ_WHEN_FULL),
                _ => idle,
            }
        } else if let Some(since) = s.head_since {
            if self.occupancy.full() {
                since + self.header_read_timeout.min(READ_WHEN_FULL)
            } else {
                since + self.header_read_timeout
            }
        } else if self.occupancy.full() {
            s.idle_since + self.idle_timeout.min(IDLE_WHEN_FULL)
        } else {
            s.idle_since + self.idle_timeout
        }
    }

    /// When the watchdog should look next: the deadline, or the shorter timeout from now if that
    /// comes first (the state may change meanwhile).
    fn arm(&self) -> Instant {
        let s = self.lock();
        let look_again = self.header_read_timeout.min(self.idle_timeout);
        self.deadline(&s).min(Instant::now() + look_again)
    }

    fn expired(&self) -> bool {
        let s = self.lock();
        self.deadline(&s) <= Instant::now()
    }

    fn read(&self) {
        let now = Instant::now();
        let mut s = self.lock();
        s.last_io = now;
        if s.in_flight == 0 && s.head_since.is_none() {
            // The first byte of the next request: its head is now on the header clock.
            s.head_since = Some(now);
        }
    }

    fn wrote(&self) {
        self.lock().last_io = Instant::now();
    }
}

/// A request between its head (parsed by hyper) and its answer.
struct InFlight(Arc<Clock>);

impl InFlight {
    fn start(clock: Arc<Clock>) -> Self {
        {
            let mut s = clock.lock();
            s.in_flight += 1;
            s.head_since = None;
            s.body_since = None;
        }
        Self(clock)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
        }
    }
}

/// A request's body, telling the clock when the application starts to read it (from then on
/// the client is the one to keep it waiting), and when all of it has come or the application
/// no longer reads it (it is dropped).
struct WatchedBody {
    inner: Incoming,
    clock: Arc<Clock>,
    state: BodyState,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyState {
    Unread,
    Reading,
    Done,
}

impl WatchedBody {
    fn finish(&mut self) {
        if self.state == BodyState::Reading {
            self.clock.lock().body_since = None;
        }
        self.state = BodyState::Done;
    }
}

impl hyper::body::Body for WatchedBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.state == BodyState::Unread {
            this.state = BodyState::Reading;
            this.clock.lock().body_since = Some(Instant::now());
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None | Some(Err(_))) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Pending => false,
        };
        if ended {
            this.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The socket, telling the clock when bytes move.
struct Watched {
    inner: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.clock.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.clock.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.clock.wrote();
        }
        polled
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::answered_in_turn;

    /// Requests ready at the same moment: every handler runs before any answer is handed over,
    /// so the answers leave together.
    #[test]
    fn answers_ready_together_are_handed_over_after_every_handler_ran() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        // The three are spawned from a task on the one worker, so all are queued before any runs,
        // as requests whose sockets one look found ready are.
        let spawned = events.clone();
        let all = runtime.spawn(async move {
            let tasks: Vec<_> = ["a", "b", "c"]
                .into_iter()
                .map(|name| {
                    let events = spawned.clone();
                    tokio::spawn(async move {
                        let handled = events.clone();
                        let answer = answered_in_turn(async move {
                            handled.lock().unwrap().push(format!("handled {name}"));
                            name
                        })
                        .await;
                        events.lock().unwrap().push(format!("answered {answer}"));
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        runtime.block_on(all).unwrap();
        let mut events = events.lock().unwrap().clone();
        assert_eq!(events.len(), 6, "{events:?}");
        let mut answered = events.split_off(3);
        events.sort();
        assert_eq!(
            events,
            ["handled a", "handled b", "handled c"],
            "{answered:?}"
        );
        answered.sort();
        assert_eq!(answered, ["answered a", "answered b", "answered c"]);
    }

    /// With nothing else to run, the answer still comes, on the runtime the server runs on: the
    /// worker wakes the yielded task by itself, with nothing outside the runtime polling it.
    #[test]
    fn a_lone_answer_is_handed_over_at_once() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (sent, answer) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let _ = sent.send(answered_in_turn(async { 7 }).await);
        });
        let answer = answer.recv_timeout(std::time::Duration::from_secs(5));
        assert_eq!(answer.ok(), Some(7));
    }
}
