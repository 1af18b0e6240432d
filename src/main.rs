//! The `le-stats-sportif` binary: flags → data → jobs → server, and the main
//! thread's one duty once serving: carry out shutdown when asked.
#![forbid(unsafe_code)]
// Pedantic, as the library is (see the reasons for its allowed lints there).
#![warn(clippy::pedantic)]

use le_stats_sportif::api::Api;
use le_stats_sportif::cli::{self, Command, Config};
use le_stats_sportif::dataset::Dataset;
use le_stats_sportif::descriptors::{self, Budget};
use le_stats_sportif::http::RequestRecord;
use le_stats_sportif::jobs::{Jobs, JobsOptions};
use le_stats_sportif::lifecycle::{ExitRequest, Lifecycle, Requested};
use le_stats_sportif::limits::{
    Limits, LOG_FLUSH_TIMEOUT, LOG_KEEP_FILES, LOG_MAX_BYTES, MAX_PENDING_JOBS,
};
use le_stats_sportif::log::Logger;
use le_stats_sportif::results::{OpenedResults, ResultStore, ResultsLock};
use le_stats_sportif::server::{Server, ServerHandle};
use le_stats_sportif::sync::{thread, Arc};
use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// Exit status when a second Ctrl-C cuts the drain short (128 + SIGINT).
const FORCED_EXIT: i32 = 130;

fn main() -> ExitCode {
    let cpus = thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let env_threads = std::env::var(cli::THREADS_ENV).ok();
    let command = cli::parse(
        std::env::args().skip(1),
        env_threads.as_deref(),
        cpus,
        &|p: &Path| p.exists(),
    );
    match command {
        Ok(Command::Help) => {
            print!("{}", cli::help());
            ExitCode::SUCCESS
        }
        Ok(Command::Run(config)) => match run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("le-stats-sportif: {message}");
                ExitCode::FAILURE
            }
        },
        Err(usage) => {
            eprintln!("le-stats-sportif: {usage}");
            ExitCode::from(2)
        }
    }
}

/// Serves until a signal: the whole life of the server, as named steps.
fn run(config: &Config) -> Result<(), String> {
    if config.summary_only {
        let dataset =
            Dataset::load(&config.data).map_err(|e| data_error(config, &e.to_string()))?;
        println!("{}", dataset.summary());
        return Ok(());
    }
    // The results directory's lock first: a second server on the same
    // directory stops here at once, before it loads the data, opens (and
    // writes to) the log or touches the directory.
    let lock = ResultsLock::acquire(&config.results_dir).map_err(|e| e.to_string())?;
    let (dataset, opened) = load_data_and_list_results(config, lock)?;
    // stdout is kept for the one `listening` line that scripts parse.
    eprintln!("{}", dataset.summary());

    let descriptors = Budget::new(
        config.limits.max_connections,
        config.threads,
        descriptors::open_files_limit(),
    )
    .map_err(|e| e.to_string())?;
    let limits = Limits {
        max_connections: descriptors.max_connections,
        ..config.limits
    };
    eprintln!("le-stats-sportif: {}", descriptors.describe());
    le_stats_sportif::scoreboard::configure(limits, config.threads, descriptors, config.job_delay);
    let logs = Logs::open(config)?;
    let options = JobsOptions {
        threads: config.threads,
        max_pending: MAX_PENDING_JOBS,
        durable: config.durable,
    };
    let jobs = Jobs::open_restored(opened, options, logs.server.clone())
        .map_err(|e| format!("cannot start the job threads: {e}"))?;
    if let Some(cause) = jobs.degraded_cause() {
        eprintln!(
            "le-stats-sportif: starting degraded: {cause}; new jobs are refused until a save works, saved results are still served"
        );
    }
    let jobs = Arc::new(jobs);
    let lifecycle = Arc::new(Lifecycle::new());
    install_signal_handler(&lifecycle)?;
    let api = Api::new(Arc::new(dataset), Arc::clone(&jobs), Arc::clone(&lifecycle))
        .reporting_logs(vec![logs.server.clone(), logs.access.clone()])
        .with_access_policy(config.access.clone())
        .with_job_delay(config.job_delay);
    let _server = start_serving(config, limits, &descriptors, api, &logs)?;

    // The main thread's duty from here on: carry out shutdown when asked
    // (the numbered timeline in CONCURRENCY.md).
    let first_request = lifecycle.wait_for_drain_request();
    if first_request == Requested::Exit {
        // An operator who pressed Ctrl-C sees that it was heard.
        say_on_stderr(
            "signal received: draining the queued jobs, then exiting",
            &logs.server,
        );
    }
    logs.server
        .info("shutdown requested: draining the job queue");
    jobs.shut_down();
    logs.server
        .info("every accepted job has finished; workers stopped");
    lifecycle.wait_for_exit_request();
    if first_request == Requested::Drain {
        say_on_stderr(
            "signal received: the queue is already drained; exiting",
            &logs.server,
        );
    }
    logs.server.info("exiting");
    logs.flush_at_exit();
    // Connection threads and log writers are detached: exiting ends them.
    std::process::exit(0);
}

