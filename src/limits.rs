//! Every limit and timeout of the server, named in one place, each with the
//! status (or action) that answers a client who crosses it.

use std::time::Duration;

/// Longest request line (method, target, version) → `414 URI Too Long`.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Largest header block (all field lines, with their CRLFs) → `431`.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most header fields in one request → `431`.
pub const MAX_HEADER_FIELDS: usize = 100;
/// Largest request body, decoded → `413 Content Too Large`, answered before
/// the body is read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Deepest nesting of arrays and objects in a JSON request body → `400`.
/// The API takes a flat object (depth 1); the bound is checked by a byte
/// scan *before* the body reaches `serde_json`, whose recursive descent
/// would otherwise use a stack frame per level on a connection thread's
/// small stack ([`CONNECTION_THREAD_STACK`]).
pub const MAX_JSON_DEPTH: usize = 8;

/// Longest chunk-size line of a chunked body (the hex size plus any chunk
/// extensions, with its CRLF) → `400`. Extensions are tolerated, not
/// unbounded.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;

/// The whole request head must arrive within this time from its first byte;
/// otherwise the connection is closed (a `408` is attempted first).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole body must arrive within this time after the head; else `408` and close.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A keep-alive connection with no request in progress is closed after this.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Writing one response must finish within this time; else the connection is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// After answering with `Connection: close`, the server half-closes and
/// keeps reading (and discarding) for at most this long / this many bytes
/// before closing: closing a socket with unread input makes the kernel send
/// a RST, which can destroy the response before the client has read it.
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(1);
/// See [`LINGER_TIMEOUT`].
pub const LINGER_MAX_BYTES: usize = 64 * 1024;
/// Write timeout of the `503` the accept loop sends when the server is full:
/// short, because the accept loop must never wait on one slow client.
pub const REJECT_WRITE_TIMEOUT: Duration = Duration::from_millis(100);
/// The accept loop's first pause after an `accept` error that lasts (out of
/// descriptors or memory, when the spare descriptor cannot help): retrying
/// at once would spin a core while the condition lasts. Each further
/// failure doubles the pause …
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// … up to this.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// `get_results` on a running job waits up to this long for it to finish
/// before answering `running` (a short long-poll): a client polling in a
/// loop then needs one or two requests per job instead of dozens, which
/// leaves the CPU to the workers.
pub const RESULT_WAIT: Duration = Duration::from_millis(20);
/// The longest wait a client may ask of `get_results` with `?wait=SECONDS`
/// (larger → `400`). A waiting request holds its connection thread, not a
/// worker, so waits are bounded by the connection cap (`MAX_CONNECTIONS`).
pub const MAX_RESULT_WAIT: Duration = Duration::from_secs(30);
/// The longest `--job-delay` (a minute: a demonstration, not a workload).
pub const MAX_JOB_DELAY: Duration = Duration::from_secs(60);

/// Simultaneous connections (`--max-connections`); the next one is answered
/// `503` and closed. Lowered at start to what the open-file limit allows
/// (see `descriptors`).
pub const MAX_CONNECTIONS: usize = 2048;
/// Stack of each connection thread: small, so that `MAX_CONNECTIONS` threads
/// stay within a bounded amount of memory.
pub const CONNECTION_THREAD_STACK: usize = 256 * 1024;

/// Most jobs queued or running at once; a submission past it is answered
/// `503` ("too many jobs queued") with `Retry-After`. A queued job holds its
/// query until a worker takes it, so this bounds that memory (an estimate,
/// not measured: a few hundred bytes a job, some 15 MB in all).
pub const MAX_PENDING_JOBS: usize = 50_000;

/// Log lines waiting for a log writer; past this, lines are dropped and
/// counted (a caller never waits for the log) rather than queued without
/// bound (`tests/integration/log.rs`: `a_stalled_sink_drops_and_counts_…`). At an
/// estimated 100–300 bytes a queued line (not measured), a few MB per log.
pub const LOG_QUEUE_LINES: usize = 32 * 1024;

/// Group commit of the log: once woken, the log writer waits this long for
/// more lines before writing them all at once (see `log`) …
pub const LOG_LINGER: Duration = Duration::from_millis(2);
/// … or until this many lines are queued.
pub const LOG_BATCH_LINES: usize = 1024;

/// Longest wait for a log flush (at exit, or the last `Logger`'s drop): a
/// stalled sink cannot hold shutdown longer than this.
pub const LOG_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Each log is rotated when it reaches this size …
pub const LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// … keeping this many old files (`webserver.log.1` … `.N`, `access.log.1` …).
pub const LOG_KEEP_FILES: usize = 3;

/// The limits one server runs with: the constants above unless a flag (or a
/// test) overrides them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_request_line: usize,
    pub max_header_bytes: usize,
    pub max_header_fields: usize,
    pub max_body_bytes: usize,
    pub head_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: MAX_REQUEST_LINE,
            max_header_bytes: MAX_HEADER_BYTES,
            max_header_fields: MAX_HEADER_FIELDS,
            max_body_bytes: MAX_BODY_BYTES,
            head_timeout: HEAD_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}
