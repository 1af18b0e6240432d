//! The listening socket and the accept loop: one thread per connection, at
//! most `Limits::max_connections` at once — the binary lowers it at start
//! to what the open-file limit allows (`descriptors`). A connection accepted
//! while that many are served is answered `503 too many connections` (a
//! short write deadline: a client that does not read may see only the
//! close) and closed (`http_socket::connections_over_the_cap_get_503`).
//!
//! The accept loop runs on its own thread. [`ServerHandle::shutdown`] stops
//! it without polling: it raises a flag and then connects to the listener,
//! so the blocked `accept` returns and the loop sees the flag
//! (`tests/integration/http_socket.rs`: `shutdown_stops_accepting_and_returns`).
//!
//! When `accept` fails for lack of descriptors all the same (another
//! process's, the whole system's, or a limit lowered while running), the
//! loop closes a spare descriptor it keeps to accept the waiting client and
//! answer it `503` ([`OUT_OF_DESCRIPTORS`]); when even that fails, it backs
//! off (50 ms doubling to 1 s) instead of spinning, and the log has one line
//! when the failures start and one when they end
//! (`tests/integration/descriptors_e2e.rs`,
//! `a_connection_flood_under_a_low_descriptor_limit_is_refused_and_saves_go_on`).
//!
//! Connection threads are not joined: each ends on its own, when its client
//! closes, at its next timeout (idle, head, body, or the write of one
//! response or one piece of a streamed body), or when it answers with
//! `Connection: close`. There is no bound on a whole connection's life: a
//! handler may wait (`get_results?wait=`, up to `MAX_RESULT_WAIT`), and a
//! streamed body has a deadline per piece, not in all.

use crate::http::connection;
use crate::http::timed_stream::{answer_and_close, Linger, TimedStream};
use crate::http::{Handler, Response};
use crate::limits::{
    Limits, ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, CONNECTION_THREAD_STACK, REJECT_WRITE_TIMEOUT,
};
use crate::scoreboard::{self, Role, ThreadState};
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The reason of the `503` a client gets when `accept` ran out of
/// descriptors and the spare was used to answer it.
pub const OUT_OF_DESCRIPTORS: &str = "the server is out of file descriptors; retry later";

pub use crate::http::RequestRecord;