/// Loads the data file and opens the results directory at once, on two
/// threads: both must be done before `listening`, neither needs the other,
/// and with many results the listing is most of the start (200,000 results:
/// about 65 ms of 90; docs/bench.md). Opening the directory deletes the
/// temporary files a crashed run left, so a start refused for its data has
/// done that much (before, it had not), and opened no log and reserved no
/// id (`curl_e2e::a_start_refused_for_its_data_deletes_leftovers_and_writes_nothing_else`).
/// No test fails if the listing ran first and the data after, one after
/// the other: the gain is measured, in docs/bench.md.
fn load_data_and_list_results(
    config: &Config,
    lock: ResultsLock,
) -> Result<(Dataset, OpenedResults), String> {
    let dir = lock.dir().to_path_buf();
    let results_error =
        |e: &dyn std::fmt::Display| format!("cannot use results directory {}: {e}", dir.display());
    std::thread::scope(|scope| {
        let listing = std::thread::Builder::new()
            .name("results-listing".to_string())
            .spawn_scoped(scope, || ResultStore::open(lock, config.durable))
            .map_err(|e| {
                format!(
                    "cannot start the thread that lists results directory {}: {e}",
                    dir.display()
                )
            })?;
        let dataset = Dataset::load(&config.data);
        // A panic while listing (a bug) is reported as an error; the
        // scope would re-raise it otherwise.
        let opened = listing
            .join()
            .map_err(|_| results_error(&"listing it panicked"))?;
        let dataset = dataset.map_err(|e| data_error(config, &e.to_string()))?;
        Ok((dataset, opened.map_err(|e| results_error(&e))?))
    })
}

/// The server log and the access log.
struct Logs {
    server: Logger,
    access: Logger,
}

impl Logs {
    fn open(config: &Config) -> Result<Logs, String> {
        let server = Logger::open(&config.log_file, LOG_MAX_BYTES, LOG_KEEP_FILES)
            .map_err(|e| format!("cannot open log file {}: {e}", config.log_file.display()))?;
        let access = Logger::open_access(
            &config.access_log,
            LOG_MAX_BYTES,
            LOG_KEEP_FILES,
            server.clone(),
        )
        .map_err(|e| {
            format!(
                "cannot open access log {}: {e}",
                config.access_log.display()
            )
        })?;
        Ok(Logs { server, access })
    }

    /// Neither log may hold the exit: both flushes share one deadline, and
    /// a stalled sink (a FIFO nobody reads) is given up on when it passes.
    fn flush_at_exit(&self) {
        let deadline = Instant::now() + LOG_FLUSH_TIMEOUT;
        let flushed = self.access.flush_until(deadline) & self.server.flush_until(deadline);
        if !flushed {
            eprintln!(
                "le-stats-sportif: the logs were not all written within {LOG_FLUSH_TIMEOUT:?}; exiting anyway"
            );
        }
        let (server_dropped, access_dropped) =
            (self.server.dropped_lines(), self.access.dropped_lines());
        if server_dropped + access_dropped > 0 {
            eprintln!(
                "le-stats-sportif: log lines dropped because the log could not keep up: \
                 {server_dropped} server-log, {access_dropped} access-log"
            );
        }
    }
}

/// Ctrl-C, SIGTERM and SIGHUP: ask the main thread to drain and exit; a
/// second signal exits at once with 130, without draining.
///
/// The handler does no I/O: it takes only the lifecycle lock, which is
/// never held across I/O (nor across anything that waits), and exits.
/// So it always returns at once and the next signal is always heard —
/// `ctrlc` runs its handler calls one at a time, so a handler blocked in a
/// write (to a stderr pipe nobody reads) would leave the second signal
/// unheard (`tests/integration/lifecycle_e2e.rs`,
/// `a_second_ctrl_c_exits_at_once_with_130_even_while_stderr_blocks`).
/// The main thread says on stderr that the signal was heard. The handler
/// does not stop the jobs itself: the main thread's `shut_down` does
/// that first, and waits for every job accepted before it.
fn install_signal_handler(lifecycle: &Arc<Lifecycle>) -> Result<(), String> {
    let lifecycle = Arc::clone(lifecycle);
    ctrlc::set_handler(move || {
        if lifecycle.request_exit() == ExitRequest::Repeated {
            // `process::exit` flushes nothing that can block here: stdout's
            // one line was flushed when it was printed, stderr is unbuffered.
            std::process::exit(FORCED_EXIT);
        }
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))
}

