//! The listening socket and the accept loop: one thread per connection, at
//! most `Limits::max_connections` at once.
//!
//! STUB: the public items below are the interface other modules rely on;
//! the bodies are to be written (issue 3).

use crate::http::Handler;
use crate::limits::Limits;
use crate::log::Logger;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

pub struct Server {
    listener: TcpListener,
}

impl Server {
    /// Binds `host:port` (`port` 0 picks a free port).
    ///
    /// # Errors
    /// When the address cannot be resolved or bound.
    pub fn bind(host: &str, port: u16) -> io::Result<Server> {
        let listener = TcpListener::bind((host, port))?;
        Ok(Server { listener })
    }

    /// The address actually bound.
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections forever, each served on its own thread.
    pub fn run(self, handler: Arc<dyn Handler>, limits: Limits, logger: Logger) {
        let _ = (handler, limits, logger);
        todo!("issue 3")
    }
}
