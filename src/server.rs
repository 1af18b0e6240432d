//! The listening socket and the accept loop: one thread per connection, at
//! most `Limits::max_connections` at once.
//!
//! The accept loop runs on its own thread. [`ServerHandle::shutdown`] stops
//! it without polling: it raises a flag and then connects to the listener,
//! so the blocked `accept` returns and the loop sees the flag
//! (`tests/integration/http_socket.rs`: `shutdown_stops_accepting_and_returns`).
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
use crate::limits::{Limits, ACCEPT_ERROR_BACKOFF, CONNECTION_THREAD_STACK, REJECT_WRITE_TIMEOUT};
use crate::scoreboard::{self, Role, ThreadState};
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

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
        let on_request = crate::metrics::counting(on_request);
        let stop = Arc::new(AtomicBool::new(false));
        let accept_loop = AcceptLoop {
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
}

impl AcceptLoop {
    fn run(self) {
        let _scoreboard = scoreboard::claim(Role::Accept, ThreadState::Accepting);
        loop {
            let accepted = self.listener.accept();
            if self.stop.load(Ordering::Acquire) {
                return; // the wake-up connection (or a late client) is dropped
            }
            match accepted {
                Ok((stream, _)) => self.dispatch(stream),
                Err(e) => self.accept_failed(&e),
            }
        }
    }

    fn dispatch(&self, stream: TcpStream) {
        // Responses are written whole, so Nagle would only add latency.
        let _ = stream.set_nodelay(true);
        let Some(slot) = ConnectionSlot::acquire(&self.active, self.limits.max_connections) else {
            crate::metrics::connection_refused();
            self.reject(stream);
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

    /// Answers `503` to a connection over the limit, through the error path
    /// the connection loop uses ([`answer_and_close`]), without ever
    /// blocking the accept loop for long: a short write deadline, and no
    /// wait for the client's remaining input.
    fn reject(&self, stream: TcpStream) {
        let start = std::time::Instant::now();
        let peer = stream.peer_addr().ok().map(|a| a.ip());
        let mut stream = TimedStream::new(stream);
        answer_and_close(
            &mut stream,
            &mut Vec::new(),
            &Response::error(503, "too many connections"),
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

    /// Reports an `accept` error. Errors that last (out of file descriptors
    /// or memory) would make the loop spin a core at 100 %, so those are
    /// followed by a short sleep: the one place this server sleeps, because
    /// there is no event to wait for ("a descriptor became free" is not
    /// observable). Per-connection errors (reset before accept) retry at once.
    fn accept_failed(&self, error: &io::Error) {
        match error.kind() {
            io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::WouldBlock => {}
            _ => {
                (self.on_error)(&format!("accept failed: {error}"));
                thread::sleep(ACCEPT_ERROR_BACKOFF);
            }
        }
    }
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