/// Logs `LINE` in the server log, and writes `le-stats-sportif: LINE` to
/// stderr on a thread of its own and returns at once: stderr can block (a
/// pipe nobody reads), and the main thread must go on with the drain
/// (`tests/integration/lifecycle_e2e.rs`,
/// `one_signal_while_stderr_blocks_still_drains_and_exits_0`, which also
/// finds the line in the server log). The thread is not joined: if stderr
/// does not take the line before the process exits, it is lost there (an
/// exit right after the drain can cut it short); the server log loses it
/// only as it loses any line (a full queue or a flush that times out at
/// exit, both counted and reported on stderr).
fn say_on_stderr(line: &'static str, server_log: &Logger) {
    server_log.info(line);
    // The whole line in one `write_all`: `eprintln!` writes the prefix and
    // the text separately, and an exit between the two was seen to leave
    // the prefix alone. (A race no test can pin down.)
    let text = format!("le-stats-sportif: {line}\n");
    let spawned = thread::Builder::new()
        .name("stderr-line".to_owned())
        .spawn(move || std::io::stderr().write_all(text.as_bytes()));
    // Out of threads: the line is only a courtesy on stderr.
    drop(spawned);
}

/// Binds the socket, starts the accept thread and prints the one
/// `listening` line that scripts and tests wait for. The handle is kept
/// until the process exits (`process::exit` runs no destructor, so the
/// accept thread is never stopped: exiting ends it).
fn start_serving(
    config: &Config,
    limits: Limits,
    descriptors: &Budget,
    api: Api,
    logs: &Logs,
) -> Result<ServerHandle, String> {
    let server = Server::bind(&config.host, config.port).map_err(|e| listen_error(config, &e))?;
    let address = server
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let access_log = logs.access.clone();
    let server_log = logs.server.clone();
    let handle = server.start(
        Arc::new(api),
        limits,
        Arc::new(move |request: &RequestRecord<'_>| access_log.access(request)),
        Arc::new(move |message: &str| server_log.error(message)),
    );
    let delay = if config.job_delay.is_zero() {
        String::new()
    } else {
        format!(
            "; every job sleeps {} ms first (--job-delay)",
            config.job_delay.as_millis()
        )
    };
    logs.server.info(format!(
        "listening on http://{address} with {} worker threads, {}{delay}",
        config.threads,
        descriptors.describe()
    ));
    if let Some(warning) = beyond_loopback_warning(config, address) {
        eprintln!("le-stats-sportif: {warning}");
        logs.server.warn(warning.as_str());
    }
    // The stdout line stays exactly `listening on http://HOST:PORT` (scripts
    // parse it); the delay is told on stderr, and in the log's line.
    if !delay.is_empty() {
        eprintln!("le-stats-sportif: jobs are slowed down{delay}");
    }
    println!("listening on http://{address}");
    let _ = std::io::stdout().flush();
    Ok(handle)
}

/// The start-up warning for a server listening beyond loopback (`--host
/// 0.0.0.0`, `::` or a LAN address), where other machines can reach it. On
/// stderr and in the log: stdout's one `listening` line is read whole by
/// scripts.
fn beyond_loopback_warning(config: &Config, address: SocketAddr) -> Option<String> {
    if le_stats_sportif::api::is_loopback(address.ip()) {
        return None;
    }
    let shutdown = if config.access.remote_shutdown_allowed() {
        "any client that reaches it can stop it with graceful_shutdown (--allow-remote-shutdown)"
    } else {
        "graceful_shutdown is reachable from the network, and refused (403) to clients \
         not on this machine unless --allow-remote-shutdown is given"
    };
    Some(format!(
        "warning: listening on {address}, beyond loopback: {shutdown}; there is no \
         authentication and no TLS (see Security in the README)"
    ))
}

/// The start-up error for data that cannot be loaded; when the file is
/// missing, it names the two ways to get one.
fn data_error(config: &Config, error: &str) -> String {
    if config.data.exists() {
        return error.to_owned();
    }
    format!(
        "{error}\n  the data is not in place: run `make data` (it copies the course subset from \
         ../shared/data, or downloads the full CDC dataset to {}), \
         or pass --data PATH to a CDC-layout CSV",
        cli::FALLBACK_DATA
    )
}

/// The start-up error for a socket that cannot be bound; when the port is
/// taken, it names the flags that pick another.
fn listen_error(config: &Config, error: &std::io::Error) -> String {
    let (host, port) = (&config.host, config.port);
    let mut message = format!("cannot listen on {host}:{port}: {error}");
    if error.kind() == std::io::ErrorKind::AddrInUse {
        let _ = write!(
            message,
            "\n  another process (perhaps another le-stats-sportif) has port {port}: stop it, \
             or pick another port with --port N (`make run_server PORT=N`; \
             --port 0 picks a free one)"
        );
    }
    message
}
