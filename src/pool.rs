//! The worker pool: `std::thread` workers fed through one `mpsc` channel.
//!
//! STUB: the public items below are the interface other modules rely on;
//! the bodies are to be written (issue 3).

/// A unit of work. It must not panic out (jobs catch their own panics), but
/// the pool survives if one does.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Returned by [`ThreadPool::execute`] once [`ThreadPool::close`] was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolClosed;

pub struct ThreadPool {}

impl ThreadPool {
    /// Starts `size` workers (at least one).
    pub fn new(size: usize) -> ThreadPool {
        let _ = size;
        todo!("issue 3")
    }

    /// Queues `job`.
    ///
    /// # Errors
    /// [`PoolClosed`] after [`close`](ThreadPool::close).
    pub fn execute(&self, job: Job) -> Result<(), PoolClosed> {
        let _ = job;
        todo!("issue 3")
    }

    /// Stops accepting jobs; the workers finish the queue, then exit. Idempotent.
    pub fn close(&self) {
        todo!("issue 3")
    }

    /// Closes the pool and blocks until every worker has exited, i.e. until
    /// every queued job has run. Idempotent.
    pub fn join(&self) {
        todo!("issue 3")
    }
}