/// The callback told about every answered request (the request log).
pub type OnRequest = Arc<dyn Fn(&RequestRecord<'_>) + Send + Sync>;
/// The callback told about server-level errors (failed `accept`, failed spawn).
pub type OnError = Arc<dyn Fn(&str) + Send + Sync>;

pub struct Server {
    listener: TcpListener,
    /// The address actually bound, read once at bind time.
    addr: SocketAddr,
}

impl Server {
    /// Binds `host:port` (`port` 0 picks a free port).
    ///
    /// # Errors
    /// When the address cannot be resolved or bound.
    pub fn bind(host: &str, port: u16) -> io::Result<Server> {
        let listener = TcpListener::bind((host, port))?;
        let addr = listener.local_addr()?;
        Ok(Server { listener, addr })
    }

    /// The address actually bound.
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`] (never, in fact: the address is read
    /// at bind time).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    /// Starts the accept loop on its own thread, reporting requests to
    /// `on_request` and server-level errors to `on_error`, and returns at
    /// once. The binary keeps the handle until it exits; tests and programs
    /// that embed the server stop it with [`ServerHandle::shutdown`].
    ///
    /// # Panics
    /// If the OS cannot start the accept thread (the process is out of
    /// threads or memory at startup: nothing sensible can go on).
    pub fn start(
        self,
        handler: Arc<dyn Handler>,
        limits: Limits,
        on_request: OnRequest,
        on_error: OnError,
    ) -> ServerHandle {
        // Every request the log is told about is counted in the metrics.
        let on_request: OnRequest = Arc::new(move |record: &RequestRecord<'_>| {
            crate::metrics::record_request(record);
            on_request(record);
        });
        let stop = Arc::new(AtomicBool::new(false));
        let spare = self.listener.try_clone().ok();
        let accept_loop = AcceptLoop {
            spare,
            trouble: None,
            listener: self.listener,
            stop: Arc::clone(&stop),
            active: Arc::new(AtomicUsize::new(0)),
            handler,
            limits,
            on_request,
            on_error,
        };
        let thread = thread::Builder::new()
            .name("http-accept".to_owned())
            .spawn(move || accept_loop.run())
            .expect("spawning the accept thread at startup"); // see # Panics
        ServerHandle {
            addr: self.addr,
            stop,
            thread: Some(thread),
        }
    }
}

/// A running server. Dropping it shuts the accept loop down too.
pub struct ServerHandle {
    addr: SocketAddr,
    /// Set once, by `stop`, before the wake-up connection; read by the
    /// accept loop after every `accept`.
    stop: Arc<AtomicBool>,
    /// `None` once joined.
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and joins the accept thread. Connections in progress
    /// go on until they end or time out.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::Release);
        // Wake the blocked `accept`. A listener on the unspecified address
        // is reached through loopback.
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        match TcpStream::connect(SocketAddr::new(ip, self.addr.port())) {
            Ok(_wake) => {}
            // Then the loop stops at the next connection it accepts; joining
            // now could wait for that, so leave the thread detached instead.
            Err(e) => {
                eprintln!(
                    "server: cannot wake the accept loop ({e}); it stops at its next connection"
                );
                return;
            }
        }
        let _ = thread.join();
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Everything the accept thread owns.
struct AcceptLoop {
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    /// Connections being served; only changed through [`ConnectionSlot`], so
    /// it never exceeds `limits.max_connections`.
    active: Arc<AtomicUsize>,
    handler: Arc<dyn Handler>,
    limits: Limits,
    on_request: OnRequest,
    on_error: OnError,
    /// A duplicate of the listener, held only to be closed when `accept`
    /// runs out of descriptors: that frees one, to accept the waiting
    /// client and answer it `503` (any descriptor would do; a duplicate
    /// needs no file). `None` while it cannot be made again.
    spare: Option<TcpListener>,
    /// The run of failing `accept` calls going on, if any.
    trouble: Option<AcceptTrouble>,
}

/// A run of failing `accept` calls (out of descriptors or memory), from the
/// first failure to the next connection accepted: logged once when it
/// starts and once when it ends, with what happened in between.
struct AcceptTrouble {
    since: Instant,
    /// `accept` calls that failed.
    failed: u64,
    /// Clients answered `503` through the spare descriptor.
    refused: u64,
    /// The next back-off: doubles from `ACCEPT_BACKOFF_MIN` up to
    /// `ACCEPT_BACKOFF_MAX`.
    backoff: Duration,
}

/// What using the spare descriptor came to.
enum Spare {
    /// A client was accepted and answered `503`.
    Refused,
    /// A client was accepted and descriptors are free again: serve it.
    Recovered(TcpStream),
    /// No spare, or `accept` failed even with it closed.
    Unavailable,
}

impl AcceptLoop {
    fn run(mut self) {
        let _scoreboard = scoreboard::claim(Role::Accept, ThreadState::Accepting);
        // Checked before each `accept` too: a back-off may have slept
        // through the stop.
        while !self.stop.load(Ordering::Acquire) {
            let accepted = self.listener.accept();
            if self.stop.load(Ordering::Acquire) {
                return; // the wake-up connection (or a late client) is dropped
            }
            match accepted {
                Ok((stream, _)) => {
                    self.end_trouble();
                    let start = scoreboard::now_nanos();
                    self.dispatch(stream);
                    // The timeline's `accept` span; the scoreboard keeps
                    // showing `accepting`.
                    scoreboard::record_span(crate::trace::Span::Accept, start);
                }
                Err(e) => self.accept_failed(&e),
            }
        }
    }

    fn dispatch(&self, stream: TcpStream) {
        // Responses are written whole, so Nagle would only add latency.
        let _ = stream.set_nodelay(true);
        let Some(slot) = ConnectionSlot::acquire(&self.active, self.limits.max_connections) else {
            self.reject(stream, &Response::error(503, "too many connections"));
            return;
        };
        crate::metrics::connection_accepted();
        let handler = Arc::clone(&self.handler);
        let on_request = Arc::clone(&self.on_request);
        let limits = self.limits;
        let spawned = thread::Builder::new()
            .name("http-conn".to_owned())
            .stack_size(CONNECTION_THREAD_STACK)
            .spawn(move || {
                // Held for the life of the thread, released even on a panic.
                let _slot = slot;
                let _scoreboard = scoreboard::claim(Role::Connection, ThreadState::ReadingHead);
                connection::serve(stream, &*handler, &limits, &*on_request);
            });
        // On failure the closure (with the stream and the slot) is dropped:
        // the client sees the connection closed and the slot is freed.
        if let Err(e) = spawned {
            (self.on_error)(&format!("cannot spawn a connection thread: {e}"));
        }
    }

    /// Answers `503` with `reason` to a connection that will not be served,
    /// through the error path the connection loop uses
    /// ([`answer_and_close`]), without ever blocking the accept loop for
    /// long: a short write deadline, and no wait for the client's remaining
    /// input.
    fn reject(&self, stream: TcpStream, response: &Response) {
        crate::metrics::connection_refused();
        let start = Instant::now();
        let peer = stream.peer_addr().ok().map(|a| a.ip());
        let mut stream = TimedStream::new(stream);
        answer_and_close(
            &mut stream,
            &mut Vec::new(),
            response,
            false,
            REJECT_WRITE_TIMEOUT,
            Linger::NoWait,
            |answered| {
                (self.on_request)(&RequestRecord::unparsed(
                    peer,
                    answered.status,
                    answered.body_bytes,
                    start.elapsed(),
                ));
            },
        );
    }

    /// Handles a failed `accept`. Per-connection errors (a client that
    /// reset before it was accepted) retry at once. The others last (out of
    /// descriptors or memory), and retrying at once would spin a core:
    ///
    /// - out of descriptors, the spare is closed to accept the waiting
    ///   client and answer it `503` ([`OUT_OF_DESCRIPTORS`]), then made
    ///   again; each such answer uses up a waiting client, so this cannot
    ///   spin;
    /// - when that is not possible, the loop sleeps: 50 ms, doubling up to
    ///   1 s. A sleep, because there is no event to wait for ("a
    ///   descriptor became free" is not observable); the only one in `src/`.
    ///
    /// The first failure of a run is logged, and the run's end with its
    /// counts ([`AcceptLoop::end_trouble`]): one line each, not one per
    /// failure (`tests/integration/descriptors_e2e.rs`).
    fn accept_failed(&mut self, error: &io::Error) {
        if matches!(
            error.kind(),
            io::ErrorKind::Interrupted
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::WouldBlock
        ) {
            return;
        }
        let on_error = &self.on_error;
        let trouble = self.trouble.get_or_insert_with(|| {
            on_error(&format!(
                "accept failed: {error}; new connections are answered 503 or wait \
                 until it works again (one line when it does)"
            ));
            AcceptTrouble {
                since: Instant::now(),
                failed: 0,
                refused: 0,
                backoff: ACCEPT_BACKOFF_MIN,
            }
        });
        trouble.failed += 1;
        if is_out_of_descriptors(error) {
            match self.accept_with_spare() {
                Spare::Refused => {
                    if let Some(trouble) = &mut self.trouble {
                        trouble.refused += 1;
                    }
                    return;
                }
                Spare::Recovered(stream) => {
                    self.end_trouble();
                    self.dispatch(stream);
                    return;
                }
                Spare::Unavailable => {}
            }
        }
        let pause = self.trouble.as_mut().map_or(ACCEPT_BACKOFF_MIN, |trouble| {
            let pause = trouble.backoff;
            trouble.backoff = (pause * 2).min(ACCEPT_BACKOFF_MAX);
            pause
        });
        thread::sleep(pause);
        if self.spare.is_none() {
            self.spare = self.listener.try_clone().ok();
        }
    }

    /// Closes the spare descriptor to accept one waiting client, then makes
    /// the spare again: if that works, descriptors are free again and the
    /// client is served; otherwise it is answered `503` and closed, and the
    /// spare is made once more from the descriptor that frees.
    fn accept_with_spare(&mut self) -> Spare {
        let Some(spare) = self.spare.take() else {
            return Spare::Unavailable;
        };
        drop(spare);
        let accepted = self.listener.accept();
        self.spare = self.listener.try_clone().ok();
        let Ok((stream, _)) = accepted else {
            return Spare::Unavailable;
        };
        if self.spare.is_some() {
            return Spare::Recovered(stream);
        }
        self.reject(
            stream,
            &Response::error(503, OUT_OF_DESCRIPTORS).with_header("Retry-After", "1"),
        );
        self.spare = self.listener.try_clone().ok();
        Spare::Refused
    }

    /// Ends a run of failing `accept` calls, if one is going on, with one
    /// log line.
    fn end_trouble(&mut self) {
        if let Some(trouble) = self.trouble.take() {
            (self.on_error)(&format!(
                "accept works again after {:.3} s: {} failed accepts, {} connections answered 503 ({OUT_OF_DESCRIPTORS:?})",
                trouble.since.elapsed().as_secs_f64(),
                trouble.failed,
                trouble.refused,
            ));
        }
    }
}

/// `EMFILE` (this process) or `ENFILE` (the whole system): closing a
/// descriptor of ours may let one `accept` through.
fn is_out_of_descriptors(error: &io::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    matches!(error.raw_os_error(), Some(EMFILE | ENFILE))
}

/// One unit of the connection budget, returned on drop.
struct ConnectionSlot {
    active: Arc<AtomicUsize>,
}

impl ConnectionSlot {
    /// Takes a slot if fewer than `max` are taken.
    fn acquire(active: &Arc<AtomicUsize>, max: usize) -> Option<ConnectionSlot> {
        active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionSlot {
                active: Arc::clone(active),
            })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}
